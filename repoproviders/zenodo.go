package repoproviders

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"regexp"
	"strings"

	"github.com/binderbuild/binderbuild"
)

// Zenodo resolves zenodo specs, DOIs of Zenodo records
// ("10.5281/zenodo.3242074"), like upstream's ZenodoProvider: the DOI's
// redirects are followed (on the resolver and Zenodo hosts only) to
// /records/<id>, and the record id is the resolved ref. A concept DOI, which
// stands for all versions, resolves to the newest version. The record is
// then looked up in Zenodo's API (with the access token, if any), so a
// deleted or restricted record fails before a build starts. It is safe for
// concurrent use.
type Zenodo struct {
	cfg   ArchiveConfig
	doi   *doiResolver
	api   *apiClient
	hosts []string
}

var _ Provider = (*Zenodo)(nil)

// zenodoRecordPath is the end of a record page's path (a configured
// ZenodoURL may have a path of its own).
var zenodoRecordPath = regexp.MustCompile(`/records?/([0-9]+)/?$`)

// NewZenodo returns the zenodo provider; m and log may be nil.
func NewZenodo(cfg ArchiveConfig, m *Metrics, log *slog.Logger) *Zenodo {
	cfg = cfg.withDefaults()
	return &Zenodo{
		cfg:   cfg,
		doi:   newDOIResolver(cfg, m, log),
		api:   newAPIClient("Zenodo", upstreamZenodo, cfg, nil, m, log),
		hosts: []string{"zenodo.org", "www.zenodo.org", "sandbox.zenodo.org", hostOf(cfg.ZenodoURL)},
	}
}

// Prefix returns "zenodo".
func (z *Zenodo) Prefix() string { return "zenodo" }

// Display returns the zenodo entry of /api/repoproviders.
func (z *Zenodo) Display() any {
	return newArchiveDisplay("Zenodo DOI", "zenodo", `10\.\d+\/(.)+`, "Zenodo DOI", "example: 10.5281/zenodo.3242074", false)
}

// Parse checks that the spec is a DOI. The DOI is the URL handed to
// repo2docker, whose Zenodo content provider resolves it again.
func (z *Zenodo) Parse(spec string) (binderbuild.Repo, error) {
	doi, err := parseDOI(spec, "Zenodo")
	if err != nil {
		return binderbuild.Repo{}, err
	}
	return binderbuild.Repo{Provider: "zenodo", ProviderName: "Zenodo", Spec: spec, URL: doi}, nil
}

// Resolve finds the record id the DOI points to.
func (z *Zenodo) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	doi, err := parseDOI(repo.Spec, "Zenodo")
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	accept := hostIn(z.hosts...)
	u, err := z.doi.follow(ctx, doi, doiTarget{
		name:   "a Zenodo record",
		accept: accept,
		final:  func(u *url.URL) bool { return accept(u) && zenodoRecordPath.MatchString(u.Path) },
	})
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	id := zenodoRecordPath.FindStringSubmatch(u.Path)[1]
	var record struct {
		ID json.Number `json:"id"`
	}
	if err := z.api.getJSON(ctx, z.cfg.ZenodoURL+"/api/records/"+id, bearer("Bearer", z.cfg.ZenodoAccessToken), &record); err != nil {
		return binderbuild.Resolved{}, err
	}
	if record.ID.String() != id {
		return binderbuild.Resolved{}, userErrorf("Zenodo returned record %q for record %s", record.ID, id)
	}
	resolvedSpec := versionedDOI(doi, "zenodo", id)
	repo.BuildSlug = "zenodo-" + id
	return binderbuild.Resolved{
		Repo:         repo,
		ResolvedRef:  id,
		ResolvedSpec: resolvedSpec,
		RefURL:       z.cfg.DOIResolverURL + "/" + resolvedSpec,
	}, nil
}

// Pinned reports whether the DOI named one version of a record (it resolved
// to itself), which cannot change; a concept DOI moves with new versions.
func (z *Zenodo) Pinned(res binderbuild.Resolved) bool {
	return res.ResolvedSpec == res.URL
}

// versionedDOI is upstream's resolved spec of zenodo and figshare DOIs:
// the DOI up to the first occurrence of the archive's name, then
// "<name>.<record>".
func versionedDOI(doi, name, record string) string {
	before, _, _ := strings.Cut(doi, name)
	return before + name + "." + record
}

// newArchiveDisplay fills a DisplayConfig whose ref input is disabled, as
// for every archive provider.
func newArchiveDisplay(name, id, validate, label, placeholder string, urlEncode bool) DisplayConfig {
	d := newDisplayConfig(name, id, validate, "", label, placeholder, urlEncode)
	d.Ref.Enabled = false
	d.Ref.Default = ""
	return d
}
