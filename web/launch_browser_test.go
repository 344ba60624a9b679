package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/binderbuild/binderbuild/internal/testhub"
	"github.com/binderbuild/binderbuild/launcher"
	"github.com/binderbuild/binderbuild/repoproviders"
	"github.com/binderbuild/binderbuild/server"
	"github.com/binderbuild/binderbuild/web"
)

// everything is a registry that holds every image: /v2/ pages launch at once.
type everything struct{}

func (everything) Exists(context.Context, string) (bool, error) { return true, nil }

// TestBrowserLaunch opens a launch link in Chromium: the page shows the log
// while a real JupyterHub spawns the server, then lands on the real
// single-user server at the path of urlpath, with the token.
func TestBrowserLaunch(t *testing.T) {
	hub := testhub.Start(t, testhub.Options{})
	l, err := launcher.New(launcher.Config{HubURL: hub.URL, HubAPIURL: hub.APIURL, HubAPIToken: hub.Token, Retries: 1}, &http.Client{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	gh := fakeGitHub(t)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	srv := server.New(ctx, server.Config{BaseURL: basePath, ImagePrefix: imagePrefix}, server.Deps{
		Providers: []server.Provider{repoproviders.NewGitHub(repoproviders.GitHubConfig{APIBaseURL: gh.URL}, gh.Client(), nil, nil)},
		Images:    everything{},
		UI:        web.Handler(basePath, web.WithLaunch()),
		Launcher:  l,
	})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.CloseClientConnections(); ts.Close(); cancel() })

	b := newBrowser(t)
	// The form gives the launch link and the badge of a repository.
	b.run(chromedp.Navigate(ts.URL + basePath))
	b.waitJS("the page", `document.body.dataset.ready === 'true'`)
	b.run(chromedp.Focus(chromedp.ID("repo")), chromedp.SendKeys(chromedp.ID("repo"), "https://github.com/binder-examples/requirements"))
	link := ts.URL + basePath + "v2/gh/binder-examples/requirements/HEAD"
	b.waitJS("the launch link", `document.getElementById('launch-url').value === `+jsString(link))
	if got, want := b.text(`document.getElementById('badge-markdown').value`), "[![Binder]("+ts.URL+basePath+"badge_logo.svg)]("+link+")"; got != want {
		t.Errorf("badge markdown = %q, want %q", got, want)
	}

	b.run(chromedp.Navigate(link + "?urlpath=lab"))
	b.waitJS("the hub's spawn progress in the log", `document.body.dataset.phase === 'launching' &&
		Array.from(document.querySelectorAll('#log .line')).some(l => l.textContent.includes('Launching server...'))`)
	if got := b.text(`document.querySelector('#phases [data-phase="ready"]').className`); got != "done" {
		t.Errorf("ready phase class while launching = %q, want done (the image is built)", got)
	}
	b.waitJS("the single-user server", `location.origin + '/' === `+jsString(hub.URL)+` && location.pathname.endsWith('/lab')`)
	path := b.text(`location.pathname`)
	if !regexp.MustCompile(`^/user/binder-examples-requirements-[a-z0-9]{8}/lab$`).MatchString(path) {
		t.Fatalf("landed on %s, want /user/binder-examples-requirements-<8>/lab", path)
	}
	token := b.text(`new URLSearchParams(location.search).get('token') || ''`)
	if len(token) != 22 {
		t.Errorf("token in the landing URL = %q, want the 22-character launch token", token)
	}
	status := evalJS[float64](b, `fetch(location.pathname.replace(/lab$/, 'api/status'), {headers: {Authorization: 'token ' + `+
		jsString(token)+`}}).then(r => r.status)`, chromedp.EvalAwaitPromise)
	if status != http.StatusOK {
		t.Errorf("the server's api/status with the token = %v, want 200", status)
	}
}
