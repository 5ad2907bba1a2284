#!/usr/bin/env bash
# One command: set up (pinned versions, no source builds), then run the offline demo evaluation and
# print where its report is.
set -euo pipefail
cd "$(dirname "$0")/.."
SAFEMLRM_LOCK="demo" bash scripts/setup.sh
exec .venv/bin/safemlrm demo --out "${1:-demo-run}"
