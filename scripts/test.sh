#!/usr/bin/env bash
# One command: set up everything the test suite needs on a fresh machine, then run it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/system-packages.sh
SAFEMLRM_LOCK="test" bash scripts/setup.sh

.venv/bin/shellcheck -S style scripts/*.sh .ci/run
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/mypy src
exec .venv/bin/python -m pytest -q "$@"
