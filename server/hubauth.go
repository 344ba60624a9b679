package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/binderbuild/binderbuild/internal/flight"
)

// User is the authenticated caller of a request.
type User struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Scopes []string `json:"scopes"`
}

// Authenticator identifies the caller holding token. It returns (nil, nil)
// for a token it does not accept; an error is a failure to check (its text,
// if a *requestError, is shown to the client). Implementations must never
// log the token.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*User, error)
}

// DefaultHubAPIURL is JupyterHub's API URL when none is configured, as
// upstream's HubAuth.
const DefaultHubAPIURL = "http://127.0.0.1:8081/hub/api"

// NewAuth returns the Authenticator of cfg.Auth (nil for none) and the health
// checks it adds (a "JupyterHub API" check in jupyterhub mode). client makes
// the hub requests; it should have a timeout.
func NewAuth(cfg AccessConfig, client *http.Client, log *slog.Logger) (Authenticator, []HealthCheck, error) {
	switch cfg.Auth {
	case "", AuthNone:
		return nil, nil, nil
	case AuthJupyterHub:
		hub, err := NewHubAuth(cfg, client, log)
		if err != nil {
			return nil, nil, err
		}
		return hub, []HealthCheck{{Service: "JupyterHub API", Check: hub.Check}}, nil
	case AuthTokens:
		if cfg.AuthTokensFile == "" {
			return nil, nil, errors.New("BINDERBUILD_AUTH=tokens needs BINDERBUILD_AUTH_TOKENS_FILE")
		}
		ta, err := LoadTokenAuth(cfg.AuthTokensFile)
		if err != nil {
			return nil, nil, fmt.Errorf("BINDERBUILD_AUTH_TOKENS_FILE: %w", err)
		}
		return ta, nil, nil
	default:
		return nil, nil, fmt.Errorf("invalid BINDERBUILD_AUTH=%q: want none, jupyterhub or tokens", cfg.Auth)
	}
}

// authHeader matches JupyterHub's token header: "token <t>" or
// "bearer <t>", case-insensitively.
var authHeader = regexp.MustCompile(`(?i)^(?:token|bearer)\s+(.+)$`)

// requestToken returns the token of the Authorization header, if any.
func requestToken(r *http.Request) string {
	m := authHeader.FindStringSubmatch(strings.TrimSpace(r.Header.Get("Authorization")))
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

// authenticate runs §2 step 3. With authentication off it returns nil.
func (s *Server) authenticate(r *http.Request) (*User, error) {
	if s.deps.Auth == nil {
		return nil, nil
	}
	token := requestToken(r)
	if token == "" {
		return nil, userError(http.StatusForbidden, "Forbidden")
	}
	u, err := s.deps.Auth.Authenticate(r.Context(), token)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, userError(http.StatusForbidden, "Forbidden")
	}
	return u, nil
}

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
func NewHubAuth(cfg AccessConfig, client *http.Client, log *slog.Logger) (*HubAuth, error) {
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
		return nil, userError(http.StatusForbidden, "user "+u.Name+" is not allowed.")
	}
	return u, nil
}

// errHubBusy is the answer to a token check that found no free slot.
var errHubBusy = &requestError{status: http.StatusServiceUnavailable,
	msg: "Too many authorization checks in progress, please try again in a minute.\n"}

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

