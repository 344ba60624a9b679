package web_test

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/fakearchive"
	"github.com/binderbuild/binderbuild/repoproviders"
	"github.com/binderbuild/binderbuild/server"
)

// TestBrowserArchiveLinks pastes archive links, DOIs and SWHIDs into the
// page: each picks its provider and builds (the image exists, so the
// stream ends ready at once) against the fake archives.
func TestBrowserArchiveLinks(t *testing.T) {
	a := fakearchive.Start(t, nil)
	cfg := repoproviders.ArchiveConfig{DOIResolverURL: a.ResolverURL, ZenodoURL: a.URL + "/zenodo",
		FigshareAPIURL: a.URL + "/figshare", SWHAPIURL: a.URL + "/swh/api/1"}
	svc := startService(t, serviceOptions{providers: []server.Provider{
		repoproviders.NewGist(repoproviders.GistConfig{GitHub: repoproviders.GitHubConfig{APIBaseURL: a.URL}}, nil, nil),
		repoproviders.NewZenodo(cfg, nil, nil),
		repoproviders.NewFigshare(cfg, nil, nil),
		repoproviders.NewSWH(cfg, nil, nil),
	}})
	tests := []struct {
		link, provider, repo string
		slug, ref            string // of the image the build ends with
	}{
		{"https://zenodo.org/records/3242074", "zenodo", "10.5281/zenodo.3242074", "zenodo-3242074", "3242074"},
		{"https://doi.org/10.5281/zenodo.3242073", "zenodo", "10.5281/zenodo.3242073", "zenodo-3242074", "3242074"},
		{"https://figshare.com/articles/code/binder_example/9782777/1", "figshare", "10.6084/m9.figshare.9782777.v1", "figshare-9782777.v1", "9782777.v1"},
		{"10.6084/m9.figshare.9782777", "figshare", "10.6084/m9.figshare.9782777", "figshare-9782777.v3", "9782777.v3"},
		{"https://gist.github.com/mariusvniekerk/" + fakearchive.GistID, "gist", "mariusvniekerk/" + fakearchive.GistID, fakearchive.GistID, fakearchive.GistVersion},
		{"swh:1:dir:" + fakearchive.SWHDir, "swh", "swh:1:dir:" + fakearchive.SWHDir, "swh-swh:1:dir:" + fakearchive.SWHDir, fakearchive.SWHDir},
		{"https://archive.softwareheritage.org/swh:1:snp:" + fakearchive.SWHSnapshot + ";origin=https://github.com/o/r", "swh",
			"swh:1:snp:" + fakearchive.SWHSnapshot, "swh-swh:1:snp:" + fakearchive.SWHSnapshot, fakearchive.SWHRevision},
	}
	b := newBrowser(t)
	b.run(chromedp.Navigate(svc.url))
	b.waitJS("providers", `document.body.dataset.providers === 'loaded' && document.body.dataset.ready === 'true'`)
	options := evalJS[[]string](b, `Array.from(document.querySelectorAll('#provider option')).map(o => o.value)`)
	if got, want := fmt.Sprint(options), "[gh git gl gist zenodo figshare swh]"; got != want {
		t.Errorf("provider options = %s, want %s", got, want)
	}
	// Detection alone, with providers this service does not offer.
	list := `[{id: 'zenodo'}, {id: 'figshare'}, {id: 'hydroshare'}, {id: 'dataverse'}, {id: 'swh'}]`
	for in, want := range map[string]string{
		"https://doi.org/10.7910/DVN/TJCLKP":                                                     "dataverse 10.7910/DVN/TJCLKP",
		"doi:10.4211/hs.b8f6eae9d89241cf8b5904033460af61":                                        "hydroshare 10.4211/hs.b8f6eae9d89241cf8b5904033460af61",
		"https://www.hydroshare.org/resource/142C59757ED54DE1816777828C9716E7/":                  "hydroshare 142c59757ed54de1816777828c9716e7",
		"https://figshare.com/articles/dataset/2019_study/9782777":                               "figshare 10.6084/m9.figshare.9782777",
		"https://zenodo.org/record/3242074#files":                                                "zenodo 10.5281/zenodo.3242074",
		"https://sandbox.zenodo.org/records/12/":                                                 "zenodo 10.5281/zenodo.12",
		"https://archive.softwareheritage.org/browse/swh:1:rev:" + fakearchive.SWHRevision + "/": "swh swh:1:rev:" + fakearchive.SWHRevision,
		"https://zenodo.org/communities/binder":                                                  "null",
		"swh:1:cnt:" + fakearchive.SWHDir:                                                        "null",
		"https://figshare.com/articles/x/y":                                                      "null",
	} {
		got := b.text(fmt.Sprintf(`(() => { const d = binderbuild.detect(%s, %s); return d ? d.provider + ' ' + d.repo : 'null'; })()`, jsString(in), list))
		if got != want {
			t.Errorf("detect(%q) = %q, want %q", in, got, want)
		}
	}

	for _, tc := range tests {
		t.Run(tc.link, func(t *testing.T) {
			image := binderbuild.ImageName(imagePrefix, tc.slug, tc.ref)
			svc.images.add(image)
			b.run(chromedp.SetValue(chromedp.ID("provider"), "gh"))
			// A paste: the value changes at once, then an input event.
			b.run(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const r = document.getElementById('repo');
				r.value = %s; r.dispatchEvent(new Event('input', {bubbles: true})); })()`, jsString(tc.link))))
			got := evalJS[[]string](b, `[document.getElementById('provider').value, document.getElementById('provider-hint').textContent]`)
			hintName := map[string]string{"zenodo": "Zenodo DOI", "figshare": "FigShare DOI", "gist": "GitHub Gist", "swh": "Software Heritage"}[tc.provider]
			if want := []string{tc.provider, "Detected " + hintName + ": " + tc.repo + "."}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("after pasting: provider, hint = %q, want %q", got, want)
			}
			b.run(chromedp.Click(chromedp.ID("build")))
			b.waitJS("the built image", fmt.Sprintf(`document.body.dataset.image === %s`, jsString(image)))
			if got := b.text(`document.getElementById('status').textContent`); got != "Ready: the image is built." {
				t.Errorf("status = %q, want ready", got)
			}
		})
	}
}
