# helm.mk builds the pinned helm CLI that helm/helm_test.go runs, from the Go
# module proxy (no other download), into .cache/bin/helm, or into
# $BINDERBUILD_TEST_BIN/helm when that is set. Include it from the Makefile:
#
#   include tools/helm/helm.mk
#   test: helm-bin
#
# `make helm-bin` does nothing when the binary already reports HELM_VERSION.
# helm's go.mod has no replace directives, so `go install module@version`
# works without a scratch module. The -X flags are the ones helm's own
# Makefile sets: without them `helm version` prints only "v3.22" and helm
# assumes Kubernetes 1.20 for .Capabilities and `helm template`, which fails
# the chart's kubeVersion constraint.
#
# Cold build (empty GOMODCACHE and GOCACHE, 2 vCPU): 141 s wall (166 s user),
# peak RSS 0.9 GB, leaving 413 MB of modules and 717 MB of build cache; about
# 9 minutes while other builds share the machine. The binary is 79 MB.

HELM_VERSION := v3.22.0
# Kubernetes minor of the client-go that helm $(HELM_VERSION) is built with
# (k8s.io/client-go v0.37.0 in its go.mod): the version `helm template`
# renders for when no cluster is asked.
HELM_KUBE_MINOR := 37

HELM_BIN_DIR := $(or $(BINDERBUILD_TEST_BIN),$(CURDIR)/.cache/bin)
HELM := $(HELM_BIN_DIR)/helm

HELM_LDFLAGS := -s -w \
	-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/internal/version.gitTreeState=clean \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_KUBE_MINOR) \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_KUBE_MINOR)

.PHONY: helm-bin
## helm-bin: build helm $(HELM_VERSION) into $(HELM_BIN_DIR) unless present.
helm-bin:
	@if [ "$$('$(HELM)' version --template '{{.Version}}' 2>/dev/null)" = "$(HELM_VERSION)" ]; then \
		echo "==> helm $(HELM_VERSION) present, skipping"; \
	else \
		echo "==> building helm $(HELM_VERSION) into $(HELM_BIN_DIR)"; \
		mkdir -p '$(HELM_BIN_DIR)'; \
		start=$$(date +%s); \
		env -u GOOS -u GOARCH GOWORK=off GOFLAGS= GOBIN='$(HELM_BIN_DIR)' \
			$(or $(GO),go) install -trimpath -ldflags '$(HELM_LDFLAGS)' helm.sh/helm/v3/cmd/helm@$(HELM_VERSION) \
		&& echo "==> helm built in $$(( $$(date +%s) - start ))s"; \
	fi
