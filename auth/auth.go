// Package auth identifies the callers of /build: JupyterHub API tokens
// checked against the hub's API (HubAuth), bearer tokens from a file
// (TokenAuth), and BinderHub build tokens (BuildTokens), HS256 JWTs that
// exempt a request from the rate limit.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Config holds the authentication settings. The tags document the
// environment variables cmd reads them from (prefix BINDERBUILD_).
type Config struct {
	Auth                 string        `default:"none" desc:"authentication of /build: none, jupyterhub (JupyterHub API tokens, checked at BINDERBUILD_JUPYTERHUB_API_URL) or tokens (bearer tokens from BINDERBUILD_AUTH_TOKENS_FILE)"`
	AuthTokensFile       string        `split_words:"true" desc:"file of accepted bearer tokens for BINDERBUILD_AUTH=tokens: one token per line, optionally preceded by a name and a space ('ci-bot s3cret'); blank lines and lines starting with # are ignored"`
	JupyterhubApiUrl     string        `split_words:"true" fallback:"JUPYTERHUB_API_URL" desc:"JupyterHub API URL that checks user tokens (unset: http://127.0.0.1:8081/hub/api)"`
	RequiredScopes       []string      `split_words:"true" desc:"comma list of JupyterHub scopes of which a user's token must hold one, e.g. access:services!service=binder (default: from $JUPYTERHUB_OAUTH_ACCESS_SCOPES or $JUPYTERHUB_SERVICE_NAME; empty: every hub user may build)"`
	AuthCacheTTL         time.Duration `split_words:"true" default:"5m" desc:"how long a valid token check is reused"`
	AuthNegativeCacheTTL time.Duration `split_words:"true" default:"30s" desc:"how long a rejected token check is reused"`

	HubMaxConcurrentChecks int           `split_words:"true" default:"8" desc:"JupyterHub token checks sent to the hub at once; further checks wait up to BINDERBUILD_HUB_CHECK_QUEUE_TIMEOUT, then fail with 503"`
	HubCheckQueueTimeout   time.Duration `split_words:"true" default:"5s" desc:"how long a JupyterHub token check waits for a free slot"`

	// What JupyterHub gives its services, the default of RequiredScopes
	// (see HubScopes).
	JupyterhubOauthAccessScopes string `split_words:"true" fallback:"JUPYTERHUB_OAUTH_ACCESS_SCOPES" desc:"JSON list of the scopes of this service's OAuth client in JupyterHub, the default of BINDERBUILD_REQUIRED_SCOPES"`
	JupyterhubOauthScopes       string `split_words:"true" fallback:"JUPYTERHUB_OAUTH_SCOPES" desc:"deprecated form of BINDERBUILD_JUPYTERHUB_OAUTH_ACCESS_SCOPES, read when neither it nor $JUPYTERHUB_OAUTH_ACCESS_SCOPES is set"`
	JupyterhubServiceName       string `split_words:"true" fallback:"JUPYTERHUB_SERVICE_NAME" desc:"this service's name in JupyterHub; without the scopes above, BINDERBUILD_REQUIRED_SCOPES defaults to access:services!service=<name>"`
}

// Modes of Config.Auth.
const (
	None       = "none"
	JupyterHub = "jupyterhub"
	Tokens     = "tokens"
)

// Validate checks the settings that parsing alone does not.
func (c Config) Validate() error {
	switch c.Auth {
	case "", None, JupyterHub:
	case Tokens:
		if c.AuthTokensFile == "" {
			return errors.New("BINDERBUILD_AUTH=tokens needs BINDERBUILD_AUTH_TOKENS_FILE")
		}
	default:
		return fmt.Errorf("invalid BINDERBUILD_AUTH=%q: want none, jupyterhub or tokens", c.Auth)
	}
	return nil
}

// User is the authenticated caller of a request.
type User struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Scopes []string `json:"scopes"`
	// Hub is set for users the JupyterHub API vouched for: servers can be
	// launched in their name.
	Hub bool `json:"-"`
}

// Error is a failed check whose Message the client sees (with its final
// "\n") in a failed event with status_code Status. Cause is logged, never
// sent.
type Error struct {
	Status  int
	Message string
	Cause   error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Authenticator identifies the caller holding token. It returns (nil, nil)
// for a token it does not accept; an error is a failure to check (its
// text, if an *Error, is shown to the client). Implementations never log
// the token.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*User, error)
}

// New returns the Authenticator of cfg.Auth (nil for none) and, in
// jupyterhub mode, the hub's health check (else nil). client makes the hub
// requests; it should have a timeout.
func New(cfg Config, client *http.Client, log *slog.Logger) (Authenticator, func(context.Context) error, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	switch cfg.Auth {
	case JupyterHub:
		hub, err := NewHubAuth(cfg, client, log)
		if err != nil {
			return nil, nil, err
		}
		return hub, hub.Check, nil
	case Tokens:
		ta, err := LoadTokenAuth(cfg.AuthTokensFile)
		if err != nil {
			return nil, nil, fmt.Errorf("BINDERBUILD_AUTH_TOKENS_FILE: %w", err)
		}
		return ta, nil, nil
	}
	return nil, nil, nil
}
