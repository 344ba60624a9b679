package repoproviders

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
)

// resolveCase is one spec of a provider and what it must resolve to, or
// the exact error text (and whether it is binderbuild.ErrRefNotFound).
type resolveCase struct {
	spec                           string
	url, ref, resolvedSpec, refURL string
	slug                           string
	wantErr                        string
	notFound                       bool
}

func checkResolves(t *testing.T, p Provider, tests []resolveCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			repo, err := p.Parse(tc.spec)
			if err != nil {
				if tc.wantErr != "" && err.Error() == tc.wantErr {
					return
				}
				t.Fatalf("Parse(%q): %v", tc.spec, err)
			}
			res, err := p.Resolve(t.Context(), repo)
			switch {
			case tc.notFound:
				if !errors.Is(err, binderbuild.ErrRefNotFound) {
					t.Fatalf("Resolve(%q) = %+v, %v; want ErrRefNotFound", tc.spec, res, err)
				}
				return
			case tc.wantErr != "":
				if err == nil || err.Error() != tc.wantErr || errors.Is(err, binderbuild.ErrRefNotFound) {
					t.Fatalf("Resolve(%q) error = %v, want %q", tc.spec, err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("Resolve(%q): %v", tc.spec, err)
			}
			got := []string{res.URL, res.ResolvedRef, res.ResolvedSpec, res.RefURL, res.BuildSlug, res.Spec}
			want := []string{tc.url, tc.ref, tc.resolvedSpec, tc.refURL, tc.slug, tc.spec}
			if !slices.Equal(got, want) {
				t.Errorf("Resolve(%q) = (url, ref, resolved spec, ref url, slug, spec)\n%q\nwant\n%q", tc.spec, got, want)
			}
		})
	}
}

func TestZenodo(t *testing.T) {
	a := newFakeArchives(t)
	cfg := a.config()
	cfg.ZenodoAccessToken = "zenodo-secret"
	z := NewZenodo(cfg, nil, nil)
	checkResolves(t, z, []resolveCase{
		// upstream's test_zenodo rows, against the fakes
		{spec: "10.5281/zenodo.3242074", url: "10.5281/zenodo.3242074", ref: "3242074", resolvedSpec: "10.5281/zenodo.3242074",
			refURL: a.doi.URL + "/10.5281/zenodo.3242074", slug: "zenodo-3242074"},
		{spec: "10.5281/zenodo.3242073", url: "10.5281/zenodo.3242073", ref: "3242074", resolvedSpec: "10.5281/zenodo.3242074",
			refURL: a.doi.URL + "/10.5281/zenodo.3242074", slug: "zenodo-3242074"},
		{spec: "10.5281/zenodo.999", wantErr: "HTTP 404: Not Found"},
		{spec: "10.5281/zenodo.1111111", wantErr: "HTTP 410: Gone"},
		{spec: "10.5281/zenodo.6666666", wantErr: "DOI 10.5281/zenodo.6666666 does not point to a Zenodo record: it leads to evil.example."},
		{spec: "10.5281/zenodo.7777777", wantErr: "DOI 10.5281/zenodo.7777777 does not point to a Zenodo record: too many redirects."},
		{spec: "10.9999/ratelimited", wantErr: "the DOI resolver rate limit exceeded (HTTP 429: Too Many Requests). Try again in 5 minutes."},
		{spec: "10.9999/down", wantErr: "HTTP 503: Service Unavailable"},
		{spec: "10.5281/zenodo.4290000", wantErr: "Zenodo rate limit exceeded (HTTP 429: Too Many Requests). Try again in 5 minutes."},
		{spec: "10.5281/zenodo.5030000", wantErr: "HTTP 502: Bad Gateway"},
		{spec: "zenodo.3242074", wantErr: `Spec is not a Zenodo DOI, provided: "zenodo.3242074". Example: 10.5281/zenodo.3242074`},
	})
	for _, s := range []*fakeServer{a.doi, a.zenodo} {
		for _, auth := range s.seenAuth() {
			if s == a.doi || auth != "Bearer zenodo-secret" {
				t.Errorf("%s received credentials %q", s.URL, auth)
			}
		}
	}
	if len(a.zenodo.seenAuth()) == 0 {
		t.Error("Zenodo's API never received the access token")
	}
}

