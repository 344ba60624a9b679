#!/usr/bin/env bash
# apt-install.sh NAME PACKAGE...: installs Debian packages missing for NAME
# (the make target or script that needs them, for its messages). The package
# lists are refreshed once for all the deps scripts of one `make test`: not
# again within 30 minutes of this script's last apt-get update.
set -euo pipefail
name=$1
shift
if [ "$(id -u)" -ne 0 ]; then
	echo "$name: missing $*; run as root or install them with apt-get" >&2
	exit 1
fi
echo "$name: installing $*"
stamp="$(cd "$(dirname "$0")/.." && pwd)/.cache/apt-updated"
if [ -z "$(find "$stamp" -mmin -30 2>/dev/null)" ]; then
	apt-get update -qq
	mkdir -p "$(dirname "$stamp")"
	touch "$stamp"
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
