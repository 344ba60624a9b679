package repoproviders

import (
	"context"
	_ "embed" // the installations list
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"

	"github.com/binderbuild/binderbuild"
)

// dataverseInstallationsText is the list of known Dataverse installations;
// dataverse_installations.txt names its source and how to update it.
//
//go:embed dataverse_installations.txt
var dataverseInstallationsText string

// dataverseInstallations returns the known installations' host names.
func dataverseInstallations() map[string]bool {
	hosts := map[string]bool{}
	for line := range strings.Lines(dataverseInstallationsText) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			hosts[strings.ToLower(line)] = true
		}
	}
	return hosts
}

// Dataverse resolves dataverse specs, dataset DOIs ("10.7910/DVN/TJCLKP"),
// like upstream's DataverseProvider: the DOI's first redirect names the
// installation, whose /api/datasets/:persistentId (the redirect's query
// kept) gives the dataset id and latest version. A DOI may lead to any
// host, so that host is checked like a git host: private, loopback and
// link-local addresses are refused unless in ArchiveConfig.AllowedHosts.
// It is safe for concurrent use.
type Dataverse struct {
	cfg   ArchiveConfig
	doi   *doiResolver
	api   *apiClient // guarded: connects to public addresses only
	allow hostList
	known map[string]bool
}

var _ Provider = (*Dataverse)(nil)

// NewDataverse returns the dataverse provider; m and log may be nil.
func NewDataverse(cfg ArchiveConfig, m *Metrics, log *slog.Logger) *Dataverse {
	cfg = cfg.withDefaults()
	allow := newHostList(cfg.AllowedHosts)
	return &Dataverse{
		cfg:   cfg,
		doi:   newDOIResolver(cfg, m, log),
		api:   newAPIClient("Dataverse", upstreamDataverse, cfg, newGuard(allow, cfg.Timeout).DialContext, m, log),
		allow: allow,
		known: dataverseInstallations(),
	}
}

// Prefix returns "dataverse".
func (d *Dataverse) Prefix() string { return "dataverse" }

// Display returns the dataverse entry of /api/repoproviders.
func (d *Dataverse) Display() any {
	return newArchiveDisplay("Dataverse DOI", "dataverse", `10\.\d+\/(.)+`, "Dataverse DOI", "example: 10.7910/DVN/TJCLKP", false)
}

// Parse checks that the spec is a DOI, which is handed to repo2docker.
func (d *Dataverse) Parse(spec string) (binderbuild.Repo, error) {
	doi, err := parseDOI(spec, "Dataverse")
	if err != nil {
		return binderbuild.Repo{}, err
	}
	return binderbuild.Repo{Provider: "dataverse", ProviderName: "Dataverse", Spec: spec, URL: doi}, nil
}

// dataverseDataset is the part of /api/datasets/:persistentId read here.
type dataverseDataset struct {
	Status string `json:"status"`
	Data   struct {
		ID            json.Number `json:"id"`
		Identifier    string      `json:"identifier"`
		Authority     string      `json:"authority"`
		PersistentURL string      `json:"persistentUrl"`
		LatestVersion struct {
			VersionNumber      *json.Number `json:"versionNumber"`
			VersionMinorNumber *json.Number `json:"versionMinorNumber"`
		} `json:"latestVersion"`
	} `json:"data"`
}

// Resolve returns "<dataset id>.v<major>.<minor>" of the latest version.
func (d *Dataverse) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	doi, err := parseDOI(repo.Spec, "Dataverse")
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	offResolver := func(u *url.URL) bool { return !sameHost(u.String(), d.cfg.DOIResolverURL) }
	u, err := d.doi.follow(ctx, doi, doiTarget{name: "a Dataverse dataset", accept: offResolver, final: offResolver})
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	if err := checkPublicHost(d.allow, u); err != nil {
		return binderbuild.Resolved{}, err
	}
	api := url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/api/datasets/:persistentId", RawQuery: u.RawQuery}
	var header map[string][]string
	if d.cfg.DataverseAPIToken != "" && strings.EqualFold(u.Host, d.cfg.DataverseTokenHost) {
		header = map[string][]string{"X-Dataverse-Key": {d.cfg.DataverseAPIToken}}
	}
	var ds dataverseDataset
	if err := d.api.getJSON(ctx, api.String(), header, &ds); err != nil {
		return binderbuild.Resolved{}, err
	}
	v := ds.Data.LatestVersion
	if ds.Status != "OK" || ds.Data.ID == "" || ds.Data.Identifier == "" || v.VersionNumber == nil || v.VersionMinorNumber == nil {
		return binderbuild.Resolved{}, d.notADataverse(u.Hostname())
	}
	record := ds.Data.ID.String() + ".v" + v.VersionNumber.String() + "." + v.VersionMinorNumber.String()
	refURL := ds.Data.PersistentURL
	if p, err := url.Parse(refURL); err != nil || (p.Scheme != "https" && p.Scheme != "http") {
		refURL = d.cfg.DOIResolverURL + "/" + doi
	}
	repo.BuildSlug = "dataverse-" + strings.ToLower(binderbuild.Escape(ds.Data.Identifier))
	return binderbuild.Resolved{
		Repo:         repo,
		ResolvedRef:  record,
		ResolvedSpec: ds.Data.Authority + "/" + ds.Data.Identifier,
		RefURL:       refURL,
	}, nil
}

// notADataverse explains an answer that is not a released dataset.
func (d *Dataverse) notADataverse(host string) error {
	if d.known[strings.ToLower(host)] {
		return userErrorf("The Dataverse installation %s did not return a released dataset.", host)
	}
	return userErrorf("%s did not answer like a Dataverse installation (it is not in the list of known installations).", host)
}
