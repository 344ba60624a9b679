package testregistry

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestStartAnonymous(t *testing.T) {
	t.Parallel()
	r := Start(t, Options{})
	if got, want := status(t, r.URL()+"/v2/", "", ""), http.StatusOK; got != want {
		t.Errorf("GET %s/v2/ = %d, want %d", r.URL(), got, want)
	}
	ref, err := name.ParseReference(r.Host() + "/binder/random:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("remote.Write(%s) = %v, want nil", ref, err)
	}
	if _, err := remote.Head(ref, remote.WithContext(t.Context())); err != nil {
		t.Errorf("remote.Head(%s) = %v, want nil", ref, err)
	}
	// Deletes are off by default.
	err = remote.Delete(ref, remote.WithContext(t.Context()))
	if terr, ok := err.(*transport.Error); !ok || terr.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("remote.Delete(%s) = %v, want a 405 *transport.Error", ref, err)
	}

	r.Stop()
	r.Stop() // idempotent
	if _, err := http.Get(r.URL() + "/v2/"); err == nil {
		t.Errorf("GET %s/v2/ after Stop = nil error, want connection refused", r.URL())
	}
}

func TestStartHtpasswd(t *testing.T) {
	t.Parallel()
	r := Start(t, Options{Users: map[string]string{"binder": "s3cret"}, DeleteEnabled: true})
	tests := []struct {
		name, user, pass string
		want             int
	}{
		{"anonymous", "", "", http.StatusUnauthorized},
		{"wrong password", "binder", "wrong", http.StatusUnauthorized},
		{"unknown user", "nobody", "s3cret", http.StatusUnauthorized},
		{"correct", "binder", "s3cret", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := status(t, r.URL()+"/v2/", tc.user, tc.pass); got != tc.want {
				t.Errorf("GET /v2/ as %q/%q = %d, want %d", tc.user, tc.pass, got, tc.want)
			}
		})
	}

	auth := remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "binder", Password: "s3cret"}))
	ref, err := name.ParseReference(r.Host() + "/binder/random:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, auth, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("remote.Write(%s) = %v, want nil", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	// With deletes enabled a manifest can be deleted by digest.
	if err := remote.Delete(ref.Context().Digest(d.String()), auth, remote.WithContext(t.Context())); err != nil {
		t.Errorf("remote.Delete(%s@%s) = %v, want nil", ref.Context(), d, err)
	}
	if r.ConfigPath() == "" {
		t.Errorf("ConfigPath() = \"\", want the config file")
	}
}

// status GETs url, with basic auth unless user is empty, and returns the
// status code.
func status(t *testing.T, url, user, pass string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartMissingBinaryFails(t *testing.T) {
	t.Parallel()
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(tb, Options{Binary: "/nonexistent/docker-registry"})
		t.Error("Start with a missing binary returned, want Fatalf")
	}()
	<-done
	if !strings.Contains(tb.msg, "make test-deps") || !strings.Contains(tb.msg, "/nonexistent/docker-registry") {
		t.Errorf("Start with a missing binary: Fatalf(%q), want the path and `make test-deps`", tb.msg)
	}
}
