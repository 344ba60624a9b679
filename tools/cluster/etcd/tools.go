//go:build tools

// Package tools pins etcd for tools/cluster/build.sh; it is never compiled.
package tools

import _ "go.etcd.io/etcd/server/v3"
