package gc

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// schemeRecorder records the URL scheme of every request it carries and,
// while refuseTLS is set, fails https requests as a broken TLS path would.
type schemeRecorder struct {
	next http.RoundTripper

	mu        sync.Mutex
	schemes   []string
	refuseTLS bool
}

func (s *schemeRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.schemes = append(s.schemes, r.URL.Scheme)
	refuse := s.refuseTLS && r.URL.Scheme == "https"
	s.mu.Unlock()
	if refuse {
		return nil, errors.New("tls: handshake failure")
	}
	return s.next.RoundTrip(r)
}

func (s *schemeRecorder) plainHTTP() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Index(s.schemes, "http")
}

// TestDeleteKeepsTLS lists and deletes on a TLS registry under a name that
// is neither loopback nor listed insecure: every request, deletions
// included, must stay on https (a plain-HTTP fallback would send the
// registry credentials in the clear).
func TestDeleteKeepsTLS(t *testing.T) {
	t.Parallel()
	quiet := log.New(io.Discard, "", 0)
	srv := httptest.NewUnstartedServer(ggcrregistry.New(ggcrregistry.Logger(quiet)))
	srv.Config.ErrorLog = quiet // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "example.com" // in httptest's certificate
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String()) // no DNS
	}
	rec := &schemeRecorder{next: tr}

	const prefix = "registry.test/binder/r2d-"
	ref, err := name.ParseReference(prefix + "x:1")
	if err != nil {
		t.Fatal(err)
	}
	img := build(t, testNow().Add(-40*day), layer(t, "tls", 64))
	if err := remote.Write(ref, img, remote.WithTransport(tr), remote.WithAuth(authn.Anonymous)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	c := collector(t, Config{Transport: rec, Keychain: authn.NewMultiKeychain()})
	s := Settings{ImagePrefix: prefix, MaxAge: 30 * day, Workers: 1, Delete: true}
	inv, err := c.List(t.Context(), s)
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	plan, err := NewPlan(inv, s, nil, testNow())
	if err != nil || len(plan.Delete) != 1 {
		t.Fatalf("NewPlan() deletes %d, error %v; want 1, nil", len(plan.Delete), err)
	}

	rec.mu.Lock()
	rec.refuseTLS = true
	rec.mu.Unlock()
	if rep := c.Execute(t.Context(), plan, s); rep.Failed != 1 {
		t.Errorf("Execute() with TLS refused: failed %d, want 1", rep.Failed)
	}
	if i := rec.plainHTTP(); i >= 0 {
		t.Errorf("request %d went over plain HTTP when TLS failed; want https only for a registry not listed insecure", i+1)
	}

	rec.mu.Lock()
	rec.refuseTLS = false
	rec.mu.Unlock()
	if rep := c.Execute(t.Context(), plan, s); rep.Deleted != 1 {
		t.Errorf("Execute() deleted %d, want 1", rep.Deleted)
	}
	gone := ref.Context().Digest(plan.Delete[0].Digest)
	if _, err := remote.Head(gone, remote.WithTransport(tr), remote.WithContext(t.Context())); !isNotFound(err) {
		t.Errorf("HEAD %s after Execute() = %v, want 404", gone, err)
	}
}
