#!/usr/bin/env bash
# Installs the Debian packages that the tests run for real, when missing.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)
[ ${#need[@]} -eq 0 ] || "$(dirname "$0")/apt-install.sh" test-deps "${need[@]}"
