# binderbuild: `make run` starts the service, `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
BIN := $(CURDIR)/.cache/bin
export PATH := $(BIN):$(PATH)

STATICCHECK_VERSION := v0.8.2
FUZZTIME ?= 10s

.PHONY: all build run test test-deps browser-deps docker-deps node-deps lint cross release unit fuzz bench bench-deps image image-docker clean

all: build

build:
	$(GO) build -o bin/binderbuild ./cmd/binderbuild

## run: start the service on :8585 with the default settings.
run: build
	./bin/binderbuild serve

## test: everything CI runs: system packages, cluster and helm binaries, lint, tests, fuzzing.
test: test-deps browser-deps docker-deps node-deps cluster-bins helm-bin lint unit fuzz

## test-deps: Debian packages the tests start for real (registry, git).
test-deps:
	tools/test-deps.sh

## browser-deps: headless Chromium for the browser tests of web/.
browser-deps:
	tools/browser-deps.sh

## docker-deps: Docker engine and debootstrap for the single-machine tests.
docker-deps:
	tools/docker-deps.sh

## node-deps: containerd, runc and the CNI plugins of the test cluster's real node.
node-deps:
	tools/node-deps.sh

# vet and staticcheck use -race, as the tests do: the packages are
# compiled once for all three.
lint: $(BIN)/staticcheck cross
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet -race ./...
	GOFLAGS=-race $(BIN)/staticcheck ./...

## cross: the service and CLI type-check for macOS and Windows too (the test
## helpers that start Linux processes are Linux-only); `make release` compiles
## them.
cross:
	$(GO) run ./tools/crosscheck darwin windows

## release: the CLI for linux/amd64, linux/arm64, darwin/amd64, darwin/arm64
## and windows/amd64 (static, binderbuild-<os>-<arch>[.exe]) and SHA256SUMS in
## out/release/ (`make cross` type-checks the other two OSes in `make test`).
release:
	GO=$(GO) tools/release.sh out/release

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# The slowest packages come first: go test starts packages in the order
# given, and the real-node tests (helm) would otherwise start last and run
# alone for minutes.
SLOW_PACKAGES := ./helm ./builder ./cmd/binderbuild ./internal/testcluster ./launcher ./e2e ./web

unit:
	$(GO) test -race -count=1 -timeout 30m $(SLOW_PACKAGES) ./...

## fuzz: run every fuzz target for FUZZTIME.
fuzz:
	tools/fuzz.sh $(FUZZTIME)

## bench: the performance figures reported in the issues (the warm-path
## throughput with wrk against bin/binderbuild).
bench: bench-deps build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 30m ./...

## bench-deps: wrk, the external load generator of make bench.
bench-deps:
	command -v wrk >/dev/null || tools/apt-install.sh bench-deps wrk

## image: the service's image without pulling a base image, as a `docker load`
## tarball (bin/binderbuild-image.tar); `make image PUSH=host/repo:tag` also pushes it.
image:
	@mkdir -p bin
	$(GO) run ./tools/mkimage -tar bin/binderbuild-image.tar -tag binderbuild:dev $(if $(PUSH),-push $(PUSH))

## image-docker: the same image from the Dockerfile (pulls golang and distroless).
image-docker:
	docker build -t binderbuild:dev .

clean:
	rm -rf bin .cache

include tools/cluster/cluster.mk
include tools/helm/helm.mk
include tools/e2e.mk
