package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/fakearchive"
)

// newArchivesFixture is newFixture plus fake archives; the fake's
// loopback host is allowed for CKAN and Dataverse as an operator would
// allow an internal installation.
func newArchivesFixture(t *testing.T) (*fixture, *fakearchive.Server) {
	f := newFixture(t)
	a := fakearchive.Start(t, f.github)
	env := f.env
	env.set("BINDERBUILD_GITHUB_API_URL", a.URL)
	env.set("BINDERBUILD_DOI_RESOLVER_URL", a.ResolverURL)
	env.set("BINDERBUILD_ZENODO_URL", a.URL+"/zenodo")
	env.set("BINDERBUILD_FIGSHARE_API_URL", a.URL+"/figshare")
	env.set("BINDERBUILD_SWH_API_URL", a.URL+"/swh/api/1")
	env.set("BINDERBUILD_GIT_ALLOWED_HOSTS", a.Host)
	return f, a
}

func escapeURL(s string) string {
	return strings.NewReplacer(":", "%3A", "/", "%2F").Replace(s)
}

// TestServeArchiveTranscripts streams archive specs through the real wiring.
func TestServeArchiveTranscripts(t *testing.T) {
	f, a := newArchivesFixture(t)
	env := f.env
	images := map[string]string{
		"zenodo":       binderbuild.ImageName(f.prefix, "zenodo-3242074", "3242074"),
		"figshare":     binderbuild.ImageName(f.prefix, "figshare-9782777.v1", "9782777.v1"),
		"dataverse":    binderbuild.ImageName(f.prefix, "dataverse-dvn-2ftjclkp", "3035124.v3.0"),
		"ckan":         binderbuild.ImageName(f.prefix, "ckan-my-sample-dataset-001", "my-sample-dataset-001.v1712023831"),
		"gist":         binderbuild.ImageName(f.prefix, fakearchive.GistID, fakearchive.GistVersion),
		"swh":          binderbuild.ImageName(f.prefix, "swh-swh:1:dir:"+fakearchive.SWHDir, fakearchive.SWHDir),
		"swh snapshot": binderbuild.ImageName(f.prefix, "swh-swh:1:snp:"+fakearchive.SWHSnapshot, fakearchive.SWHRevision),
	}
	for _, image := range images {
		f.push(t, image)
	}
	base := serveT(t, env)
	ready := func(image string) string {
		return `data: {"phase": "ready", "imageName": "` + image + `", "message": "Done! Found built image\n"}` + "\n\n"
	}
	failed := func(msg string) string {
		return `data: {"phase": "failed", "message": "` + msg + `\n"}` + "\n\n"
	}
	ckan := escapeURL(a.URL + "/ckan/dataset/my-sample-dataset-001")
	ckanMissing := escapeURL(a.URL + "/ckan/dataset/nosuchdataset")
	tests := []struct{ name, path, want string }{
		{"zenodo", "zenodo/10.5281/zenodo.3242074", ready(images["zenodo"])},
		{"figshare", "figshare/10.6084/m9.figshare.9782777.v1", ready(images["figshare"])},
		{"dataverse", "dataverse/10.7910/DVN/TJCLKP", ready(images["dataverse"])},
		{"ckan", "ckan/" + ckan, ready(images["ckan"])},
		{"gist", "gist/mariusvniekerk/" + fakearchive.GistID, ready(images["gist"])},
		{"swh", "swh/swh:1:dir:" + fakearchive.SWHDir, ready(images["swh"])},
		{"swh snapshot", "swh/swh:1:snp:" + fakearchive.SWHSnapshot, ready(images["swh snapshot"])},
		{"unknown DOI", "zenodo/10.5281/zenodo.999",
			failed("Error resolving ref for zenodo:10.5281/zenodo.999: HTTP 404: Not Found")},
		{"rate limited", "zenodo/10.5281/zenodo.4290000",
			failed("Error resolving ref for zenodo:10.5281/zenodo.4290000: Zenodo rate limit exceeded (HTTP 429: Too Many Requests). Try again in 5 minutes.")},
		{"not a DOI", "figshare/9782777",
			failed(`Spec is not a Figshare DOI, provided: \"9782777\". Example: 10.6084/m9.figshare.9782777.v1`)},
		{"dataverse private host", "dataverse/10.7910/DVN/PRIVATE",
			failed("Error resolving ref for dataverse:10.7910/DVN/PRIVATE: Refusing to contact 127.0.0.1: it is a private or loopback address.")},
		{"ckan metadata host", "ckan/" + escapeURL("http://169.254.169.254/dataset/x"),
			failed("Refusing to contact 169.254.169.254: it is a private or loopback address.")},
		{"ckan missing dataset", "ckan/" + ckanMissing,
			failed("Could not resolve ref for ckan:" + ckanMissing + ". Double check your URL and that your repo is public.")},
		{"gist missing", "gist/u/nosuchgist",
			failed("Could not resolve ref for gist:u/nosuchgist. Double check your URL and that your repo is public.")},
		{"hydroshare", "hydroshare/nothing-here", failed("The specified Hydroshare resource id was not recognized.")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := base + "/build/" + tc.path + "?build_only=true"
			if got := stream(t, url, "text/event-stream"); got != tc.want {
				t.Errorf("GET %s:\n%q\nwant\n%q", tc.path, got, tc.want)
			}
		})
	}

	// The warm path: every ready spec again, without a request upstream.
	before := a.Calls()
	for _, tc := range tests[:7] {
		stream(t, base+"/build/"+tc.path+"?build_only=true", "text/event-stream")
	}
	if d := a.Calls() - before; d != 0 {
		t.Errorf("upstream requests on the warm path = %d, want 0", d)
	}
}