func TestFigshare(t *testing.T) {
	a := newFakeArchives(t)
	cfg := a.config()
	cfg.FigshareAccessToken = "figshare-secret"
	f := NewFigshare(cfg, nil, nil)
	checkResolves(t, f, []resolveCase{
		// upstream's test_figshare rows
		{spec: "10.6084/m9.figshare.9782777.v1", url: "10.6084/m9.figshare.9782777.v1", ref: "9782777.v1",
			resolvedSpec: "10.6084/m9.figshare.9782777.v1", refURL: a.doi.URL + "/10.6084/m9.figshare.9782777.v1", slug: "figshare-9782777.v1"},
		{spec: "10.6084/m9.figshare.9782777", url: "10.6084/m9.figshare.9782777", ref: "9782777.v3",
			resolvedSpec: "10.6084/m9.figshare.9782777.v3", refURL: a.doi.URL + "/10.6084/m9.figshare.9782777.v3", slug: "figshare-9782777.v3"},
		{spec: "10.6084/m9.figshare.8888888", wantErr: "Article 8888888 has no versions"},
		{spec: "10.6084/figshare", wantErr: "Unexpected figshare doi: 10.6084/figshare"},
		{spec: "10.6084/m9.figshare.404", wantErr: "HTTP 404: Not Found"},
	})
	if got := a.figshare.seenAuth(); !slices.Equal(got, []string{"token figshare-secret", "token figshare-secret"}) {
		t.Errorf("Figshare API credentials = %q, want the token on both versions requests", got)
	}
}

func TestHydroShare(t *testing.T) {
	a := newFakeArchives(t)
	h := NewHydroShare(a.config(), nil, nil)
	resURL := a.hydroshare.URL + "/resource/" + hydroShareRes
	doiURL := a.hydroshare.URL + "/resource/b8f6eae9d89241cf8b5904033460af61"
	// 2019-06-21T15:32:04 UTC
	checkResolves(t, h, []resolveCase{
		{spec: "https%3A%2F%2Fwww.hydroshare.org%2Fresource%2F" + hydroShareRes, url: resURL, ref: hydroShareRes + ".v1561131124",
			resolvedSpec: resURL, refURL: resURL, slug: "hydroshare-" + hydroShareRes + ".v1561131124"},
		{spec: "10.4211/hs.b8f6eae9d89241cf8b5904033460af61", url: doiURL, ref: "b8f6eae9d89241cf8b5904033460af61.v1561131124",
			resolvedSpec: doiURL, refURL: doiURL, slug: "hydroshare-b8f6eae9d89241cf8b5904033460af61.v1561131124"},
		{spec: "not-a-resource", wantErr: "The specified Hydroshare resource id was not recognized."},
		{spec: "00000000000000000000000000000000", wantErr: "HTTP 404: Not Found"},
		{spec: "ffffffffffffffffffffffffffffffff", wantErr: "the HydroShare response was larger than 8388608 bytes"},
	})
}

func TestDataverse(t *testing.T) {
	a := newFakeArchives(t)
	cfg := a.config()
	cfg.DataverseAPIToken = "dataverse-secret"
	d := NewDataverse(cfg, nil, nil)
	checkResolves(t, d, []resolveCase{
		// upstream's test_dataverse row; the fake answers version 3.0
		{spec: "10.7910/DVN/TJCLKP", url: "10.7910/DVN/TJCLKP", ref: "3035124.v3.0", resolvedSpec: "10.7910/DVN/TJCLKP",
			refURL: "https://doi.org/10.7910/DVN/TJCLKP", slug: "dataverse-dvn-2ftjclkp"},
		{spec: "10.7910/DVN/NOTDATAVERSE", wantErr: "127.0.0.1 did not answer like a Dataverse installation (it is not in the list of known installations)."},
		{spec: "10.7910/DVN/PRIVATE", wantErr: "Refusing to contact 127.0.0.1: it is a private or loopback address."},
		{spec: "10.7910/DVN/LOCALHOST", wantErr: "Refusing to contact localhost: it is a name for the local machine."},
		{spec: "10.7910/DVN/METADATA", wantErr: "Refusing to contact 169.254.169.254: it is a private or loopback address."},
		{spec: "10.7910/DVN/MISSING", wantErr: "HTTP 404: Not Found"},
	})
	if got := a.dataverse.seenAuth(); len(got) == 0 || slices.ContainsFunc(got, func(s string) bool { return s != "dataverse-secret" }) {
		t.Errorf("Dataverse credentials = %q, want only the API token", got)
	}
	if got := a.doi.seenAuth(); len(got) != 0 {
		t.Errorf("the DOI resolver received credentials %q", got)
	}
}

