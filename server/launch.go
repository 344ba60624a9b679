package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
	"github.com/binderbuild/binderbuild/internal/rawquery"
	"github.com/binderbuild/binderbuild/internal/wait"
)

// Launcher starts users' servers through JupyterHub; *launcher.Launcher
// is one. With a Launcher, /build requests without build_only=true launch
// the image once it is there (upstream's launch mode).
type Launcher interface {
	// CheckQuota returns a *binderbuild.QuotaExceeded when a server for
	// req would exceed a quota.
	CheckQuota(ctx context.Context, req binderbuild.LaunchRequest) error
	// Launch makes one launch attempt, passing the hub's spawn-progress
	// messages to progress (from any goroutine, one at a time). Its
	// failures are *binderbuild.LaunchError.
	Launch(ctx context.Context, req binderbuild.LaunchRequest, progress func(message string)) (binderbuild.Launched, error)
	// Retry tells whether a failed attempt is tried again, after what pause.
	Retry(attempt int) (time.Duration, bool)
	// PeekQuota is CheckQuota without counting the server in: the check
	// before a build, whose launch is checked again with CheckQuota.
	PeekQuota(ctx context.Context, req binderbuild.LaunchRequest) error
}

// LaunchConfig holds the settings of launch mode.
type LaunchConfig struct {
	BadgeBaseURL string `split_words:"true" desc:"base URL of launch links and badges, e.g. https://mybinder.org/ (default: the request's scheme, host and BINDERBUILD_BASE_URL; upstream badge_base_url)"`
}

// linger keeps a stream open after the ready event of a build followed by
// a launch, as upstream: EventSource clients close first and do not
// reconnect into a new build.
const linger = 60 * time.Second

// launchReq is a /build request that launches a server.
type launchReq struct {
	req      binderbuild.LaunchRequest
	provider string // provider name, for metrics
	repo     string // repo label of binderhub_launch_count_total
	info     *launchInfo
}

// launchRequest returns the launch of a /build request, nil when it only
// builds (build_only=true, or no Launcher).
func (s *Server) launchRequest(r *http.Request, li *launchInfo, res binderbuild.Resolved, image string) (*launchReq, error) {
	if s.deps.Launcher == nil || strings.EqualFold(rawquery.Get(r.URL.RawQuery, "build_only"), "true") {
		return nil, nil
	}
	var user string
	if s.deps.Auth != nil {
		u, err := s.authenticate(r) // cached: admit checked the token already
		if err != nil {
			return nil, err
		}
		if u.Hub {
			user = u.Name
		}
	}
	li.launch = true
	lr := &launchReq{
		req: binderbuild.LaunchRequest{
			Image: image, RepoURL: res.URL, User: user, HighQuota: s.cfg.highQuota(res.Spec),
			RefURL: res.RefURL, LaunchHost: s.launchHost(r),
			Request:           "v2/" + res.Provider + "/" + res.Spec,
			PersistentRequest: "v2/" + res.Provider + "/" + res.ResolvedSpec,
			ClientIP:          s.cfg.clientIP(r).String(),
		},
		provider: res.ProviderName,
		info:     li,
	}
	if s.deps.Metrics.repoLabel() {
		lr.repo = res.URL
	}
	return lr, nil
}

// launchHost is upstream's binder_launch_host: badge_base_url, else the
// URL the request reached.
func (s *Server) launchHost(r *http.Request) string {
	if s.cfg.BadgeBaseURL != "" {
		return strings.TrimSuffix(s.cfg.BadgeBaseURL, "/") + "/"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); (p == "http" || p == "https") && s.cfg.TrustedProxies.contains(peerAddr(r)) {
		scheme = p
	}
	return scheme + "://" + r.Host + s.cfg.BaseURL
}

// checkQuota refuses a build whose launch would exceed a quota, as
// upstream does before building.
func (s *Server) checkQuota(ctx context.Context, res binderbuild.Resolved, image string) error {
	if s.deps.Launcher == nil {
		return nil
	}
	err := s.deps.Launcher.PeekQuota(ctx, binderbuild.LaunchRequest{Image: image, RepoURL: res.URL, HighQuota: s.cfg.highQuota(res.Spec)})
	if q, ok := errors.AsType[*binderbuild.QuotaExceeded](err); ok {
		repo := ""
		if s.deps.Metrics.repoLabel() {
			repo = res.URL
		}
		s.deps.Metrics.launchCounted(q.Status, res.ProviderName, repo)
		return expected(q.Message)
	}
	return err
}

// launchAfter sends built (found: the image was in the registry) and
// launches the server; a launch after a build lingers after ready.
func (s *Server) launchAfter(r *http.Request, st *stream, lr *launchReq, found bool) {
	built := events.New("built", events.Field{Key: "phase", Value: "built"}, events.Field{Key: "message", Value: "Built image, launching...\n"},
		events.Field{Key: "imageName", Value: lr.req.Image})
	if found {
		built = events.New("built", events.Field{Key: "phase", Value: "built"}, events.Field{Key: "imageName", Value: lr.req.Image},
			events.Field{Key: "message", Value: "Found built image, launching...\n"})
	}
	if st.send(built) != nil {
		return
	}
	done := s.deps.Metrics.launchStarted()
	srv, err := s.launch(r.Context(), st, lr)
	done()
	if err != nil {
		s.fail(st, r, err)
		return
	}
	s.deps.Events.Emit(launchEvent(r, lr.info))
	if st.send(readyEvent(lr.req, srv)) != nil || found {
		return
	}
	_ = wait.Sleep(r.Context(), linger)
}