// TestRepoProvidersSetting enables a subset of providers, in a chosen order.
func TestRepoProvidersSetting(t *testing.T) {
	f, _ := newArchivesFixture(t)
	env := f.env
	env.set("BINDERBUILD_REPO_PROVIDERS", "zenodo,gh")
	base := serveT(t, env)
	resp, err := http.Get(base + "/api/repoproviders")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var list []struct{ ID string }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("/api/repoproviders: %v: %s", err, body)
	}
	var ids []string
	for _, p := range list {
		ids = append(ids, p.ID)
	}
	if !slices.Equal(ids, []string{"zenodo", "gh"}) {
		t.Errorf("/api/repoproviders ids = %q, want [zenodo gh]", ids)
	}
	want := `data: {"phase": "failed", "message": "No provider found for prefix gist\n"}` + "\n\n"
	if got := stream(t, base+"/build/gist/u/"+fakearchive.GistID+"?build_only=true", "text/event-stream"); got != want {
		t.Errorf("disabled gist:\n%q\nwant\n%q", got, want)
	}
}

func TestInvalidRepoProviders(t *testing.T) {
	for _, v := range []string{"gh,nope", "gh,gh", "gh,", ""} {
		t.Run(v, func(t *testing.T) {
			env := newEnv()
			env.set("BINDERBUILD_REPO_PROVIDERS", v)
			err := run(t.Context(), []string{"serve"}, env.lookup, io.Discard, io.Discard)
			want := `invalid BINDERBUILD_REPO_PROVIDERS="` + v + `": want a comma list of distinct prefixes from gh, gist, git, gl, zenodo, figshare, hydroshare, dataverse, ckan, swh`
			if err == nil || err.Error() != want {
				t.Errorf("serve with BINDERBUILD_REPO_PROVIDERS=%q: %v, want %q", v, err, want)
			}
		})
	}
}

// TestArchiveTokensRedacted checks that the archive tokens never reach logs
// or events: the service's redactor replaces each of them.
func TestArchiveTokensRedacted(t *testing.T) {
	tokens := map[string]string{
		"BINDERBUILD_ZENODO_ACCESS_TOKEN":     "zenodo-t0ken",
		"BINDERBUILD_FIGSHARE_ACCESS_TOKEN":   "figshare-t0ken",
		"BINDERBUILD_HYDROSHARE_ACCESS_TOKEN": "hydroshare-t0ken",
		"BINDERBUILD_DATAVERSE_API_TOKEN":     "dataverse-t0ken",
	}
	cfg, err := loadConfig(newEnv().merge(tokens).lookup)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.redactor()
	for env, v := range tokens {
		if got := r.String("saw " + v + " in a log line"); strings.Contains(got, v) {
			t.Errorf("%s: redacted text %q still holds the token", env, got)
		}
	}
}
