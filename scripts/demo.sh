#!/usr/bin/env bash
# One command: set up, then run the offline demo evaluation and print where its report is.
set -euo pipefail
cd "$(dirname "$0")/.."
SAFEMLRM_EXTRAS=demo bash scripts/setup.sh
exec .venv/bin/safemlrm demo --out "${1:-demo-run}"
