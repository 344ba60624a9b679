package repoproviders

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild"
)

// HydroShare resolves hydroshare specs, anything holding a 32-hex resource
// id (a resource URL, "10.4211/hs.<id>" or the bare id), like upstream's
// HydroshareProvider: the resolved ref is "<id>.v<epoch seconds of the
// resource's last modification>". It is safe for concurrent use.
type HydroShare struct {
	cfg ArchiveConfig
	api *apiClient
}

var _ Provider = (*HydroShare)(nil)

// hydroShareID is upstream's url_regex, used with re.match.
var hydroShareID = regexp.MustCompile(`^.*([0-9a-f]{32}).*`)

// NewHydroShare returns the hydroshare provider; m and log may be nil.
func NewHydroShare(cfg ArchiveConfig, m *Metrics, log *slog.Logger) *HydroShare {
	cfg = cfg.withDefaults()
	return &HydroShare{cfg: cfg, api: newAPIClient("HydroShare", upstreamHydroShare, cfg, nil, m, log)}
}

// Prefix returns "hydroshare".
func (h *HydroShare) Prefix() string { return "hydroshare" }

// Display returns the hydroshare entry of /api/repoproviders.
func (h *HydroShare) Display() any {
	return newArchiveDisplay("Hydroshare resource", "hydroshare", `[^/]+`, "Hydroshare resource id", "example: 8f7c2f0341ef4180b0dbe97f59130756", true)
}

func parseHydroShare(spec string) (string, error) {
	if err := checkSpec(spec); err != nil {
		return "", err
	}
	m := hydroShareID.FindStringSubmatch(spec)
	if m == nil {
		return "", userErrorf("The specified Hydroshare resource id was not recognized.")
	}
	return m[1], nil
}

// Parse finds the resource id; the repository URL is the resource's page.
func (h *HydroShare) Parse(spec string) (binderbuild.Repo, error) {
	id, err := parseHydroShare(spec)
	if err != nil {
		return binderbuild.Repo{}, err
	}
	return binderbuild.Repo{Provider: "hydroshare", ProviderName: "Hydroshare", Spec: spec, URL: h.cfg.HydroShareURL + "/resource/" + id}, nil
}

// Resolve reads the resource's modification date from its science
// metadata.
func (h *HydroShare) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	id, err := parseHydroShare(repo.Spec)
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	var meta struct {
		Dates []struct {
			Type      string `json:"type"`
			StartDate string `json:"start_date"`
		} `json:"dates"`
	}
	u := h.cfg.HydroShareURL + "/hsapi/resource/" + id + "/scimeta/elements"
	if err := h.api.getJSON(ctx, u, bearer("Bearer", h.cfg.HydroShareAccessToken), &meta); err != nil {
		return binderbuild.Resolved{}, err
	}
	for _, d := range meta.Dates {
		if d.Type != "modified" {
			continue
		}
		// HydroShare always answers in UTC; upstream drops the fraction.
		date, _, _ := strings.Cut(d.StartDate, ".")
		t, err := time.Parse("2006-01-02T15:04:05", date)
		if err != nil {
			return binderbuild.Resolved{}, userErrorf("HydroShare resource %s has an invalid modification date %q", id, d.StartDate)
		}
		record := id + ".v" + strconv.FormatInt(t.Unix(), 10)
		repo.BuildSlug = "hydroshare-" + record
		return binderbuild.Resolved{Repo: repo, ResolvedRef: record, ResolvedSpec: repo.URL, RefURL: repo.URL}, nil
	}
	return binderbuild.Resolved{}, userErrorf("HydroShare resource %s has no modification date", id)
}
