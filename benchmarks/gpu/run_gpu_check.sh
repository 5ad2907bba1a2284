#!/usr/bin/env bash
# GPU check of the hf and vllm targets on a random-weight Qwen2.5-VL-7B (see gpu_check.py).
#
# On the GPU machine, from the repository root:   bash benchmarks/gpu/run_gpu_check.sh [gpu_check.py flags]
# Results: $OUT/gpu_check.json and $OUT/gpu_check.log (OUT defaults to benchmarks/results).
#
# The machine's python3 must have torch (CUDA), transformers 5, tokenizers and pillow. safemlrm's own light
# dependencies (pydantic, orjson, ...) that it lacks travel as wheels in .whl/, made here beforehand with
# benchmarks/gpu/fetch_wheels.sh; vLLM is used when importable and skipped otherwise. ~3-5 min on an H100.
set -euo pipefail
cd "$(dirname "$0")/../.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
