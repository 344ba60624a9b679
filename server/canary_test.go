package server

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/events"
)

// recordExec records the requests it builds and succeeds.
type recordExec struct {
	mu   sync.Mutex
	reqs []binderbuild.BuildRequest
}

func (e *recordExec) Run(_ context.Context, req binderbuild.BuildRequest, _ *events.Log) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reqs = append(e.reqs, req)
	return nil
}

// TestCanaryRoute: only the canary token may build with another build
// image, under a name and tag of its own and never from the cache; /build
// ignores a build_image query.
func TestCanaryRoute(t *testing.T) {
	const token = "canary-s3cret"
	const candidate = "quay.io/jupyterhub/repo2docker:2024.08.0"
	normal := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	exec := &recordExec{}
	ts := newTestServer(t, Config{APIOnly: true, CanaryConfig: CanaryConfig{CanaryToken: token}}, Deps{
		Images:  present(normal), // a normal cache hit must not answer canaries
		Builder: builder.NewShared(t.Context(), exec, 0),
	})
	// The tag carries the first 6 bytes of sha256(candidate).
	canary := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha+"-canary-61a9eb944f25")
	tests := []struct {
		name, path string
		header     []string
		want       string
	}{
		{"no token", "/canary/gh/org/repo/HEAD?build_image=" + candidate, nil,
			`data: {"phase": "failed", "status_code": 403, "message": "Forbidden\n"}` + "\n\n"},
		{"wrong token", "/canary/gh/org/repo/HEAD?build_image=" + candidate, []string{"Authorization", "Bearer nope"},
			`data: {"phase": "failed", "status_code": 403, "message": "Forbidden\n"}` + "\n\n"},
		{"no build image", "/canary/gh/org/repo/HEAD", []string{"Authorization", "Bearer " + token},
			`data: {"phase": "failed", "status_code": 400, "message": "build_image must name an image, e.g. quay.io/jupyterhub/repo2docker:2024.07.0\n"}` + "\n\n"},
		{"builds with the candidate", "/canary/gh/org/repo/HEAD?build_image=" + candidate, []string{"Authorization", "Bearer " + token},
			`data: {"phase": "waiting", "message": "Waiting for build to start...\n"}` + "\n\n" +
				`data: {"phase": "ready", "message": "Done! Image built\n", "imageName": "` + canary + `"}` + "\n\n"},
		{"build_image ignored by /build", "/build/gh/org/repo/HEAD?build_only=true&build_image=" + candidate, []string{"Authorization", "Bearer " + token},
			`data: {"phase": "ready", "imageName": "` + normal + `", "message": "Done! Found built image\n"}` + "\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, ts.URL, tc.path, tc.header...)
			if resp.StatusCode != http.StatusOK || body != tc.want {
				t.Errorf("%s: %d\n%s\nwant\n%s", tc.path, resp.StatusCode, body, tc.want)
			}
		})
	}
	exec.mu.Lock()
	defer exec.mu.Unlock()
	if len(exec.reqs) != 1 {
		t.Fatalf("%d builds, want 1: %+v", len(exec.reqs), exec.reqs)
	}
	got := exec.reqs[0]
	if got.BuildImage != candidate || got.Image != canary || got.Name == binderbuild.BuildName("org-repo", sha) {
		t.Errorf("canary build %+v: want build image %s, image %s and a name of its own", got, candidate, canary)
	}

	off := newTestServer(t, Config{APIOnly: true}, Deps{})
	if resp, _ := get(t, off.URL, "/canary/gh/org/repo/HEAD?build_image="+candidate, "Authorization", "Bearer "); resp.StatusCode != http.StatusNotFound {
		t.Errorf("canary route without a token configured: %d, want 404", resp.StatusCode)
	}
}
