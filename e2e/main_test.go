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

	"github.com/binderbuild/binderbuild/internal/testcluster"
)

// cluster is shared by the tests of this package that build, started by
// the first; each test has its own namespace.
var cluster = testcluster.Shared{Setup: func(ctx context.Context, c *testcluster.Cluster) error {
	return c.AddNode(ctx, "docker-api-node", map[string]string{dockerAPILabel: "true"}, nil)
}}

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
		defer func() {
			if err := cluster.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "stop test cluster:", err)
			}
		}()
		return m.Run()
	}())
}
