package upgrades

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v89/github"

	"github.com/binderbuild/binderbuild/internal/wait"
)

// DefaultMaxWait is the longest GitHub rate-limit wait a run sits out;
// past it the run stops.
const DefaultMaxWait = time.Minute

// RateLimitError means GitHub's rate limit would take longer than the
// allowed wait to reset. The run stops: every further request would fail.
type RateLimitError struct {
	// Reset is when GitHub accepts requests again.
	Reset time.Time
	// MaxWait is the longest wait the run allowed.
	MaxWait time.Duration
}

// Error says when to try again.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("GitHub rate limit exceeded until %s, longer than the %s this run waits; stopping: run again after that",
		e.Reset.UTC().Format(time.RFC3339), e.MaxWait)
}

// GitHubAuth is how the bot authenticates: a token, or a GitHub App (whose
// installation tokens make the pull requests trigger the repository's CI).
type GitHubAuth struct {
	// Token is a personal access or Actions token.
	Token string `fallback:"GITHUB_TOKEN" desc:"upgrade bot: GitHub token (secret); without one, a GitHub App (its pull requests run CI)"`
	// AppID and AppKey (PEM, PKCS#1 or PKCS#8 RSA) authenticate as a
	// GitHub App installed on the repository; used when Token is empty.
	AppID  int64   `split_words:"true" desc:"upgrade bot: ID of the GitHub App installed on the repository"`
	AppKey KeyFile `envconfig:"APP_KEY_FILE" desc:"upgrade bot: file of the GitHub App's private key (PEM)"`
}

// GitHub is the GitHub REST API, as the bot uses it.
type GitHub struct {
	api *github.Client
	// token is the credential git pushes use.
	token string
}

// NewGitHub returns a client of the API at apiURL ("https://api.github.com",
// or "https://<host>/api/v3" for GitHub Enterprise). For an App, repo
// ("owner/name") is the repository whose installation token is made.
// Without a token or App the client is anonymous (enough for dry runs of
// public repositories).
// Rate limits that reset within maxWait are waited for; 0 means
// DefaultMaxWait.
func NewGitHub(ctx context.Context, apiURL string, auth GitHubAuth, repo string, maxWait time.Duration) (*GitHub, error) {
	if maxWait == 0 {
		maxWait = DefaultMaxWait
	}
	base := strings.TrimSuffix(apiURL, "/") + "/"
	rt := &rateLimited{next: http.DefaultTransport, maxWait: maxWait, now: time.Now, sleep: wait.Sleep}
	newClient := func(token string) (*github.Client, error) {
		opts := []github.ClientOptionsFunc{
			github.WithURLs(&base, &base),
			github.WithHTTPClient(&http.Client{Timeout: time.Minute, Transport: rt}),
			github.WithUserAgent("binderbuild-upgrades"),
			github.WithDisableRateLimitCheck(),
		}
		if token != "" { // else anonymous: dry runs of public repositories
			opts = append(opts, github.WithAuthToken(token))
		}
		return github.NewClient(opts...)
	}
	token := auth.Token
	if token == "" && auth.AppID != 0 {
		jwt, err := appJWT(auth.AppID, auth.AppKey, time.Now())
		if err != nil {
			return nil, err
		}
		app, err := newClient(jwt)
		if err != nil {
			return nil, err
		}
		if token, err = installationToken(ctx, app, repo); err != nil {
			return nil, err
		}
	}
	c, err := newClient(token)
	if err != nil {
		return nil, err
	}
	return &GitHub{api: c, token: token}, nil
}

// installationToken makes a token of the App's installation on repo.
func installationToken(ctx context.Context, app *github.Client, repo string) (string, error) {
	owner, name, _ := strings.Cut(repo, "/")
	inst, _, err := app.Apps.GetRepositoryInstallation(ctx, owner, name)
	if err != nil {
		return "", fmt.Errorf("GitHub App installation on %s: %w", repo, describe(err))
	}
	tok, _, err := app.Apps.CreateInstallationToken(ctx, inst.GetID(), nil)
	if err != nil {
		return "", fmt.Errorf("GitHub App installation token for %s: %w", repo, describe(err))
	}
	return tok.GetToken(), nil
}

