#!/usr/bin/env bash
# Set up safemlrm on a fresh machine: a virtual environment in .venv with the CPU build of PyTorch
# and the extras named in $SAFEMLRM_EXTRAS (default: demo). Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${SAFEMLRM_EXTRAS:-demo}"
PY="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
# The CPU build first: a bare `torch` requirement would pull a multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
echo "safemlrm set up in .venv (extras: ${EXTRAS})"
