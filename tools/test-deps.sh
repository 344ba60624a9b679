#!/usr/bin/env bash
# Installs the Debian packages that the tests run for real, when missing.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "test-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
	exit 1
fi
echo "test-deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