// appJWT is the RS256 JSON Web Token a GitHub App authenticates with:
// issued a minute ago against clock drift, valid 9 minutes (GitHub allows
// at most 10).
func appJWT(appID int64, keyPEM []byte, now time.Time) (string, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return "", errors.New("GitHub App private key: not PEM")
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		key, _ = k.(*rsa.PrivateKey)
	}
	if key == nil {
		return "", errors.New("GitHub App private key: not an RSA key")
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{
		"iat": now.Add(-time.Minute).Unix(),
		"exp": now.Add(9 * time.Minute).Unix(),
		"iss": strconv.FormatInt(appID, 10),
	})
	signed := header + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("GitHub App JWT: %w", err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// rateLimited waits out short GitHub rate limits (403 or 429 with
// retry-after, or x-ratelimit-remaining 0 and x-ratelimit-reset, as
// GitHub documents) and turns long ones into a *RateLimitError.
type rateLimited struct {
	next    http.RoundTripper
	maxWait time.Duration
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error
}

// rateLimitRetries bounds the waits of one request.
const rateLimitRetries = 3

func (t *rateLimited) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := t.next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		now := t.now()
		reset, limited := rateLimitReset(resp, now)
		if !limited {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		wait := reset.Sub(now)
		if wait > t.maxWait || attempt == rateLimitRetries {
			return nil, &RateLimitError{Reset: reset, MaxWait: t.maxWait}
		}
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

// rateLimitReset says whether resp is a rate-limit refusal and when to
// retry.
func rateLimitReset(resp *http.Response, now time.Time) (time.Time, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return time.Time{}, false
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
			return now.Add(time.Duration(n) * time.Second), true
		}
	}
	if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			return time.Unix(n, 0), true
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return now.Add(time.Minute), true // GitHub: "wait for at least one minute"
	}
	return time.Time{}, false
}

// describe makes a GitHub API error one clear sentence.
func describe(err error) error {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl
	}
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return err
	}
	msg := er.Message
	for _, e := range er.Errors {
		if e.Message != "" {
			msg += "; " + e.Message
		} else if e.Code != "" {
			msg += "; " + e.Field + " " + e.Code
		}
	}
	req := er.Response.Request
	what := req.Method + " " + req.URL.Path
	switch er.Response.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("GitHub refused the credentials (401) on %s: %s", what, msg)
	case http.StatusForbidden:
		return fmt.Errorf("the token lacks permission (403) for %s: %s", what, msg)
	case http.StatusNotFound:
		return fmt.Errorf("not found (404) on %s: %s; does the token have access?", what, msg)
	case http.StatusUnprocessableEntity:
		return fmt.Errorf("GitHub rejected %s (422): %s", what, msg)
	}
	return fmt.Errorf("GitHub answered %d on %s: %s", er.Response.StatusCode, what, msg)
}

// Repository returns the repository "owner/name".
func (g *GitHub) Repository(ctx context.Context, repo string) (*github.Repository, error) {
	owner, name, _ := strings.Cut(repo, "/")
	r, _, err := g.api.Repositories.Get(ctx, owner, name)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", repo, describe(err))
	}
	return r, nil
}

// Fork returns the authenticated user's fork of repo, making it when
// missing (GitHub answers with the existing fork).
func (g *GitHub) Fork(ctx context.Context, repo string) (*github.Repository, error) {
	owner, name, _ := strings.Cut(repo, "/")
	r, _, err := g.api.Repositories.CreateFork(ctx, owner, name, nil)
	var accepted *github.AcceptedError // fork being made: its data is there already
	if errors.As(err, &accepted) {
		r = &github.Repository{}
		if jerr := json.Unmarshal(accepted.Raw, r); jerr != nil {
			return nil, fmt.Errorf("fork of %s: %w", repo, jerr)
		}
	} else if err != nil {
		return nil, fmt.Errorf("fork of %s: %w", repo, describe(err))
	}
	return r, nil
}
