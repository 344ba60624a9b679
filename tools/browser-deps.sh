#!/usr/bin/env bash
# Installs headless Chromium (Debian's chromium package) and a font for the
# browser tests of web/ (web/web_test.go), when missing.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
[ ${#need[@]} -eq 0 ] || "$(dirname "$0")/apt-install.sh" browser-deps "${need[@]}"
