#!/usr/bin/env bash
# build.sh builds the pinned binaries that internal/testcluster runs (etcd,
# kube-apiserver, kube-scheduler, kube-controller-manager, kubelet, kwok) into
# <repo root>/.cache/bin, or into $BINDERBUILD_TEST_BIN when set. Only Go and
# the Go module proxy are needed.
#
# Usage:
#   tools/cluster/build.sh             build what is missing or has the wrong version
#   tools/cluster/build.sh regen-kube  rewrite tools/cluster/kube/go.mod for KUBE_VERSION
#
# Each binary is skipped when `<bin> --version` already prints the wanted
# version. The Kubernetes components are one multi-call binary, `kube`
# (tools/cluster/kube/multicall), linked under each component's name, so
# their shared packages compile once. Binaries are built one at a time: the
# kube link alone needs ~2.3 GB RSS, the compile both cores.
set -euo pipefail

ETCD_VERSION=v3.5.21
KUBE_VERSION=v1.36.3
KWOK_VERSION=v0.8.0

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${BINDERBUILD_TEST_BIN:-$root/.cache/bin}

# The scratch modules under tools/cluster are separate modules; keep settings
# meant for the main module (or a workspace) out of their builds.
export GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"
unset GOOS GOARCH

log() { printf '%s\n' "$*" >&2; }

# has_version BIN WANT: true when BIN exists and its --version output has WANT.
has_version() {
	local out
	[[ -x "$bin/$1" ]] || return 1
	out=$("$bin/$1" --version 2>&1) || return 1
	[[ "$out" == *"$2"* ]]
}

# timed NAME CMD...: runs CMD and reports its wall time.
timed() {
	local name=$1 start end
	shift
	log "==> building $name"
	start=$(date +%s)
	"$@"
	end=$(date +%s)
	log "==> $name built in $((end - start))s"
}

build_etcd() {
	if has_version etcd "etcd Version: ${ETCD_VERSION#v}"; then
		log "==> etcd ${ETCD_VERSION} present, skipping"
		return
	fi
	timed etcd bash -c "cd '$here/etcd' && go build -trimpath -ldflags '-s -w' -o '$bin/etcd' go.etcd.io/etcd/server/v3"
}

kube_ldflags() {
	local v=${KUBE_VERSION#v} major minor
	major=${v%%.*}
	minor=${v#*.}
	minor=${minor%%.*}
	printf '%s' "-s -w -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} -X k8s.io/component-base/version.gitMajor=${major} -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean"
}

# kube_components are the names the kube binary answers to.
kube_components=(kube-apiserver kube-scheduler kube-controller-manager kubelet)

# build_kube builds the multi-call binary when a component is missing or has
# another version, then links every component name to it. Each link replaces
# its file atomically (rename), so running clusters keep their binaries.
build_kube() {
	local c missing=()
	if ! grep -q "k8s.io/kubernetes ${KUBE_VERSION}\$" "$here/kube/go.mod"; then
		log "tools/cluster/kube/go.mod does not require k8s.io/kubernetes ${KUBE_VERSION}; run: $0 regen-kube"
		exit 1
	fi
	for c in "${kube_components[@]}"; do
		has_version "$c" "Kubernetes ${KUBE_VERSION}" || missing+=("$c")
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		log "==> ${kube_components[*]} ${KUBE_VERSION} present, skipping"
		return
	fi
	log "==> missing or outdated: ${missing[*]}"
	timed kube bash -c "cd '$here/kube' && go build -trimpath -ldflags '$(kube_ldflags)' -o '$bin/.kube.new' ./multicall"
	mv -f "$bin/.kube.new" "$bin/kube"
	for c in "${kube_components[@]}"; do
		ln -sfn kube "$bin/.$c.new"
		mv -fT "$bin/.$c.new" "$bin/$c"
	done
}

build_kwok() {
	if has_version kwok "kwok version ${KWOK_VERSION}"; then
		log "==> kwok ${KWOK_VERSION} present, skipping"
		return
	fi
	# kwok's go.mod has no replace directives, so go install works directly.
	timed kwok env GOBIN="$bin" go install -trimpath -ldflags '-s -w' "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
}

# regen_kube rewrites tools/cluster/kube from k8s.io/kubernetes@KUBE_VERSION's
# own replace block: each staging module k8s.io/<x> is pinned to
# v0.<minor>.<patch>, or to an empty stub module when the proxy lacks that
# version (none of those is compiled into the kube binary).
regen_kube() {
	local dir=$here/kube staging gomod m mods
	staging=v0${KUBE_VERSION#v1}
	gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	mods=$(sed -n '/^replace (/,/^)/p' "$gomod" | awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}')
	rm -rf "$dir/stub"
	{
		printf 'module local/kubebuild\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBE_VERSION"
		for m in $mods; do
			if (cd "$dir" && go mod download "$m@$staging") >/dev/null 2>&1; then
				printf '\t%s => %s %s\n' "$m" "$m" "$staging"
			else
				log "stub: $m@$staging is not on the proxy"
				mkdir -p "$dir/stub/${m#k8s.io/}"
				printf 'module %s\n' "$m" >"$dir/stub/${m#k8s.io/}/go.mod"
				printf '\t%s => ./stub/%s\n' "$m" "${m#k8s.io/}"
			fi
		done
		printf ')\n'
	} >"$dir/go.mod.new"
	mv "$dir/go.mod.new" "$dir/go.mod"
	: >"$dir/go.sum"
	# -e: tests of dependencies import packages of the stubbed modules.
	(cd "$dir" && GOFLAGS=-buildvcs=false go mod tidy -e)
}

case ${1:-build} in
build)
	mkdir -p "$bin"
	build_etcd
	build_kube
	build_kwok
	;;
regen-kube)
	regen_kube
	;;
*)
	log "usage: $0 [build|regen-kube]"
	exit 2
	;;
esac
