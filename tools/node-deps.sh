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
[ ${#need[@]} -eq 0 ] || "$(dirname "$0")/apt-install.sh" node-deps "${need[@]}"