// userForToken asks the hub. Errors are *requestError with upstream's
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
		return nil, &requestError{
			status: http.StatusInternalServerError,
			msg:    fmt.Sprintf("Failed to connect to Hub API at '%s'.  Is the Hub accessible at this URL (from host: %s)?\n", h.api, h.host),
			cause:  fmt.Errorf("hub token check: %w", err),
		}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusForbidden: // no such token: upstream's allow_403
		return nil, nil
	case resp.StatusCode >= 500:
		return nil, &requestError{status: http.StatusBadGateway, msg: "Failed to check authorization (upstream problem)\n",
			cause: fmt.Errorf("hub token check: GET %s/user: %s", h.api, resp.Status)}
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
		return nil, &requestError{status: http.StatusInternalServerError, msg: msg + "\n",
			cause: fmt.Errorf("hub token check: GET %s/user: %s", h.api, resp.Status)}
	case resp.StatusCode >= 300:
		return nil, &requestError{status: http.StatusInternalServerError, msg: "Failed to check authorization\n",
			cause: fmt.Errorf("hub token check: GET %s/user: unexpected %s", h.api, resp.Status)}
	}
	var u User
	if err := json.Unmarshal(body, &u); err != nil || u.Name == "" {
		return nil, &requestError{status: http.StatusInternalServerError, msg: "Failed to check authorization\n",
			cause: fmt.Errorf("hub token check: GET %s/user: no user model in the answer (%v)", h.api, err)}
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

// tokenCache remembers hub answers by token hash: a user, or nil for "no
// user". It holds at most max entries; when full, expired entries go first,
// then a tenth of the rest.
type tokenCache struct {
	pos, neg time.Duration
	max      int
	now      func() time.Time

	mu      sync.Mutex
	entries map[string]tokenEntry
}

type tokenEntry struct {
	user    *User
	expires time.Time
}

func newTokenCache(pos, neg time.Duration, max int, now func() time.Time) *tokenCache {
	return &tokenCache{pos: pos, neg: neg, max: max, now: now, entries: make(map[string]tokenEntry)}
}

func (c *tokenCache) get(key string) (*User, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	if !c.now().Before(e.expires) {
		delete(c.entries, key)
		return nil, false
	}
	return e.user, true
}

func (c *tokenCache) put(key string, u *User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max-c.max/10 {
				break
			}
			delete(c.entries, k)
		}
	}
	ttl := c.pos
	if u == nil {
		ttl = c.neg
	}
	c.entries[key] = tokenEntry{user: u, expires: now.Add(ttl)}
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// TokenAuth accepts a fixed set of bearer tokens, each with a name used for
// rate limiting and logs. Tokens are compared by SHA-256 digest in constant
// time, every configured token each time.
type TokenAuth struct {
	tokens []namedToken
}

type namedToken struct {
	name   string
	digest [sha256.Size]byte
}

// LoadTokenAuth reads a tokens file: one token per line, optionally
// preceded by a name and whitespace; blank lines and # comments are skipped.
// Unnamed tokens are named "token-<line>".
func LoadTokenAuth(path string) (*TokenAuth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ta := &TokenAuth{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		var name, token string
		switch len(fields) {
		case 1:
			name, token = fmt.Sprintf("token-%d", n), fields[0]
		case 2:
			name, token = fields[0], fields[1]
		default:
			return nil, fmt.Errorf("%s line %d: want a token, or a name and a token", path, n)
		}
		ta.tokens = append(ta.tokens, namedToken{name: name, digest: sha256.Sum256([]byte(token))})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ta.tokens) == 0 {
		return nil, fmt.Errorf("%s holds no tokens", path)
	}
	return ta, nil
}

// Authenticate implements Authenticator.
func (a *TokenAuth) Authenticate(_ context.Context, token string) (*User, error) {
	d := sha256.Sum256([]byte(token))
	found := -1
	for i, t := range a.tokens {
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return nil, nil
	}
	return &User{Name: a.tokens[found].name, Kind: "token"}, nil
}

// FromJupyterHubEnv fills unset hub settings from the variables JupyterHub
// gives its services: JUPYTERHUB_API_URL, and the required scopes from
// JUPYTERHUB_OAUTH_ACCESS_SCOPES (JSON list), else the deprecated
// JUPYTERHUB_OAUTH_SCOPES, else access:services!service=$JUPYTERHUB_SERVICE_NAME
// (as JupyterHub's HubAuth). JUPYTERHUB_API_TOKEN is not needed: the hub
// identifies a user token with that token alone.
func (c *AccessConfig) FromJupyterHubEnv(getenv func(string) string) error {
	if c.JupyterhubApiUrl == "" {
		c.JupyterhubApiUrl = getenv("JUPYTERHUB_API_URL")
	}
	if len(c.RequiredScopes) > 0 {
		return nil
	}
	for _, name := range []string{"JUPYTERHUB_OAUTH_ACCESS_SCOPES", "JUPYTERHUB_OAUTH_SCOPES"} {
		if v := getenv(name); v != "" {
			if err := json.Unmarshal([]byte(v), &c.RequiredScopes); err != nil {
				return fmt.Errorf("invalid %s=%q: want a JSON list of scopes: %v", name, v, err)
			}
			return nil
		}
	}
	if name := getenv("JUPYTERHUB_SERVICE_NAME"); name != "" {
		c.RequiredScopes = []string{"access:services!service=" + name}
	}
	return nil
}
