//go:build tools

// Package tools pins kube-apiserver and kube-scheduler for
// tools/cluster/build.sh; it is never compiled.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
