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
[ ${#need[@]} -eq 0 ] || "$(dirname "$0")/apt-install.sh" docker-deps "${need[@]}"
