#!/usr/bin/env bash
# Installs the Debian packages of the test cluster's real node
# (internal/testcluster StartNode): containerd 1.6 and runc, the CNI plugins
# (bridge, host-local, loopback in /usr/lib/cni) and iproute2 for the pod
# bridge. The kubelet comes from tools/cluster/build.sh. Nothing is started
# here: each test run starts its own containerd. Does nothing when everything
# is present.
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v ip >/dev/null || need+=(iproute2)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "node-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
	exit 1
fi
echo "node-deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
