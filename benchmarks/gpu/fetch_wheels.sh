#!/usr/bin/env bash
# Download the wheels that safemlrm needs beyond what the GPU machine's image has (pydantic, orjson and
# their own needs), for CPython 3.12 on x86-64 Linux, into .whl/ (git-ignored through .git/info/exclude).
# Run here, in the repository root, before carrying .whl to the GPU machine for run_gpu_check.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PIP=".venv/bin/python -m pip"
version() { $PIP show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
mkdir -p .whl
for name in pydantic pydantic_core annotated-types typing-inspection orjson; do
  v="$(version "$name")"
  $PIP download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "$name${v:+==$v}"
done
ls -la .whl
