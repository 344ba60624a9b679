// Package launcher starts users' servers through JupyterHub's REST API, as
// upstream BinderHub's launcher does: a temporary user named from the
// repository (or the authenticated user, or one of their named servers),
// user_options carrying the image and the binder_* fields, the hub's spawn
// progress followed until the server is ready, Hub API retries and a launch
// timeout. Quota counts the user servers running in Kubernetes.
package launcher

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/wait"
)

// Config holds the launcher's settings. The tags document the environment
// variables cmd reads them from (prefix BINDERBUILD_).
type Config struct {
	HubURL      string `split_words:"true" desc:"public URL of JupyterHub, e.g. https://hub.example.org/; servers' URLs start with it (upstream hub_url)"`
	HubURLLocal string `split_words:"true" desc:"URL at which this service reaches JupyterHub, when not BINDERBUILD_HUB_URL (upstream hub_url_local); the API is its hub/api/, or $JUPYTERHUB_API_URL when set"`
	HubAPIToken string `split_words:"true" fallback:"JUPYTERHUB_API_TOKEN" desc:"JupyterHub API token of this service (secret). Needs the scopes servers and admin:users"`
	// HubAPIURL is the Hub API base; empty: HubURLLocal + "hub/api/".
	HubAPIURL               string        `envconfig:"HUB_API_URL" fallback:"JUPYTERHUB_API_URL" desc:"JupyterHub API URL of launches (neither set: the hub/api/ of BINDERBUILD_HUB_URL_LOCAL)"`
	Retries                 int           `default:"4" desc:"attempts of each Hub API request and of each launch (upstream Launcher.retries)"`
	RetryDelay              time.Duration `split_words:"true" default:"4s" desc:"pause before the second attempt, doubled before each further one (upstream Launcher.retry_delay, in seconds there)"`
	LaunchTimeout           time.Duration `split_words:"true" default:"10m" desc:"how long a server may take to become ready (upstream Launcher.launch_timeout)"`
	AllowNamedServers       bool          `split_words:"true" fallback:"JUPYTERHUB_ALLOW_NAMED_SERVERS" desc:"with authentication, start a named server per launch instead of the user's default server (upstream allow_named_servers)"`
	NamedServerLimitPerUser int           `split_words:"true" fallback:"JUPYTERHUB_NAMED_SERVER_LIMIT_PER_USER" desc:"with named servers, how many a user may run at once (0: no limit; upstream named_server_limit_per_user)"`
	// RequestTimeout bounds each Hub API request other than the progress
	// stream.
	RequestTimeout time.Duration `split_words:"true" default:"30s" desc:"time limit of one Hub API request (the spawn progress stream has BINDERBUILD_LAUNCH_TIMEOUT)"`
}

// Launcher starts servers through the Hub API. Its methods are safe for
// concurrent use.
type Launcher struct {
	cfg    Config
	api    string // Hub API base URL, ending with "/"
	client *http.Client
	quota  *Quota
	log    *slog.Logger
}

// New returns a launcher for cfg. client makes the Hub API requests; its
// Timeout must be 0 (the progress stream lasts up to LaunchTimeout: requests
// are bounded by contexts). quota may be nil (no quotas).
func New(cfg Config, client *http.Client, quota *Quota, log *slog.Logger) (*Launcher, error) {
	if cfg.HubURL == "" || cfg.HubAPIToken == "" {
		return nil, errors.New("launching needs the hub URL and the hub API token")
	}
	if cfg.HubURLLocal == "" {
		cfg.HubURLLocal = cfg.HubURL
	}
	cfg.HubURL = withSlash(cfg.HubURL)
	api := cfg.HubAPIURL
	if api == "" {
		api = withSlash(cfg.HubURLLocal) + "hub/api/"
	}
	for _, u := range []string{cfg.HubURL, api} {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("hub URL %q: want an http or https URL", u)
		}
	}
	cfg.Retries = max(cfg.Retries, 1)
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.LaunchTimeout <= 0 {
		cfg.LaunchTimeout = 10 * time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Launcher{cfg: cfg, api: withSlash(api), client: client, quota: quota, log: log}, nil
}

func withSlash(s string) string {
	if strings.HasSuffix(s, "/") {
		return s
	}
	return s + "/"
}

