// Package e2e runs binderbuild as its users do: the real binary (built with
// go build) building on the real test cluster of internal/testcluster,
// driven by the real npm package @jupyterhub/binderhub-client 0.5.0 under
// Node, directly and through a real JupyterHub 3.0 with its
// configurable-http-proxy (Debian packages, installed by tools/e2e-deps.sh).
//
// Nothing here skips: a missing node, npm package, hub or cluster binary
// fails the test with the reason.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild/internal/testcluster"
)

// cluster is shared by the tests of this package; each test has its own
// namespace.
var cluster *testcluster.Cluster

// dockerAPILabel marks the node build pods are scheduled on.
const dockerAPILabel = "binderbuild.test/docker-api"

// tmpRoot holds what TestMain's tests share: the built binary.
var tmpRoot string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		tmpRoot, err = os.MkdirTemp("", "binderbuild-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmpRoot)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c, err := testcluster.Start(ctx, testcluster.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "start test cluster:", err)
			return 1
		}
		defer c.Stop()
		if err := c.AddNode(ctx, "docker-api-node", map[string]string{dockerAPILabel: "true"}, nil); err != nil {
			fmt.Fprintln(os.Stderr, "add node:", err)
			return 1
		}
		cluster = c
		return m.Run()
	}())
}
