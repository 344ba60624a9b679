#!/usr/bin/env bash
# release.sh DIR: the binderbuild CLI for Linux, macOS and Windows as static
# binaries (CGO_ENABLED=0) named binderbuild-<os>-<arch> (.exe on Windows),
# plus their SHA256SUMS, in DIR. `binderbuild version` prints the version the
# Go toolchain stamps from git (-buildvcs=true overrides a GOFLAGS that turns
# stamping off): the tag, or a pseudo-version of the commit, +dirty when the
# tree has changes.
set -euo pipefail
dir=${1:?usage: release.sh DIR}
targets=${RELEASE_TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64}
rm -rf "$dir"
mkdir -p "$dir"
for target in $targets; do
	os=${target%/*} arch=${target#*/} ext=
	[[ $os == windows ]] && ext=.exe
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch ${GO:-go} build -trimpath -buildvcs=true -ldflags "-s -w" \
		-o "$dir/binderbuild-$os-$arch$ext" ./cmd/binderbuild
done
cd "$dir"
sha256sum binderbuild-* >SHA256SUMS
