#!/usr/bin/env bash
# Installs what the end-to-end tests (./e2e) and the launch tests (launcher,
# cmd/binderbuild, web) run for real, when missing: Debian's jupyterhub (3.0)
# with its configurable-http-proxy (node-configurable-http-proxy, pulled in
# as a dependency) and python3-notebook, which jupyterhub-singleuser serves
# launched servers with; and checks that
# Node.js >= 20.10 and npm are there for @jupyterhub/binderhub-client (the
# tests install that package themselves with `npm ci`, cached in .cache/).
set -euo pipefail

need=()
[ -x /usr/bin/jupyterhub ] || need+=(jupyterhub)
[ -e /usr/share/nodejs/configurable-http-proxy ] || need+=(node-configurable-http-proxy)
/usr/bin/python3 -c 'import notebook' 2>/dev/null || need+=(python3-notebook)
[ ${#need[@]} -eq 0 ] || "$(dirname "$0")/apt-install.sh" e2e-deps "${need[@]}"

# The binderhub-client tests need Node.js with --experimental-detect-module
# (20.10 or later) and npm. The machine image ships Node.js 20 with npm;
# Debian bookworm's own nodejs (18) is too old, so do not install it here.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "e2e-deps: node and npm (Node.js >= 20.10) are needed by the binderhub-client tests" >&2
	exit 1
fi
if ! node --experimental-detect-module -e '' 2>/dev/null; then
	echo "e2e-deps: $(node --version) lacks --experimental-detect-module; Node.js >= 20.10 is needed" >&2
	exit 1
fi

# Debian's configurable-http-proxy loads its modules from /usr/share/nodejs,
# which only Debian's node searches; the tests set NODE_PATH for it.
if ! NODE_PATH=/usr/share/nodejs configurable-http-proxy --version >/dev/null 2>&1; then
	echo "e2e-deps: configurable-http-proxy does not start (NODE_PATH=/usr/share/nodejs configurable-http-proxy --version)" >&2
	exit 1
fi
