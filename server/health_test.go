package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHealthCache: /health reuses the checks' results for HealthCacheTTL
// on the server's clock (Deps.Now), then checks again.
func TestHealthCache(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var runs int
	var fail bool
	check := HealthCheck{Service: "Docker registry", Check: func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		runs++
		if fail {
			return errors.New("connection refused")
		}
		return nil
	}}
	ts := newTestServer(t, Config{HealthCacheTTL: time.Minute}, Deps{Health: []HealthCheck{check}, Now: clock})
	health := func() (status int, body string) {
		t.Helper()
		resp, err := http.Get(ts.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	steps := []struct {
		name       string
		advance    time.Duration
		fail       bool
		wantStatus int
		wantRuns   int
	}{
		{"first request checks", 0, false, 200, 1},
		{"within the TTL: reused, though the registry is down now", time.Minute - time.Nanosecond, true, 200, 1},
		{"at the TTL: checked again", time.Nanosecond, true, 503, 2},
		{"reused again", 30 * time.Second, false, 503, 2},
		{"checked again", 30 * time.Second, false, 200, 3},
	}
	for _, st := range steps {
		advance(st.advance)
		mu.Lock()
		fail = st.fail
		mu.Unlock()
		status, body := health()
		mu.Lock()
		got := runs
		mu.Unlock()
		if status != st.wantStatus || got != st.wantRuns || !strings.Contains(body, `"service":"Docker registry"`) {
			t.Errorf("%s: /health = %d %s after %d check runs; want %d after %d", st.name, status, body, got, st.wantStatus, st.wantRuns)
		}
	}
}