// launch runs upstream's launch: the quota check, then attempts until one
// succeeds or Retry says stop, timing each in
// binderhub_launch_time_seconds and counting the launch once in
// binderhub_launch_count_total.
func (s *Server) launch(ctx context.Context, st *stream, lr *launchReq) (binderbuild.Launched, error) {
	m := s.deps.Metrics
	if err := s.deps.Launcher.CheckQuota(ctx, lr.req); err != nil {
		if q, ok := errors.AsType[*binderbuild.QuotaExceeded](err); ok {
			m.launchCounted(q.Status, lr.provider, lr.repo)
			return binderbuild.Launched{}, expected(q.Message)
		}
		return binderbuild.Launched{}, err
	}
	if err := st.send(events.Message("launching", "Launching server...\n")); err != nil {
		return binderbuild.Launched{}, err
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		srv, err := s.launchAttempt(ctx, st, lr.req)
		took := time.Since(start)
		if err == nil {
			m.launchTimed("success", attempt-1, took)
			m.launchCounted("success", lr.provider, lr.repo)
			s.log.InfoContext(ctx, "launched", "repo", lr.req.RepoURL, "user", srv.User, "seconds", took.Seconds())
			return srv, nil
		}
		delay, again := s.deps.Launcher.Retry(attempt)
		if !again || ctx.Err() != nil {
			m.launchTimed("failure", -1, took)
			m.launchCounted("failure", lr.provider, lr.repo)
			return binderbuild.Launched{}, launchFailure(err)
		}
		m.launchTimed("retry", -1, took)
		s.log.ErrorContext(ctx, "retrying launch after error", "repo", lr.req.RepoURL, "attempt", attempt, "error", err)
		if err := st.send(events.Message("launching", "Launch attempt "+strconv.Itoa(attempt)+" failed, retrying...\n")); err != nil {
			return binderbuild.Launched{}, err
		}
		if err := wait.Sleep(ctx, delay); err != nil {
			return binderbuild.Launched{}, err
		}
	}
}

// launchAttempt runs one Launch, sending its progress as launching events
// and heartbeats while it waits: the stream is written by this goroutine
// only.
func (s *Server) launchAttempt(ctx context.Context, st *stream, req binderbuild.LaunchRequest) (binderbuild.Launched, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan string)
	type result struct {
		srv binderbuild.Launched
		err error
	}
	done := make(chan result, 1)
	go func() {
		srv, err := s.deps.Launcher.Launch(ctx, req, func(msg string) {
			select {
			case msgs <- msg:
			case <-ctx.Done():
			}
		})
		done <- result{srv, err}
	}()
	for {
		select {
		case msg := <-msgs:
			if st.send(events.Message("launching", msg+"\n")) != nil {
				cancel() // the client left: the launch is abandoned
			}
		case <-s.streams.beat.C():
			if st.heartbeat() != nil {
				cancel()
			}
		case res := <-done:
			return res.srv, res.err
		}
	}
}

// launchFailure turns a launch error into the stream's failed event:
// upstream's message with its status code.
func launchFailure(err error) error {
	if le, ok := errors.AsType[*binderbuild.LaunchError](err); ok {
		return &requestError{status: le.Code, msg: le.Message + "\n", cause: le.Err}
	}
	return err
}

// readyEvent is upstream's ready event of a launch, with imageName added
// for clients of build-only streams.
func readyEvent(req binderbuild.LaunchRequest, srv binderbuild.Launched) events.Event {
	return events.New("ready",
		events.Field{Key: "phase", Value: "ready"},
		events.Field{Key: "message", Value: "server running at " + srv.URL + "\n"},
		events.Field{Key: "image", Value: req.Image},
		events.Field{Key: "imageName", Value: req.Image},
		events.Field{Key: "repo_url", Value: req.RepoURL},
		events.Field{Key: "token", Value: srv.Token},
		events.Field{Key: "binder_ref_url", Value: req.RefURL},
		events.Field{Key: "binder_launch_host", Value: req.LaunchHost},
		events.Field{Key: "binder_request", Value: req.Request},
		events.Field{Key: "binder_persistent_request", Value: req.PersistentRequest},
		events.Field{Key: "binder_client_ip", Value: req.ClientIP},
		events.Field{Key: "url", Value: srv.URL},
	)
}

// launchEvent is the binderhub.jupyter.org/launch event of a successful
// launch: origin is the Host header, request_origin the Origin header,
// else Sec-Fetch-Site (scripts seldom send it; browsers always do).
func launchEvent(r *http.Request, li *launchInfo) events.Launch {
	return events.Launch{Provider: li.provider, Spec: li.spec, Ref: li.ref, Status: events.LaunchSuccess,
		BuildToken: li.buildToken, Origin: r.Host, RequestOrigin: launchRequestOrigin(r)}
}

func launchRequestOrigin(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return o
	}
	return r.Header.Get("Sec-Fetch-Site")
}

// launchStarted counts a launch in binderhub_inprogress_launches; call
// the result when it ends.
func (m *Metrics) launchStarted() (ended func()) {
	if m == nil {
		return func() {}
	}
	m.inProgressLaunches.Inc()
	return m.inProgressLaunches.Dec
}

// launchTimed observes one launch attempt: status success (retries: the
// failed attempts before), retry or failure (retries -1), as upstream.
func (m *Metrics) launchTimed(status string, retries int, d time.Duration) {
	if m != nil {
		m.launchTime.WithLabelValues(status, strconv.Itoa(retries)).Observe(d.Seconds())
	}
}

// launchCounted counts a launch by outcome: success, failure, pod_quota
// or repo_quota.
func (m *Metrics) launchCounted(status, provider, repo string) {
	if m != nil {
		m.launchCount.WithLabelValues(status, provider, repo).Inc()
	}
}

func (m *Metrics) repoLabel() bool { return m != nil && m.withRepo }
