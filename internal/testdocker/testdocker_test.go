//go:build linux

package testdocker_test

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/binderbuild/binderbuild/internal/testdocker"
)

// TestDockerEngine starts an engine, makes the images and runs the fake
// repo2docker's usage error: the harness the executor tests build on.
func TestDockerEngine(t *testing.T) {
	t0 := time.Now()
	e := testdocker.Start(t)
	t.Logf("dockerd up in %s", time.Since(t0))
	t0 = time.Now()
	image := e.Repo2dockerImage(t)
	t.Logf("images ready in %s: %s", time.Since(t0), image)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, img := range []string{testdocker.BaseImage, image} {
		if _, err := e.Client.ImageInspect(ctx, img); err != nil {
			t.Errorf("ImageInspect(%s): %v", img, err)
		}
	}
	if _, err := e.Client.Ping(ctx, client.PingOptions{}); err != nil {
		t.Fatal(err)
	}
}