// Retry tells whether a launch may be attempted again after attempt
// (counted from 1) failed, and after what pause: RetryDelay, doubled for
// each further attempt, Retries attempts in all.
func (l *Launcher) Retry(attempt int) (time.Duration, bool) {
	if attempt >= l.cfg.Retries {
		return 0, false
	}
	return l.cfg.RetryDelay << (attempt - 1), true
}

// CheckQuota returns a *binderbuild.QuotaExceeded when launching req would
// exceed a quota; nil without quotas.
func (l *Launcher) CheckQuota(ctx context.Context, req binderbuild.LaunchRequest) error {
	if l.quota == nil {
		return nil
	}
	return l.quota.Check(ctx, req.Image, req.RepoURL, req.HighQuota)
}

// PeekQuota is CheckQuota without counting the server in (see Quota.Peek),
// for the check before a build.
func (l *Launcher) PeekQuota(ctx context.Context, req binderbuild.LaunchRequest) error {
	if l.quota == nil {
		return nil
	}
	return l.quota.Peek(ctx, req.Image, req.RepoURL, req.HighQuota)
}

// userOptions is what the spawner receives, in upstream's order.
type userOptions struct {
	Image             string `json:"image"`
	RepoURL           string `json:"repo_url"`
	Token             string `json:"token"`
	RefURL            string `json:"binder_ref_url"`
	LaunchHost        string `json:"binder_launch_host"`
	Request           string `json:"binder_request"`
	PersistentRequest string `json:"binder_persistent_request"`
	ClientIP          string `json:"binder_client_ip"`
}

// Launch makes one launch attempt: it creates the temporary user (or checks
// the authenticated user's servers), starts the server with req's
// user_options and follows the hub's spawn progress, passing each message
// to progress, until the server is ready. A failure is a
// *binderbuild.LaunchError with upstream's message. A temporary user is
// deleted again, in the background, when its launch fails.
func (l *Launcher) Launch(ctx context.Context, req binderbuild.LaunchRequest, progress func(message string)) (binderbuild.Launched, error) {
	user, server := req.User, ""
	temporary := user == ""
	if temporary {
		user = UniqueName(req.RepoURL)
	} else if l.cfg.AllowNamedServers {
		server = UniqueName(req.RepoURL)
	}
	res, err := l.launch(ctx, req, user, server, temporary, progress)
	if err != nil && temporary {
		l.deleteUser(ctx, user)
	}
	return res, err
}

func (l *Launcher) launch(ctx context.Context, req binderbuild.LaunchRequest, user, server string, temporary bool, progress func(string)) (binderbuild.Launched, error) {
	esc := quote(user)
	if temporary {
		l.log.InfoContext(ctx, "creating user for image", "user", user, "image", req.Image)
		if _, err := l.call(ctx, http.MethodPost, "users/"+esc, []byte{}, maxErrorBody); err != nil {
			return binderbuild.Launched{}, launchError(http.StatusInternalServerError, "Failed to create temporary user for "+req.Image, err)
		}
	} else if err := l.checkServers(ctx, user, server); err != nil {
		return binderbuild.Launched{}, err
	}
	token, err := newToken()
	if err != nil {
		return binderbuild.Launched{}, err
	}
	opts, _ := json.Marshal(userOptions{Image: req.Image, RepoURL: req.RepoURL, Token: token, RefURL: req.RefURL,
		LaunchHost: req.LaunchHost, Request: req.Request, PersistentRequest: req.PersistentRequest, ClientIP: req.ClientIP})
	l.log.InfoContext(ctx, "starting server", "user", user, "server", server, "image", req.Image)
	if _, err := l.call(ctx, http.MethodPost, "users/"+esc+"/servers/"+quote(server), opts, maxErrorBody); err != nil {
		return binderbuild.Launched{}, launchError(http.StatusInternalServerError, "Failed to launch image "+req.Image, err)
	}
	if err := l.waitReady(ctx, req.Image, user, server, progress); err != nil {
		return binderbuild.Launched{}, err
	}
	u := l.cfg.HubURL + "user/" + esc + "/"
	if server != "" {
		u += server + "/"
	}
	return binderbuild.Launched{URL: u, Token: token, User: user, Server: server}, nil
}

// maxUserModel bounds the user model read from the hub.
const maxUserModel = 1 << 20