func TestDataverseGuard(t *testing.T) {
	a := newFakeArchives(t)
	cfg := a.config()
	cfg.AllowedHosts = nil
	cfg.DataverseAPIToken = "dataverse-secret"
	cfg.DataverseTokenHost = "dataverse.harvard.edu"
	d := NewDataverse(cfg, nil, nil)
	checkResolves(t, d, []resolveCase{
		{spec: "10.7910/DVN/TJCLKP", wantErr: "Refusing to contact 127.0.0.1: it is a private or loopback address."},
	})
	if n := a.dataverse.calls.Load(); n != 0 {
		t.Errorf("the loopback Dataverse received %d requests, want 0", n)
	}
}

func TestDataverseInstallations(t *testing.T) {
	hosts := dataverseInstallations()
	for _, h := range []string{"dataverse.harvard.edu", "data.aussda.at"} {
		if !hosts[h] {
			t.Errorf("installations list lacks %s", h)
		}
	}
	if len(hosts) < 50 || hosts["# known dataverse installations, one host name a line."] {
		t.Errorf("installations list has %d hosts (comments included?)", len(hosts))
	}
}

func TestCKAN(t *testing.T) {
	a := newFakeArchives(t)
	c := NewCKAN(a.config(), nil, nil)
	site := a.ckan.URL
	esc := func(s string) string {
		return strings.NewReplacer(":", "%3A", "/", "%2F", "?", "%3F", "=", "%3D").Replace(s)
	}
	sample := site + "/dataset/my-sample-dataset-001"
	activity := site + "/dataset/binder-example-sea-turtle-sightings-in-taiwan/?activity_id=93df7fd0-0edc-4ebf-bac7-fbf5f78de90b"
	history := site + "/dataset/binder-example-sea-turtle-sightings-in-taiwan/history/93df7fd0-0edc-4ebf-bac7-fbf5f78de90b"
	prefixed := site + "/prefix/dataset/prefixed"
	checkResolves(t, c, []resolveCase{
		// upstream's test_ckan rows, against the fake site
		{spec: esc(sample), url: sample, ref: "my-sample-dataset-001.v1712023831", resolvedSpec: sample, refURL: sample, slug: "ckan-my-sample-dataset-001"},
		{spec: esc(activity), url: activity, ref: "binder-example-sea-turtle-sightings-in-taiwan.v1712023831", resolvedSpec: activity, refURL: activity,
			slug: "ckan-binder-example-sea-turtle-sightings-in-taiwan"},
		{spec: esc(history), url: history, ref: "binder-example-sea-turtle-sightings-in-taiwan.v1712023831", resolvedSpec: history, refURL: history,
			slug: "ckan-binder-example-sea-turtle-sightings-in-taiwan"},
		{spec: esc(prefixed), url: prefixed, ref: "prefixed.v1712023831", resolvedSpec: prefixed, refURL: prefixed, slug: "ckan-prefixed"},
		{spec: esc(site + "/group/roger"), notFound: true},
		{spec: esc(site + "/dataset/nosuchdataset"), notFound: true},
		{spec: esc("http://127.0.0.1:8080/dataset/x"), wantErr: "Refusing to contact 127.0.0.1: it is a private or loopback address."},
		{spec: esc("http://[::1]/dataset/x"), wantErr: "Refusing to contact ::1: it is a private or loopback address."},
		{spec: esc("http://169.254.169.254/dataset/x"), wantErr: "Refusing to contact 169.254.169.254: it is a private or loopback address."},
		{spec: esc("http://2130706433/dataset/x"), wantErr: "Refusing to contact 2130706433: numeric host names must be written as dotted-decimal IPv4 addresses."},
		{spec: esc("ftp://demo.ckan.org/dataset/x"), wantErr: `Invalid CKAN dataset URL "ftp://demo.ckan.org/dataset/x": expected http(s)://<host>/dataset/<id>.`},
		{spec: esc("https://user:pw@demo.ckan.org/dataset/x"), wantErr: "Invalid CKAN dataset URL: credentials in URLs are not allowed."},
	})
}

