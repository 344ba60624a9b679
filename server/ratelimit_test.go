package server

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/auth"
)

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRateLimiterRows are upstream's rows (binderhub/tests/test_ratelimit.py,
// spec §9.2): limit 10 per 60 s.
func TestRateLimiterRows(t *testing.T) {
	clk := newClock()
	start := clk.Now()
	l := newRateLimiter(10, time.Minute, clk.Now)
	rl, err := l.increment("1.2.3.4")
	if err != nil || rl.Remaining != 9 || !rl.Reset.Equal(start.Add(time.Minute)) || rl.Limit != 10 {
		t.Fatalf("first = %+v, %v; want remaining 9, reset now+60", rl, err)
	}
	for want := 8; want >= 0; want-- {
		rl, err := l.increment("1.2.3.4")
		if err != nil || rl.Remaining != want {
			t.Fatalf("request %d = %+v, %v; want remaining %d", 10-want, rl, err, want)
		}
	}
	for i := range 5 {
		rl, err := l.increment("1.2.3.4")
		if err == nil || err.Error() != "Rate limit exceeded. Try again in 60 seconds.\n" {
			t.Fatalf("over-limit request %d: err = %v", i, err)
		}
		if rl.Remaining != -1-i {
			t.Errorf("over-limit request %d: remaining %d, want %d", i, rl.Remaining, -1-i)
		}
	}
	if rl, err := l.increment("5.6.7.8"); err != nil || rl.Remaining != 9 {
		t.Errorf("other key = %+v, %v; want its own window", rl, err)
	}
	clk.Add(65 * time.Second)
	rl, err = l.increment("1.2.3.4")
	if err != nil || rl.Remaining != 9 || !rl.Reset.Equal(start.Add(65*time.Second+time.Minute)) {
		t.Errorf("after reset = %+v, %v; want a fresh window: remaining 9, reset now+65+60", rl, err)
	}
}

func TestRateLimiterCleansExpiredKeys(t *testing.T) {
	clk := newClock()
	l := newRateLimiter(10, time.Minute, clk.Now)
	for i := range 50 {
		_, _ = l.increment(strconv.Itoa(i))
	}
	clk.Add(rateLimitCleanInterval)
	_, _ = l.increment("fresh")
	if n := l.size(); n != 1 {
		t.Errorf("keys after the clean interval = %d, want 1 (expired ones dropped)", n)
	}
}

func TestRateLimiterBoundedMemory(t *testing.T) {
	clk := newClock()
	l := newRateLimiterKeys(10, time.Hour, clk.Now, 100)
	for i := range 1000 {
		if _, err := l.increment(fmt.Sprintf("10.0.%d.%d", i/256, i%256)); err != nil {
			t.Fatal(err)
		}
		if n := l.size(); n > 100 {
			t.Fatalf("after %d keys the limiter holds %d, want at most 100", i+1, n)
		}
	}
}

// TestRateLimitStream checks the 429 event, the X-RateLimit-* headers and
// the keys: client IP (through trusted proxies only), user name, and the
// build-token exemption is in TestBuildTokenRequests.
func TestRateLimitStream(t *testing.T) {
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	clk := newClock()
	tokens := writeTokens(t, "alice tok-alice\nbob tok-bob\n")
	cfg := Config{APIOnly: true, AccessConfig: AccessConfig{RateLimit: 2, RateLimitPeriod: time.Hour,
		TrustedProxies: mustNetworks(t, "10.0.0.0/8")}}
	ts := newTestServer(t, cfg, Deps{Images: present(image), Now: clk.Now})
	const path = "/build/gh/org/repo/HEAD?build_only=true"
	ready := `data: {"phase": "ready", "imageName": "` + image + `", "message": "Done! Found built image\n"}` + "\n\n"
	limited := `data: {"phase": "failed", "status_code": 429, "message": "Rate limit exceeded. Try again in 3600 seconds.\n"}` + "\n\n"

	for i, want := range []string{ready, ready, limited} {
		resp, body := get(t, ts.URL, path)
		if body != want {
			t.Fatalf("request %d = %q, want %q", i, body, want)
		}
		if i < 2 {
			wantRemaining := strconv.Itoa(1 - i)
			if got := resp.Header.Get("X-RateLimit-Remaining"); got != wantRemaining {
				t.Errorf("request %d: X-RateLimit-Remaining = %q, want %s", i, got, wantRemaining)
			}
			if got, want := resp.Header.Get("X-RateLimit-Reset"), strconv.FormatInt(clk.Now().Add(time.Hour).Unix(), 10); got != want {
				t.Errorf("X-RateLimit-Reset = %q, want %s", got, want)
			}
			if got := resp.Header.Get("X-RateLimit-Limit"); got != "2" {
				t.Errorf("X-RateLimit-Limit = %q, want 2", got)
			}
		} else if resp.Header.Get("X-RateLimit-Remaining") != "" {
			t.Errorf("a refused request carries X-RateLimit headers: %v", resp.Header)
		}
	}
	// X-Forwarded-For from an untrusted peer (the test client on 127.0.0.1)
	// does not give a new key.
	if _, body := get(t, ts.URL, path, "X-Forwarded-For", "192.0.2.7"); body != limited {
		t.Errorf("spoofed X-Forwarded-For = %q, want the 429 of 127.0.0.1", body)
	}
	clk.Add(time.Hour)
	if _, body := get(t, ts.URL, path); body != ready {
		t.Errorf("after the window = %q, want ready", body)
	}

	// Authenticated users are counted by name, not by address.
	ta, err := auth.LoadTokenAuth(tokens)
	if err != nil {
		t.Fatal(err)
	}
	ts = newTestServer(t, cfg, Deps{Images: present(image), Now: clk.Now, Auth: ta})
	for i, tc := range []struct{ token, want string }{
		{"tok-alice", ready}, {"tok-alice", ready}, {"tok-alice", limited}, {"tok-bob", ready}, {"tok-bob", ready}, {"tok-bob", limited},
	} {
		if _, body := get(t, ts.URL, path, "Authorization", "Bearer "+tc.token); body != tc.want {
			t.Errorf("request %d with %s = %q, want %q", i, tc.token, body, tc.want)
		}
	}
}

func mustNetworks(t *testing.T, s string) Networks {
	t.Helper()
	var n Networks
	if err := n.UnmarshalText([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return n
}
