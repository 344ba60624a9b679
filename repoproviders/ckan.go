package repoproviders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild"
)

// CKAN resolves ckan specs, escaped dataset URLs of any CKAN site
// ("https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fmy-sample-dataset-001"), like
// upstream's CKANProvider: the site's action API (package_show, or
// activity_data_show for a /history/<activity> or ?activity_id= URL) gives
// the dataset's modification time, and the resolved ref is
// "<dataset>.v<epoch seconds>". A URL without /dataset/ and an HTTP error
// answer are not found, as upstream. Sites may be any host, so they are
// checked like git hosts: private, loopback and link-local addresses are
// refused unless in ArchiveConfig.AllowedHosts. It is safe for concurrent
// use.
type CKAN struct {
	api   *apiClient // guarded: connects to public addresses only
	allow hostList
}

var _ Provider = (*CKAN)(nil)

// NewCKAN returns the ckan provider; m and log may be nil.
func NewCKAN(cfg ArchiveConfig, m *Metrics, log *slog.Logger) *CKAN {
	cfg = cfg.withDefaults()
	allow := newHostList(cfg.AllowedHosts)
	return &CKAN{api: newAPIClient("CKAN", upstreamCKAN, cfg, newGuard(allow, cfg.Timeout).DialContext, m, log), allow: allow}
}

// Prefix returns "ckan".
func (c *CKAN) Prefix() string { return "ckan" }

// Display returns the ckan entry of /api/repoproviders.
func (c *CKAN) Display() any {
	return newArchiveDisplay("CKAN dataset", "ckan", `[^/]+`, "CKAN dataset URL", "https://demo.ckan.org/dataset/my-sample-dataset-001", true)
}

// ckanSpec is a parsed ckan spec.
type ckanSpec struct {
	repo string   // the decoded URL, handed to repo2docker
	u    *url.URL // repo parsed
}

func (c *CKAN) parse(spec string) (ckanSpec, error) {
	if err := checkSpec(spec); err != nil {
		return ckanSpec{}, err
	}
	repo, err := unescape(spec, spec)
	if err != nil {
		return ckanSpec{}, err
	}
	u, err := url.Parse(repo)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Hostname() == "" || strings.ContainsFunc(repo, isControl) {
		return ckanSpec{}, userErrorf("Invalid CKAN dataset URL %q: expected http(s)://<host>/dataset/<id>.", repo)
	}
	if u.User != nil {
		return ckanSpec{}, userErrorf("Invalid CKAN dataset URL: credentials in URLs are not allowed.")
	}
	if err := checkPublicHost(c.allow, u); err != nil {
		return ckanSpec{}, err
	}
	return ckanSpec{repo: repo, u: u}, nil
}

// Parse percent-decodes the spec into the dataset URL.
func (c *CKAN) Parse(spec string) (binderbuild.Repo, error) {
	s, err := c.parse(spec)
	if err != nil {
		return binderbuild.Repo{}, err
	}
	return binderbuild.Repo{Provider: "ckan", ProviderName: "CKAN", Spec: spec, URL: s.repo}, nil
}

// Resolve asks the site's action API for the dataset's modification time.
func (c *CKAN) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	s, err := c.parse(repo.Spec)
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	dataset, fetch, ok := ckanAPIURL(s.u)
	if !ok {
		return binderbuild.Resolved{}, fmt.Errorf("ckan %s: not a dataset URL: %w", s.repo, binderbuild.ErrRefNotFound)
	}
	var answer struct {
		Result struct {
			MetadataModified string `json:"metadata_modified"`
		} `json:"result"`
	}
	if err := c.api.getJSON(ctx, fetch, nil, &answer); err != nil {
		var se *statusError
		if errors.As(err, &se) {
			return binderbuild.Resolved{}, fmt.Errorf("ckan %s: %w: %w", s.repo, se, binderbuild.ErrRefNotFound)
		}
		return binderbuild.Resolved{}, err
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999999", answer.Result.MetadataModified)
	if err != nil {
		return binderbuild.Resolved{}, userErrorf("CKAN dataset %s has an invalid modification time %q", dataset, answer.Result.MetadataModified)
	}
	record := dataset + ".v" + strconv.FormatInt(t.Unix(), 10)
	repo.BuildSlug = "ckan-" + dataset
	return binderbuild.Resolved{Repo: repo, ResolvedRef: record, ResolvedSpec: s.repo, RefURL: s.repo}, nil
}

// ckanAPIURL returns the dataset id and the action API URL for a dataset
// URL: the site may sit under a path prefix; an activity id comes from
// /history/<id> or, failing that, the activity_id query parameter.
func ckanAPIURL(u *url.URL) (dataset, fetch string, ok bool) {
	prefix, rest, found := strings.Cut(u.Path, "/dataset/")
	if !found || strings.Contains(rest, "/dataset/") {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	dataset = parts[0]
	if dataset == "" {
		return "", "", false
	}
	var activity string
	if i := slices.Index(parts, "history"); i >= 0 {
		if i+1 >= len(parts) || parts[i+1] == "" {
			return "", "", false
		}
		activity = parts[i+1]
	} else if a := u.Query()["activity_id"]; len(a) > 0 {
		activity = a[0]
	}
	api := url.URL{Scheme: u.Scheme, Host: u.Host, Path: prefix + "/api/3/action/"}
	if activity != "" {
		api.Path += "activity_data_show"
		api.RawQuery = url.Values{"id": {activity}, "object_type": {"package"}}.Encode()
	} else {
		api.Path += "package_show"
		api.RawQuery = url.Values{"id": {dataset}}.Encode()
	}
	return dataset, api.String(), true
}

// Pinned reports whether the URL names one activity (a past version) of
// the dataset, which cannot change.
func (c *CKAN) Pinned(res binderbuild.Resolved) bool {
	u, err := url.Parse(res.URL)
	if err != nil {
		return false
	}
	return strings.Contains(u.Path, "/history/") || u.Query().Get("activity_id") != ""
}
