#!/usr/bin/env bash
# One command: set up everything the test suite needs on a fresh machine, then run it.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: fonts for the image attacks, Chromium for the HTML report's browser test.
if command -v apt-get >/dev/null 2>&1; then
  need=()
  [ -f /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ] || need+=(fonts-liberation)
  [ -f /usr/share/fonts/truetype/freefont/FreeMonoBold.ttf ] || need+=(fonts-freefont-ttf)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

SAFEMLRM_EXTRAS="demo,dev,parquet,llamacpp,ray,inspect,datasets,notebook" bash scripts/setup.sh

.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/mypy src
exec .venv/bin/python -m pytest -q "$@"
