#!/usr/bin/env bash
# System packages that the tests need, installed only when missing: fonts for the image attacks
# (Liberation Sans for typography, FreeMonoBold for FigStep) and Chromium for the HTML report's
# browser test. Runs apt-get directly as root, through sudo otherwise. Without apt-get it names what
# is missing and carries on: the tests that need those packages skip with a reason.
# SAFEMLRM_FONT_ROOT moves the font checks (the tests point it at an empty folder).
set -euo pipefail

font_root="${SAFEMLRM_FONT_ROOT:-/usr/share/fonts/truetype}"
need=()
[ -f "$font_root/liberation/LiberationSans-Regular.ttf" ] || need+=(fonts-liberation)
[ -f "$font_root/freefont/FreeMonoBold.ttf" ] || need+=(fonts-freefont-ttf)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "system packages missing (no apt-get here; install them by hand): ${need[*]}" >&2
  exit 0
fi
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
echo "installing system packages: ${need[*]}"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
