package repoproviders

import (
	"net/url"
	"strings"
	"testing"
)

// archiveSpecs are seeds of the archive spec fuzzers, besides hostileSpecs.
var archiveSpecs = []string{
	"10.5281/zenodo.3242074", "10.5281/zenodo.3242073", "10.6084/m9.figshare.9782777.v1", "10.6084/m9.figshare.9782777",
	"10.7910/DVN/TJCLKP", "10.4211/hs.b8f6eae9d89241cf8b5904033460af61", "10.1/%2F..%2F..%2Fx", "10.1/a?b#c", "10.1/%0a",
	"10.1/a%3Fb", "10.1/../../evil", "10.5281/zenodo.1%00", "doi:10.1/x", "10./x", "10.1/",
	"https%3A%2F%2Fwww.hydroshare.org%2Fresource%2F142c59757ed54de1816777828c9716e7",
	"https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fmy-sample-dataset-001",
	"https%3A%2F%2Fdata.depositar.io%2Fdataset%2Fd%2Fhistory%2F93df7fd0", "https%3A%2F%2Fd.io%2Fdataset%2Fd%3Factivity_id%3Da",
	"http%3A%2F%2F127.0.0.1%2Fdataset%2Fx", "http%3A%2F%2F%5B%3A%3A1%5D%2Fdataset%2Fx", "http%3A%2F%2Flocalhost%2Fdataset%2Fx",
	"https%3A%2F%2Fh%2Fdataset%2Fa%2Fdataset%2Fb", "https%3A%2F%2Fh%2Fdataset%2F", "https%3A%2F%2Fh%2Fdataset%2Fa%2Fhistory",
	"swh:1:dir:d198bc9d7a6bcf6db04f476d29314f157507d505", "swh:1:rev:d198bc9d7a6bcf6db04f476d29314f157507d505;origin=x",
	"swh%3A1%3Asnp%3Ad198bc9d7a6bcf6db04f476d29314f157507d505", "swh:1:cnt:d198bc9d7a6bcf6db04f476d29314f157507d505",
	"https%3A%2F%2Fgithub.com%2Fo%2Fr", "https%3A%2F%2Fgithub.com%2Fo%2Fr/12", "https%3A%2F%2Fgithub.com%2Fo%2Fr%3Fx/1",
	"mariusvniekerk/8a658f7f63b13768d1e75fa2464f5092", "u/8a658f7f63b13768d1e75fa2464f5092/HEAD", "u/id/ref/extra",
}

func addSeeds(f *testing.F) {
	for _, s := range append(hostileSpecs, archiveSpecs...) {
		f.Add(s)
	}
}

// FuzzParseDOI covers zenodo, figshare and dataverse, which share parseDOI:
// an accepted DOI must stay a path below the resolver.
func FuzzParseDOI(f *testing.F) {
	addSeeds(f)
	providers := []Provider{NewZenodo(ArchiveConfig{}, nil, nil), NewFigshare(ArchiveConfig{}, nil, nil), NewDataverse(ArchiveConfig{}, nil, nil)}
	f.Fuzz(func(t *testing.T, spec string) {
		for _, p := range providers {
			repo, err := p.Parse(spec)
			if err != nil {
				checkErrorText(t, spec, err)
				continue
			}
			if !doiPattern.MatchString(repo.URL) || strings.ContainsFunc(repo.URL, isControl) {
				t.Errorf("%s.Parse(%q) accepted DOI %q", p.Prefix(), spec, repo.URL)
			}
			u, err := url.Parse("https://doi.org/" + escapePath(repo.URL))
			if err != nil || u.Host != "doi.org" || u.RawQuery != "" || u.Fragment != "" {
				t.Errorf("%s.Parse(%q): resolver URL of DOI %q leaves doi.org: %v", p.Prefix(), spec, repo.URL, u)
			}
		}
	})
}

func FuzzParseHydroShare(f *testing.F) {
	addSeeds(f)
	h := NewHydroShare(ArchiveConfig{}, nil, nil)
	f.Fuzz(func(t *testing.T, spec string) {
		repo, err := h.Parse(spec)
		if err != nil {
			checkErrorText(t, spec, err)
			return
		}
		id := strings.TrimPrefix(repo.URL, "https://www.hydroshare.org/resource/")
		if len(id) != 32 || !isLowerHex(id) {
			t.Errorf("Parse(%q) URL = %q, want a resource URL with a 32-hex id", spec, repo.URL)
		}
	})
}

// FuzzParseCKAN checks that an accepted dataset URL is a public http(s) URL
// and that its API URL stays on the same host.
func FuzzParseCKAN(f *testing.F) {
	addSeeds(f)
	c := NewCKAN(ArchiveConfig{}, nil, nil)
	f.Fuzz(func(t *testing.T, spec string) {
		repo, err := c.Parse(spec)
		if err != nil {
			checkErrorText(t, spec, err)
			return
		}
		u, err := url.Parse(repo.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || hostProblem(u.Hostname()) != "" {
			t.Fatalf("Parse(%q) accepted URL %q", spec, repo.URL)
		}
		dataset, fetch, ok := ckanAPIURL(u)
		if !ok {
			return
		}
		api, err := url.Parse(fetch)
		if err != nil || api.Host != u.Host || api.Scheme != u.Scheme || api.User != nil || dataset == "" || strings.Contains(dataset, "/") {
			t.Errorf("Parse(%q): API URL %q (dataset %q) leaves %s", spec, fetch, dataset, u.Host)
		}
	})
}

func FuzzParseSWH(f *testing.F) {
	addSeeds(f)
	s := NewSWH(ArchiveConfig{}, nil, nil)
	f.Fuzz(func(t *testing.T, spec string) {
		repo, err := s.Parse(spec)
		if err != nil {
			checkErrorText(t, spec, err)
			return
		}
		if swhidPattern.MatchString(repo.URL) {
			return
		}
		u, err := url.Parse(repo.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("Parse(%q) accepted origin %q", spec, repo.URL)
		}
		api, err := url.Parse("https://archive.softwareheritage.org/api/1/origin/" + escapePath(repo.URL) + "/visit/latest/")
		if err != nil || api.Host != "archive.softwareheritage.org" || api.RawQuery != "" || api.Fragment != "" {
			t.Errorf("Parse(%q): origin %q makes API URL %v", spec, repo.URL, api)
		}
	})
}

func FuzzParseGist(f *testing.F) {
	addSeeds(f)
	g := NewGist(GistConfig{}, nil, nil)
	f.Fuzz(func(t *testing.T, spec string) {
		repo, err := g.Parse(spec)
		if err != nil {
			checkErrorText(t, spec, err)
			return
		}
		s, err := parseGistSpec(spec)
		if err != nil {
			t.Fatalf("Parse(%q) succeeded, parseGistSpec failed: %v", spec, err)
		}
		u, err := url.Parse(g.gh.api + "/gists/" + s.id)
		if err != nil || u.Host != "api.github.com" || u.Path != "/gists/"+s.id || s.id == "." || s.id == ".." {
			t.Errorf("Parse(%q): API URL %v leaves the gists endpoint", spec, u)
		}
		if repo.URL != "https://gist.github.com/"+s.user+"/"+s.id+".git" || repo.BuildSlug != s.id {
			t.Errorf("Parse(%q) = %+v, inconsistent with %+v", spec, repo, s)
		}
	})
}