func TestGist(t *testing.T) {
	a := newFakeArchives(t)
	g := NewGist(GistConfig{GitHub: GitHubConfig{APIBaseURL: a.github.URL, AccessToken: "gh-secret", GitCredentials: "username=gh-git\npassword=x-oauth-basic"}}, nil, nil)
	base := "https://gist.github.com/mariusvniekerk/" + gistID
	ok := func(spec, ref string) resolveCase {
		return resolveCase{spec: spec, url: base + ".git", ref: ref, resolvedSpec: "mariusvniekerk/" + gistID + "/" + ref,
			refURL: base + "/" + ref, slug: gistID}
	}
	// upstream's test_gist_ref and test_gist_secret rows
	checkResolves(t, g, []resolveCase{
		ok("mariusvniekerk/"+gistID, gistVersion),
		ok("mariusvniekerk/"+gistID+"/HEAD", gistVersion),
		ok("mariusvniekerk/"+gistID+"/master", gistVersion),
		ok("mariusvniekerk/"+gistID+"/"+gistVersion, gistVersion),
		ok("mariusvniekerk/"+gistID+"/"+gistOlder, gistOlder),
		{spec: "mariusvniekerk/" + gistID + "/nosuchref", notFound: true},
		{spec: "mariusvniekerk/nosuchgist", notFound: true},
		{spec: "mariusvniekerk/" + secretGistID, wantErr: "You seem to want to use a secret Gist, but do not have permission to do so. " +
			"To enable secret Gist support, set (or have an administrator set) 'GistRepoProvider.allow_secret_gist = True'"},
		{spec: "u/ratelimited", wantErr: "GitHub rate limit exceeded. Try again in 5 minutes."},
		{spec: "nothing", wantErr: `Spec is not of the form "user/gistId[/ref]", provided: "nothing".`},
		{spec: "u/../x", wantErr: `Invalid gist spec "u/../x": names may only contain letters, digits, "-", "_" and ".".`},
	})
	secret := NewGist(GistConfig{GitHub: GitHubConfig{APIBaseURL: a.github.URL}, AllowSecretGist: true}, nil, nil)
	repo, _ := secret.Parse("mariusvniekerk/" + secretGistID)
	if res, err := secret.Resolve(t.Context(), repo); err != nil || res.ResolvedRef != gistVersion {
		t.Errorf("secret gist with AllowSecretGist = %+v, %v; want %s", res, err, gistVersion)
	}
	if repo.GitCredentials != "" {
		t.Errorf("GitCredentials without a token = %q", repo.GitCredentials)
	}
	// Builds get the configured git credentials, never the API token.
	withToken, _ := g.Parse("mariusvniekerk/" + gistID)
	if want := "username=gh-git\npassword=x-oauth-basic"; withToken.GitCredentials != want {
		t.Errorf("GitCredentials = %q, want %q", withToken.GitCredentials, want)
	}
}

func TestSWH(t *testing.T) {
	a := newFakeArchives(t)
	s := NewSWH(a.config(), nil, nil)
	web := a.swh.URL
	rev := "swh:1:rev:" + swhRevision
	origin := "https%3A%2F%2Fgithub.com%2Fbinder-examples%2Frequirements"
	checkResolves(t, s, []resolveCase{
		{spec: "swh:1:dir:" + swhDirectory, url: "swh:1:dir:" + swhDirectory, ref: swhDirectory, resolvedSpec: "swh:1:dir:" + swhDirectory,
			refURL: web + "/swh:1:dir:" + swhDirectory, slug: "swh-swh:1:dir:" + swhDirectory},
		{spec: rev + ";origin=https://github.com/x/y", url: rev, ref: swhRevision, resolvedSpec: rev, refURL: web + "/" + rev, slug: "swh-" + rev},
		{spec: "swh:1:rel:" + swhRelease, url: rev, ref: swhRevision, resolvedSpec: rev, refURL: web + "/" + rev, slug: "swh-swh:1:rel:" + swhRelease},
		{spec: "swh%3A1%3Asnp%3A" + swhSnapshot, url: rev, ref: swhRevision, resolvedSpec: rev, refURL: web + "/" + rev, slug: "swh-swh:1:snp:" + swhSnapshot},
		{spec: origin, url: rev, ref: swhRevision, resolvedSpec: rev, refURL: web + "/" + rev, slug: "swh-https://github.com/binder-examples/requirements"},
		{spec: origin + "/3", notFound: true},
		{spec: "https%3A%2F%2Fexample.org%2Fnone", notFound: true},
		{spec: "swh:1:snp:" + strings.Repeat("0", 40), notFound: true},
		{spec: "swh:1:snp:" + strings.Repeat("f", 40), wantErr: "Software Heritage rate limit exceeded (HTTP 429: Too Many Requests). Try again later."},
		{spec: "swh:1:cnt:" + swhDirectory, wantErr: `Unsupported SWHID "swh:1:cnt:` + swhDirectory + `": expected swh:1:<dir|rev|rel|snp>:<40 hex digits>.`},
		{spec: origin + "/latest", wantErr: `Invalid visit "latest" in spec "` + origin + `/latest": expected a visit number.`},
		{spec: "file%3A%2F%2F%2Fetc", wantErr: `Spec is not a SWHID or "<escaped origin URL>[/<visit>]", provided: "file%3A%2F%2F%2Fetc".`},
	})
	if n := a.swh.calls.Load(); n != 8 {
		t.Errorf("Software Heritage API calls = %d, want 8 (dir and rev need none)", n)
	}
}

