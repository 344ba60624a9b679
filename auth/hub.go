package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild/internal/flight"
	"github.com/binderbuild/binderbuild/internal/ttl"
)

// DefaultHubAPIURL is JupyterHub's API URL when none is configured, as
// upstream's HubAuth.
const DefaultHubAPIURL = "http://127.0.0.1:8081/hub/api"

// HubAuth checks JupyterHub API tokens as JupyterHub's HubAuth does:
// GET <api>/user with "Authorization: token <token>" returns the token's
// owner. Answers are cached by the token's SHA-256 (valid ones for
// AuthCacheTTL, rejected ones for AuthNegativeCacheTTL); hub failures are not
// cached. Concurrent checks of one token share one hub request, which is
// cancelled when every client waiting for it has gone. At most
// HubMaxConcurrentChecks requests (default 8) go to the hub at once, so that
// random tokens cannot flood it.
type HubAuth struct {
	api    string
	client *http.Client
	scopes []string
	log    *slog.Logger
	host   string
	cache  *tokenCache
	group  flight.Group[string, *User] // by token hash
	limit  *flight.Limiter
}

// NewHubAuth returns the hub checker of cfg.
func NewHubAuth(cfg Config, client *http.Client, log *slog.Logger) (*HubAuth, error) {
	api := strings.TrimRight(cfg.JupyterhubApiUrl, "/")
	if api == "" {
		api = DefaultHubAPIURL
	}
	if u, err := url.Parse(api); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid BINDERBUILD_JUPYTERHUB_API_URL=%q: want an http(s) URL such as http://hub:8081/hub/api", api)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	pos, neg := cfg.AuthCacheTTL, cfg.AuthNegativeCacheTTL
	if pos <= 0 {
		pos = 5 * time.Minute
	}
	if neg <= 0 {
		neg = 30 * time.Second
	}
	var scopes []string
	for _, sc := range cfg.RequiredScopes {
		if sc = strings.TrimSpace(sc); sc != "" {
			scopes = append(scopes, sc)
		}
	}
	checks := cfg.HubMaxConcurrentChecks
	if checks <= 0 {
		checks = 8
	}
	return &HubAuth{api: api, client: client, scopes: scopes, log: log, host: host,
		cache: newTokenCache(pos, neg, tokenCacheSize, time.Now),
		limit: flight.NewLimiter(checks, cfg.HubCheckQueueTimeout)}, nil
}

// tokenCacheSize bounds the token cache.
const tokenCacheSize = 10_000

// APIURL returns the hub API URL in use.
func (h *HubAuth) APIURL() string { return h.api }

// Authenticate implements Authenticator.
func (h *HubAuth) Authenticate(ctx context.Context, token string) (*User, error) {
	key := hashToken(token)
	u, ok := h.cache.get(key)
	if !ok {
		var err error
		u, err = h.group.Do(ctx, key, func(ctx context.Context) (*User, error) {
			return h.check(ctx, key, token)
		})
		if err != nil {
			return nil, err
		}
	}
	if u == nil {
		return nil, nil
	}
	if !hasScope(u.Scopes, h.scopes) {
		return nil, &Error{Status: http.StatusForbidden, Message: "user " + u.Name + " is not allowed.\n"}
	}
	return u, nil
}

// errHubBusy is the answer to a token check that found no free slot.
var errHubBusy = &Error{Status: http.StatusServiceUnavailable,
	Message: "Too many authorization checks in progress, please try again in a minute.\n"}

// check asks the hub about token, whose hash is key, once a slot is free,
// and caches the answer.
func (h *HubAuth) check(ctx context.Context, key, token string) (*User, error) {
	release, err := h.limit.Acquire(ctx)
	if errors.Is(err, flight.ErrBusy) {
		return nil, errHubBusy
	}
	if err != nil {
		return nil, err
	}
	defer release()
	u, err := h.userForToken(ctx, token)
	if err != nil {
		return nil, err
	}
	h.cache.put(key, u)
	return u, nil
}

