#!/usr/bin/env bash
# Set up safemlrm in .venv from pinned versions: requirements/${SAFEMLRM_LOCK:-demo}.lock
# (demo: what the demo needs; test: everything the test suite needs). The lock lists every package
# with its exact version, so a new release elsewhere cannot change a fresh machine's set-up; refresh
# it with `bash scripts/lock.sh`. Safe to run again: a .venv already set up from the same lock and
# pyproject is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

lock="requirements/${SAFEMLRM_LOCK:-demo}.lock"
py="${PYTHON:-python3}"
[ -f "$lock" ] || { echo "setup: no lock file $lock (SAFEMLRM_LOCK is demo or test)" >&2; exit 2; }
stamp=.venv/.safemlrm-setup
want="$(cat "$lock" pyproject.toml requirements/tools.txt scripts/setup.sh | cksum)"
if [ -x .venv/bin/safemlrm ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "safemlrm is already set up in .venv ($lock)"
  exit 0
fi

SECONDS=0
[ -x .venv/bin/python ] || "$py" -m venv .venv
vpy=.venv/bin/python
# torch through pip: pip's own configuration knows where the CPU build is (on this kind of machine a
# local wheel); PyPI's default torch is a multi-GB CUDA build. Its dependencies come from the lock.
torch_pin="$(grep -E '^torch==' "$lock" | sed 's/+.*//')"
"$vpy" -c "import torch" 2>/dev/null || "$vpy" -m pip install -q --no-deps "$torch_pin"
"$vpy" -m pip install -q -r requirements/tools.txt
# Everything else exactly as locked: no resolver run, no source build that the lock does not name.
# --compile-bytecode: uv writes no .pyc by default, so every later process (and every one where
# PYTHONDONTWRITEBYTECODE is set) would compile transformers from source again: ~10 s each here.
grep -vE '^torch==' "$lock" > .venv/.safemlrm-lock.txt
# llama-cpp-python (test lock only) is built from source. Its default build targets the build
# machine's own CPU (-march=native), and on CPUs with AMX, ggml's AMX matrix kernel segfaults at the
# first generation in this sandbox: build for plain AVX2 instead, which every x86-64 CPU since 2013
# runs. uv keys its cache of built wheels by these settings, so an older native build is not reused;
# --reinstall-package replaces one already in .venv.
llama_build=(
  --config-settings-package "llama-cpp-python:cmake.define.GGML_NATIVE=OFF"
  --config-settings-package "llama-cpp-python:cmake.define.GGML_AVX2=ON"
  --config-settings-package "llama-cpp-python:cmake.define.GGML_FMA=ON"
  --config-settings-package "llama-cpp-python:cmake.define.GGML_F16C=ON"
)
if grep -q '^llama-cpp-python==' .venv/.safemlrm-lock.txt; then
  llama_build+=(--reinstall-package llama-cpp-python)
fi
"$vpy" -m uv pip install -q --python "$vpy" --no-deps --compile-bytecode "${llama_build[@]}" \
  -r .venv/.safemlrm-lock.txt
"$vpy" -m uv pip install -q --python "$vpy" --no-deps -e .
echo "$want" > "$stamp"
echo "safemlrm set up in .venv from $lock in ${SECONDS} s"