// TestArchiveImageNames checks image and build pod names of resolved
// archive specs against upstream's values (spec/build-api.md §11.3, §11.4,
// from binderhub's builder tests).
func TestArchiveImageNames(t *testing.T) {
	a := newFakeArchives(t)
	cfg := a.config()
	gh := GitHubConfig{APIBaseURL: a.github.URL}
	tests := []struct {
		p                Provider
		spec             string
		image, buildName string // buildName "" when upstream has no value
	}{
		{NewZenodo(cfg, nil, nil), "10.5281/zenodo.3242074", "zenodo-2d3242074-b993d2:3242074", ""},
		{NewFigshare(cfg, nil, nil), "10.6084/m9.figshare.9782777.v1", "figshare-2d9782777-2ev1-14e969:9782777.v1", ""},
		{NewDataverse(cfg, nil, nil), "10.7910/DVN/TJCLKP", "dataverse-2ddvn-2d2ftjclkp-a1371f:3035124.v3.0",
			"build-dataverse-2ddvn-2d2ftjclkp-a1371f-303-21"},
		{NewCKAN(cfg, nil, nil), strings.ReplaceAll(strings.ReplaceAll(a.ckan.URL+"/dataset/my-sample-dataset-001", ":", "%3A"), "/", "%2F"),
			"ckan-2dmy-2dsample-2ddataset-2d001-5226f9:my-sample-dataset-001.v1712023831", ""},
		{NewGist(GistConfig{GitHub: gh}, nil, nil), "mariusvniekerk/" + gistID + "/" + gistVersion,
			"8a658f7f63b13768d1e75fa2464f5092-ae58b0:7daa381aae8409bfe28193e2ed8f767c26371237", ""},
	}
	for _, tc := range tests {
		t.Run(tc.p.Prefix(), func(t *testing.T) {
			repo, err := tc.p.Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Cached(tc.p, 0, 0, nil).Resolve(t.Context(), repo)
			if err != nil {
				t.Fatal(err)
			}
			if got := binderbuild.ImageName("", res.BuildSlug, res.ResolvedRef); got != tc.image {
				t.Errorf("ImageName(%q, %q) = %q, want %q", res.BuildSlug, res.ResolvedRef, got, tc.image)
			}
			if got := binderbuild.BuildName(res.BuildSlug, res.ResolvedRef); tc.buildName != "" && got != tc.buildName {
				t.Errorf("BuildName(%q, %q) = %q, want %q", res.BuildSlug, res.ResolvedRef, got, tc.buildName)
			}
		})
	}
}

