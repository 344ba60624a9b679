package main

import (
	"errors"
	"log/slog"
	"net/http"

	"k8s.io/client-go/kubernetes"

	"github.com/binderbuild/binderbuild/auth"
	"github.com/binderbuild/binderbuild/launcher"
	"github.com/binderbuild/binderbuild/server"
	"github.com/binderbuild/binderbuild/web"
)

// PageSettings are the operator's messages on the pages.
type PageSettings struct {
	BannerMessage string `split_words:"true" desc:"HTML shown at the top of the pages (upstream banner_message)"`
	AboutMessage  string `split_words:"true" desc:"HTML shown at the foot of the pages (upstream about_message, which BinderHub shows on its about page)"`
}

// uiOptions adds the launch pages to the build page in launch mode, and
// the operator's messages.
func uiOptions(l server.Launcher, p PageSettings) []web.Option {
	opts := []web.Option{web.WithMessages(p.BannerMessage, p.AboutMessage)}
	if l != nil {
		opts = append(opts, web.WithLaunch())
	}
	return opts
}

// launcher.Launcher is what the server launches with.
var _ server.Launcher = (*launcher.Launcher)(nil)

// LaunchSettings are launcher.Config under a name of its own: two embedded
// Config fields would clash.
type LaunchSettings launcher.Config

// checkLaunch fills the quota namespace and refuses launch mode without a
// hub API token. What JupyterHub gives its services (API URL, token,
// named-server settings) are fallbacks in launcher.Config's tags.
func (c *config) checkLaunch() error {
	fallback(&c.QuotaNamespace, c.BuildNamespace)
	if !c.APIOnly && c.HubURL != "" && c.HubAPIToken == "" {
		return errors.New("BINDERBUILD_HUB_URL is set but no hub API token: set BINDERBUILD_HUB_API_TOKEN (or JUPYTERHUB_API_TOKEN)")
	}
	return nil
}

// newLauncher returns the launcher of launch mode: BINDERBUILD_API_ONLY=false
// with BINDERBUILD_HUB_URL, and its "JupyterHub API" health check unless
// authentication checks the hub already. Otherwise nil: every request must
// build only. Quotas count pods with kube, which must then be set.
func newLauncher(cfg config, kube kubernetes.Interface, log *slog.Logger) (server.Launcher, []server.HealthCheck, error) {
	if cfg.APIOnly || cfg.HubURL == "" {
		return nil, nil, nil
	}
	var quota *launcher.Quota
	if cfg.PodQuota >= 0 || cfg.PerRepoQuota > 0 || cfg.PerRepoQuotaHigher > 0 {
		if kube == nil {
			return nil, nil, errors.New("launch quotas count JupyterHub's user pods: they need the kubernetes executor's cluster")
		}
		quota = launcher.NewQuota(cfg.QuotaConfig, kube, nil, log)
	}
	// No client timeout: the spawn progress stream lasts up to
	// BINDERBUILD_LAUNCH_TIMEOUT; every request has a deadline.
	l, err := launcher.New(launcher.Config(cfg.LaunchSettings), &http.Client{}, quota, log)
	if err != nil {
		return nil, nil, err
	}
	log.Info("launch mode: servers start through JupyterHub", "hub_url", cfg.HubURL)
	var health []server.HealthCheck
	if cfg.Auth != auth.JupyterHub {
		health = append(health, server.HealthCheck{Service: "JupyterHub API", Check: l.Check})
	}
	return l, health, nil
}
