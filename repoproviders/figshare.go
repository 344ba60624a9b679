package repoproviders

import (
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"strings"

	"github.com/binderbuild/binderbuild"
)

// Figshare resolves figshare specs, DOIs of Figshare articles
// ("10.6084/m9.figshare.9782777.v1"), like upstream's FigshareProvider: the
// DOI must exist at the resolver (its target is not fetched); the article
// id and version come from the DOI itself, and an unversioned DOI resolves
// to the newest version listed by the Figshare API. It is safe for
// concurrent use.
type Figshare struct {
	cfg ArchiveConfig
	doi *doiResolver
	api *apiClient
}

var _ Provider = (*Figshare)(nil)

// NewFigshare returns the figshare provider; m and log may be nil.
func NewFigshare(cfg ArchiveConfig, m *Metrics, log *slog.Logger) *Figshare {
	cfg = cfg.withDefaults()
	return &Figshare{
		cfg: cfg,
		doi: newDOIResolver(cfg, m, log),
		api: newAPIClient("Figshare", upstreamFigshare, cfg, nil, m, log),
	}
}

// Prefix returns "figshare".
func (f *Figshare) Prefix() string { return "figshare" }

// Display returns the figshare entry of /api/repoproviders.
func (f *Figshare) Display() any {
	return newArchiveDisplay("FigShare DOI", "figshare", `10\.\d+\/(.)+`, "FigShare DOI", "example: 10.6084/m9.figshare.9782777.v1", false)
}

// Parse checks that the spec is a DOI, which is handed to repo2docker.
func (f *Figshare) Parse(spec string) (binderbuild.Repo, error) {
	doi, err := parseDOI(spec, "Figshare")
	if err != nil {
		return binderbuild.Repo{}, err
	}
	return binderbuild.Repo{Provider: "figshare", ProviderName: "Figshare", Spec: spec, URL: doi}, nil
}

// Resolve checks the DOI at the resolver and returns "<article>.v<version>".
func (f *Figshare) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	doi, err := parseDOI(repo.Spec, "Figshare")
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	// Figshare articles live on figshare.com and on institutional portals
	// with their own domains; the target is not fetched, so any web host
	// will do, as upstream.
	anyWebHost := func(u *url.URL) bool { return !sameHost(u.String(), f.cfg.DOIResolverURL) }
	if _, err := f.doi.follow(ctx, doi, doiTarget{name: "a Figshare article", accept: anyWebHost, final: anyWebHost}); err != nil {
		return binderbuild.Resolved{}, err
	}
	article, version, err := f.articleVersion(ctx, doi)
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	record := article + ".v" + version
	resolvedSpec := versionedDOI(doi, "figshare", record)
	repo.BuildSlug = "figshare-" + record
	return binderbuild.Resolved{
		Repo:         repo,
		ResolvedRef:  record,
		ResolvedSpec: resolvedSpec,
		RefURL:       f.cfg.DOIResolverURL + "/" + resolvedSpec,
	}, nil
}

// articleVersion reads the article id and version from the DOI's fields
// (the part after the first "/", split on "."): "…9782777.v1" is article
// 9782777 version 1; "…9782777" asks the API for the newest version.
func (f *Figshare) articleVersion(ctx context.Context, doi string) (article, version string, err error) {
	_, identifier, _ := strings.Cut(doi, "/")
	fields := strings.Split(identifier, ".")
	if len(fields) < 3 {
		return "", "", userErrorf("Unexpected figshare doi: %s", doi)
	}
	last := fields[len(fields)-1]
	if v, ok := strings.CutPrefix(last, "v"); ok {
		article, version = fields[len(fields)-2], v
		if !isDigits(article) || !isDigits(version) {
			return "", "", userErrorf("Unexpected figshare doi: %s", doi)
		}
		return article, version, nil
	}
	if !isDigits(last) {
		return "", "", userErrorf("Unexpected figshare doi: %s", doi)
	}
	var versions []struct {
		Version int64 `json:"version"`
	}
	if err := f.api.getJSON(ctx, f.cfg.FigshareAPIURL+"/articles/"+last+"/versions", bearer("token", f.cfg.FigshareAccessToken), &versions); err != nil {
		return "", "", err
	}
	if len(versions) == 0 {
		return "", "", userErrorf("Article %s has no versions", last)
	}
	newest := versions[0].Version
	for _, v := range versions[1:] {
		newest = max(newest, v.Version)
	}
	return last, strconv.FormatInt(newest, 10), nil
}

// Pinned reports whether the DOI named a version (it resolved to itself).
func (f *Figshare) Pinned(res binderbuild.Resolved) bool {
	return res.ResolvedSpec == res.URL
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
