#!/usr/bin/env bash
# Installs headless Chromium (Debian's chromium package) and a font for the
# browser tests of web/ (web/web_test.go), when missing.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "browser-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
	exit 1
fi
echo "browser-deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
