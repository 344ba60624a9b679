// Package fakehub is JupyterHub's token API for tests of token checks: GET
// /hub/api/user and /hub/api/health, counting requests per token.
package fakehub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Hub answers GET /hub/api/user per token: "alice-token", "bob-token" and
// "root-token" are users, "svc-token" a service, "tok-hub-502" a hub error,
// "tok-hub-418" a 418 with an OAuth error body, "tok-hub-junk" a 200 that
// is not a user model; anything else 403 as the real hub (3.0) does.
type Hub struct {
	*httptest.Server
	// Down makes /hub/api/health answer 503.
	Down atomic.Bool

	mu       sync.Mutex
	requests map[string]int // Authorization header → count
}

type user struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Scopes []string `json:"scopes"`
}

var users = map[string]user{
	"alice-token": {Name: "alice", Kind: "user", Scopes: []string{"access:services!service=binder", "read:users!user=alice"}},
	"bob-token":   {Name: "bob", Kind: "user", Scopes: []string{"read:users!user=bob"}},
	"root-token":  {Name: "root", Kind: "user", Scopes: []string{"access:services"}},
	"svc-token":   {Name: "fancy", Kind: "service", Scopes: []string{}},
}

// Start starts a hub that t closes. Its API URL is URL + "/hub/api".
func Start(t testing.TB) *Hub {
	h := &Hub{requests: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

func (h *Hub) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/hub/api/health":
		if h.Down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
		return
	case "/hub/api/user":
	default:
		http.NotFound(w, r)
		return
	}
	auth := r.Header.Get("Authorization")
	h.mu.Lock()
	h.requests[auth]++
	h.mu.Unlock()
	token, ok := strings.CutPrefix(auth, "token ")
	w.Header().Set("Content-Type", "application/json")
	switch u, found := users[token]; {
	case !ok:
		w.WriteHeader(http.StatusForbidden)
	case found:
		_ = json.NewEncoder(w).Encode(u)
	case token == "tok-hub-502":
		w.WriteHeader(http.StatusBadGateway)
	case token == "tok-hub-418":
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprint(w, `{"error": "invalid_request", "error_description": "short and stout"}`)
	case token == "tok-hub-junk":
		fmt.Fprint(w, `<html>`)
	default:
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"status": 403, "message": "Forbidden"}`)
	}
}

// Count returns how many user requests carried token.
func (h *Hub) Count(token string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests["token "+token]
}
