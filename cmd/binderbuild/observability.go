package main

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/binderbuild/binderbuild/events"
)

// redactor removes credentials in URLs and the configured secrets from
// logs and events.
func (c config) redactor() *events.Redactor {
	secrets := []string{c.GitHubConfig.AccessToken, c.ClientSecret, c.GitLabConfig.AccessToken, c.PrivateToken, c.MetricsToken, c.HubAPIToken, c.CanaryToken,
		c.ZenodoAccessToken, c.FigshareAccessToken, c.HydroShareAccessToken, c.DataverseAPIToken}
	if len(c.BuildTokenSecret) > 0 {
		secrets = append(secrets, hex.EncodeToString(c.BuildTokenSecret))
	}
	// The user info of configured URLs, also where an error message spells
	// it out of its URL.
	for _, raw := range []string{c.JupyterhubApiUrl, c.APIBaseURL, c.GitLabConfig.BaseURL, c.EventsUrl} {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			pw, _ := u.User.Password()
			secrets = append(secrets, pw, url.QueryEscape(pw))
		}
	}
	return events.NewRedactor(secrets...)
}

// newEmitter returns the launch and build event emitter writing to the
// sink of BINDERBUILD_EVENTS_SINK.
func newEmitter(cfg config, reg prometheus.Registerer, log *slog.Logger) (*events.Emitter, error) {
	var out io.Writer = os.Stdout
	if cfg.stdout != nil {
		out = cfg.stdout
	}
	m := events.NewMetrics(reg)
	sink, err := events.Open(cfg.SinkConfig, out, &http.Client{Timeout: cfg.EventsTimeout}, m, log)
	if err != nil {
		return nil, err
	}
	return events.NewEmitter(sink, cfg.redactor(), m, log)
}

// closeEmitter writes the events still queued, waiting at most 5 seconds.
func closeEmitter(e *events.Emitter, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		log.Warn("events not all written at shutdown", "error", err)
	}
}
