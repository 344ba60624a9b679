# cluster.mk: targets for the test-cluster binaries (included by the Makefile).
#
# cluster-bins builds etcd, kwok and the multi-call kube binary
# (kube-apiserver, kube-scheduler, kube-controller-manager, kubelet) into
# .cache/bin (or $BINDERBUILD_TEST_BIN) from the Go module proxy; binaries
# already at the pinned version are skipped. A cold build of kube takes ~18
# CPU-minutes (about 10 minutes on two idle cores) and 2.3 GB RAM: run it
# before, never in parallel with, `go test ./...`.

CLUSTER_MK_DIR := $(dir $(lastword $(MAKEFILE_LIST)))

.PHONY: cluster-bins
cluster-bins:
	$(CLUSTER_MK_DIR)build.sh
