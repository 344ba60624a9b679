# e2e.mk: system packages of the end-to-end tests in ./e2e (included by the
# Makefile). e2e-deps installs Debian's jupyterhub and configurable-http-proxy
# and checks Node.js/npm; `make test` runs it through test-deps.

E2E_MK_DIR := $(dir $(lastword $(MAKEFILE_LIST)))

.PHONY: e2e-deps
e2e-deps:
	$(E2E_MK_DIR)e2e-deps.sh

test-deps: e2e-deps