// TestArchiveWarmPath resolves through Cached twice and counts the
// requests reaching the fakes: none on the warm path; after the TTL only
// specs that can move are asked again.
func TestArchiveWarmPath(t *testing.T) {
	a := newFakeArchives(t)
	cfg := a.config()
	tests := []struct {
		p      Provider
		spec   string
		pinned bool
	}{
		{NewZenodo(cfg, nil, nil), "10.5281/zenodo.3242074", true},
		{NewZenodo(cfg, nil, nil), "10.5281/zenodo.3242073", false}, // concept DOI: new versions appear
		{NewFigshare(cfg, nil, nil), "10.6084/m9.figshare.9782777.v1", true},
		{NewFigshare(cfg, nil, nil), "10.6084/m9.figshare.9782777", false},
		{NewHydroShare(cfg, nil, nil), hydroShareRes, false},
		{NewDataverse(cfg, nil, nil), "10.7910/DVN/TJCLKP", false},
		{NewCKAN(cfg, nil, nil), strings.NewReplacer(":", "%3A", "/", "%2F").Replace(a.ckan.URL + "/dataset/my-sample-dataset-001"), false},
		{NewCKAN(cfg, nil, nil), strings.NewReplacer(":", "%3A", "/", "%2F").Replace(a.ckan.URL + "/dataset/d/history/93df7fd0-0edc-4ebf-bac7-fbf5f78de90b"), true},
		{NewGist(GistConfig{GitHub: GitHubConfig{APIBaseURL: a.github.URL}}, nil, nil), "u/" + gistID + "/" + gistVersion, true},
		{NewGist(GistConfig{GitHub: GitHubConfig{APIBaseURL: a.github.URL}}, nil, nil), "u/" + gistID, false},
		{NewSWH(cfg, nil, nil), "swh:1:snp:" + swhSnapshot, true},
		{NewSWH(cfg, nil, nil), "https%3A%2F%2Fgithub.com%2Fbinder-examples%2Frequirements", false},
	}
	servers := []*fakeServer{a.doi, a.zenodo, a.figshare, a.hydroshare, a.dataverse, a.ckan, a.github, a.swh}
	total := func() (n int64) {
		for _, s := range servers {
			n += s.calls.Load()
		}
		return n
	}
	for _, tc := range tests {
		t.Run(tc.p.Prefix()+"/"+tc.spec, func(t *testing.T) {
			c, now := newTestCache(tc.p, nil)
			repo, err := c.Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			cold, err := c.Resolve(t.Context(), repo)
			if err != nil {
				t.Fatal(err)
			}
			before := total()
			for range 3 {
				warm, err := c.Resolve(t.Context(), repo)
				if err != nil || warm != cold {
					t.Fatalf("warm Resolve = %+v, %v; want %+v", warm, err, cold)
				}
			}
			if d := total() - before; d != 0 {
				t.Errorf("upstream calls on the warm path = %d, want 0", d)
			}
			*now = now.Add(DefaultCacheTTL + time.Second)
			if _, err := c.Resolve(t.Context(), repo); err != nil {
				t.Fatal(err)
			}
			if asked := total() > before; asked == tc.pinned {
				t.Errorf("after the TTL: asked upstream = %v, want %v (pinned %v)", asked, !tc.pinned, tc.pinned)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{"0", 0, true},
		{"Sat, 05 Dec 2026 12:10:00 GMT", 10 * time.Minute, true},
		{"Sat, 05 Dec 2026 11:00:00 GMT", 0, true}, // in the past
		{"", 0, false},
		{"-5", 0, false},
		{"soon", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	c := &apiClient{name: "Zenodo"}
	for in, want := range map[string]string{
		"299":  "Zenodo rate limit exceeded (HTTP 429: Too Many Requests). Try again in 5 minutes.",
		"300":  "Zenodo rate limit exceeded (HTTP 429: Too Many Requests). Try again in 10 minutes.",
		"3600": "Zenodo rate limit exceeded (HTTP 429: Too Many Requests). Try again in 65 minutes.",
		"":     "Zenodo rate limit exceeded (HTTP 429: Too Many Requests). Try again later.",
	} {
		if got := c.rateLimited(in, now).Error(); got != want {
			t.Errorf("rateLimited(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArchiveSpecLimits(t *testing.T) {
	long := "10.1/" + strings.Repeat("c", MaxSpecLength)
	cfg := ArchiveConfig{}
	tests := []struct {
		p      Provider
		badUTF string // a spec that decodes to invalid UTF-8, "" if the provider does not decode
	}{
		{p: NewZenodo(cfg, nil, nil), badUTF: "10.1/%ff"},
		{p: NewFigshare(cfg, nil, nil), badUTF: "10.1/%ff"},
		{p: NewDataverse(cfg, nil, nil), badUTF: "10.1/%ff"},
		{p: NewCKAN(cfg, nil, nil), badUTF: "https%3A%2F%2Fh%2Fdataset%2F%ff"},
		{p: NewSWH(cfg, nil, nil), badUTF: "swh%3A%ff"},
		{p: NewHydroShare(cfg, nil, nil)},
		{p: NewGist(GistConfig{}, nil, nil)},
	}
	for _, tc := range tests {
		t.Run(tc.p.Prefix(), func(t *testing.T) {
			cases := []parseErrorCase{
				{spec: long, want: "Spec is too long (4101 bytes, the limit is 4096)"},
				{spec: "10.1/\xff", want: `Spec "10.1/\xff" is not valid UTF-8.`},
			}
			if tc.badUTF != "" {
				cases = append(cases, parseErrorCase{spec: tc.badUTF, want: `Spec "` + tc.badUTF + `" is not valid UTF-8 after percent-decoding.`})
			}
			checkParseErrors(t, tc.p, cases)
		})
	}
}