// checkServers refuses a launch for an authenticated user who already runs
// their default server, or the most named servers allowed.
func (l *Launcher) checkServers(ctx context.Context, user, server string) error {
	if server != "" && l.cfg.NamedServerLimitPerUser <= 0 {
		return nil
	}
	b, err := l.call(ctx, http.MethodGet, "users/"+quote(user), nil, maxUserModel)
	if err != nil {
		return fmt.Errorf("read hub user %s: %w", user, err)
	}
	var model struct {
		Servers map[string]json.RawMessage `json:"servers"`
	}
	if err := json.Unmarshal(b, &model); err != nil {
		return fmt.Errorf("read hub user %s: %w", user, err)
	}
	if server == "" {
		if _, ok := model.Servers[""]; ok {
			return launchError(http.StatusConflict, "User "+user+" already has a running server.", nil)
		}
		return nil
	}
	named := 0
	for name := range model.Servers {
		if name != "" {
			named++
		}
	}
	if named >= l.cfg.NamedServerLimitPerUser {
		return launchError(http.StatusConflict, fmt.Sprintf("User %s already has the maximum of %d named servers.  One must be deleted before a new server can be created",
			user, l.cfg.NamedServerLimitPerUser), nil)
	}
	return nil
}

func launchError(code int, msg string, err error) error {
	return &binderbuild.LaunchError{Code: code, Message: msg, Err: err}
}

// newToken returns a random UUID version 4 in unpadded URL-safe base64, as
// upstream's tokens: 22 characters.
func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// cleanupTimeout bounds the removal of a temporary user: the hub refuses
// to stop a server while its spawn is pending, until the spawner's
// start_timeout ends it.
const cleanupTimeout = 10 * time.Minute

// deleteUser removes a temporary user whose launch failed, stopping its
// server first, in the background: the request may be gone already, and a
// pending spawn can hold it up for minutes.
func (l *Launcher) deleteUser(ctx context.Context, user string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	go func() {
		defer cancel()
		esc := quote(user)
		for {
			status, err := l.once(ctx, http.MethodDelete, "users/"+esc)
			if err == nil && (status < 300 || status == http.StatusNotFound) {
				l.log.InfoContext(ctx, "deleted temporary user after failed launch", "user", user)
				return
			}
			// Active or pending: stop the server, then try again.
			_, _ = l.once(ctx, http.MethodDelete, "users/"+esc+"/server")
			if wait.Sleep(ctx, time.Second) != nil {
				l.log.ErrorContext(ctx, "temporary user not deleted", "user", user, "status", status, "error", err)
				return
			}
		}
	}()
}

// once makes one Hub API request without retries and returns its status.
func (l *Launcher) once(ctx context.Context, method, path string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
	defer cancel()
	resp, err := l.do(ctx, method, path, nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// suffixChars and suffixLen make the random part of unique names: 36^8,
// about 2^41, combinations.
const (
	suffixChars = "abcdefghijklmnopqrstuvwxyz0123456789"
	suffixLen   = 8
)

// UniqueName returns upstream's unique_name_from_repo: the repository
// URL's path with "/" turned into "-", lower-cased, without ".git",
// shortened to its first and last 15 characters when longer than 32, then
// "-" and 8 random lower-case letters and digits. For
// https://github.com/minrk/binder-example.git: minrk-binder-example-<8>.
func UniqueName(repoURL string) string {
	var path string
	if !strings.Contains(repoURL, "://") && sshRepo(repoURL) {
		_, path, _ = strings.Cut(repoURL, ":")
	} else if u, err := url.Parse(repoURL); err == nil {
		path = u.EscapedPath()
	}
	prefix := strings.ToLower(strings.ReplaceAll(strings.Trim(path, "/"), "/", "-"))
	prefix = strings.TrimSuffix(prefix, ".git")
	if r := []rune(prefix); len(r) > 32 {
		prefix = string(r[:15]) + "-" + string(r[len(r)-15:])
	}
	suffix := make([]byte, suffixLen)
	for i := range suffix {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(suffixChars))))
		if err != nil {
			panic("launcher: crypto/rand failed: " + err.Error()) // the OS has no randomness left
		}
		suffix[i] = suffixChars[n.Int64()]
	}
	return prefix + "-" + string(suffix)
}

// sshRepo matches upstream's ".*@.*\:" at the start of the URL: an "@"
// followed, later, by a ":".
func sshRepo(s string) bool {
	at := strings.Index(s, "@")
	return at >= 0 && strings.Contains(s[at+1:], ":")
}
