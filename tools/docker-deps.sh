#!/usr/bin/env bash
# Installs the Debian packages of the single-machine tests (internal/testdocker):
# Docker's engine and CLI (docker.io, 20.10 on bookworm), debootstrap for the
# base image, and git for the test repositories. ~7 s when the apt lists are
# fresh; does nothing when everything is present.
set -euo pipefail
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v git >/dev/null || need+=(git)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "docker-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
	exit 1
fi
echo "docker-deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