// userForToken asks the hub. Errors are *Error with upstream's
// messages; the token never appears in them.
func (h *HubAuth) userForToken(ctx context.Context, token string) (*User, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.api+"/user", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, &Error{
			Status:  http.StatusInternalServerError,
			Message: fmt.Sprintf("Failed to connect to Hub API at '%s'.  Is the Hub accessible at this URL (from host: %s)?\n", h.api, h.host),
			Cause:   fmt.Errorf("hub token check: %w", err),
		}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusForbidden: // no such token: upstream's allow_403
		return nil, nil
	case resp.StatusCode >= 500:
		return nil, &Error{Status: http.StatusBadGateway, Message: "Failed to check authorization (upstream problem)\n",
			Cause: fmt.Errorf("hub token check: GET %s/user: %s", h.api, resp.Status)}
	case resp.StatusCode >= 400:
		msg := "Failed to check authorization"
		var e struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil {
			if e.ErrorDescription != "" {
				msg += ": " + e.ErrorDescription
			} else if e.Error != "" {
				msg += ": " + e.Error
			}
		}
		return nil, &Error{Status: http.StatusInternalServerError, Message: msg + "\n",
			Cause: fmt.Errorf("hub token check: GET %s/user: %s", h.api, resp.Status)}
	case resp.StatusCode >= 300:
		return nil, &Error{Status: http.StatusInternalServerError, Message: "Failed to check authorization\n",
			Cause: fmt.Errorf("hub token check: GET %s/user: unexpected %s", h.api, resp.Status)}
	}
	u := User{Hub: true}
	if err := json.Unmarshal(body, &u); err != nil || u.Name == "" {
		return nil, &Error{Status: http.StatusInternalServerError, Message: "Failed to check authorization\n",
			Cause: fmt.Errorf("hub token check: GET %s/user: no user model in the answer (%v)", h.api, err)}
	}
	return &u, nil
}

// Check is the /health check: the hub's health endpoint answers 200.
func (h *HubAuth) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.api+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/health: %s", h.api, resp.Status)
	}
	return nil
}

// hasScope reports whether have satisfies one of the required scopes (all
// when none are required). An unfiltered scope satisfies its filtered forms:
// "access:services" covers "access:services!service=binder".
func hasScope(have, required []string) bool {
	if len(required) == 0 {
		return true
	}
	for _, req := range required {
		base, _, _ := strings.Cut(req, "!")
		for _, h := range have {
			if h == req || h == base {
				return true
			}
		}
	}
	return false
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenCache remembers hub answers by token hash: a user for pos, or nil
// ("no user") for neg. It holds at most max entries, the least recently
// used going first.
type tokenCache struct {
	pos, neg time.Duration
	now      func() time.Time // the entries' clock; tests replace it
	entries  *ttl.Cache[string, *User]
}

func newTokenCache(pos, neg time.Duration, max int, now func() time.Time) *tokenCache {
	c := &tokenCache{pos: pos, neg: neg, now: now}
	c.entries = ttl.New[string, *User](max, func() time.Time { return c.now() })
	return c
}

func (c *tokenCache) get(key string) (*User, bool) { return c.entries.Get(key) }

// put caches u for key; pos and neg are above 0 (NewHubAuth).
func (c *tokenCache) put(key string, u *User) {
	age := c.pos
	if u == nil {
		age = c.neg
	}
	c.entries.Add(key, u, age)
}

func (c *tokenCache) len() int { return c.entries.Len() }

// HubScopes returns RequiredScopes, or, when there are none, the scopes
// JupyterHub gives its services (as JupyterHub's HubAuth): the JSON list
// of JUPYTERHUB_OAUTH_ACCESS_SCOPES, else of the deprecated
// JUPYTERHUB_OAUTH_SCOPES, else access:services!service=<service name>.
// The hub API token is not needed: the hub identifies a user token with
// that token alone.
func (c Config) HubScopes() ([]string, error) {
	if len(c.RequiredScopes) > 0 {
		return c.RequiredScopes, nil
	}
	for _, v := range []struct{ name, value string }{
		{"JUPYTERHUB_OAUTH_ACCESS_SCOPES", c.JupyterhubOauthAccessScopes},
		{"JUPYTERHUB_OAUTH_SCOPES", c.JupyterhubOauthScopes},
	} {
		if v.value != "" {
			var scopes []string
			if err := json.Unmarshal([]byte(v.value), &scopes); err != nil {
				return nil, fmt.Errorf("invalid %s=%q: want a JSON list of scopes: %v", v.name, v.value, err)
			}
			return scopes, nil
		}
	}
	if c.JupyterhubServiceName != "" {
		return []string{"access:services!service=" + c.JupyterhubServiceName}, nil
	}
	return c.RequiredScopes, nil
}
