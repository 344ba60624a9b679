package repoproviders

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// maxDOIHops bounds the redirects followed from the DOI resolver (tornado,
// which upstream uses, follows 5).
const maxDOIHops = 5

// doiPattern is the display config's spec check, `10\.\d+\/(.)+`, anchored.
var doiPattern = regexp.MustCompile(`^10\.\d+/.+`)

// parseDOI checks a DOI spec: percent-decoded, it must look like a DOI
// ("10.<digits>/<suffix>") and hold no control characters. name is the
// provider's display name for the error text.
func parseDOI(spec, name string) (string, error) {
	if err := checkSpec(spec); err != nil {
		return "", err
	}
	doi, err := unescape(spec, spec)
	if err != nil {
		return "", err
	}
	if !doiPattern.MatchString(doi) || strings.ContainsFunc(doi, isControl) {
		return "", userErrorf(`Spec is not a %s, provided: "%s". Example: %s`, name+" DOI", spec, doiExamples[name])
	}
	return doi, nil
}

// doiExamples are the placeholders of upstream's display configs.
var doiExamples = map[string]string{
	"Zenodo":    "10.5281/zenodo.3242074",
	"Figshare":  "10.6084/m9.figshare.9782777.v1",
	"Dataverse": "10.7910/DVN/TJCLKP",
}

// doiResolver follows the redirects of a DOI resolver (https://doi.org) hop
// by hop, so that each hop's host is checked before it is contacted.
type doiResolver struct {
	base string // resolver URL without trailing "/"
	api  *apiClient
}

func newDOIResolver(cfg ArchiveConfig, m *Metrics, log *slog.Logger) *doiResolver {
	api := newAPIClient("the DOI resolver", upstreamDOI, cfg, nil, m, log)
	api.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &doiResolver{base: cfg.DOIResolverURL, api: api}
}

// doiTarget says where a DOI may lead. accept reports whether a hop may be
// contacted (hops on the resolver always may); final reports whether a URL
// is the answer, which is then returned without being fetched.
type doiTarget struct {
	name   string // the archive, in messages
	accept func(*url.URL) bool
	final  func(*url.URL) bool
}

// follow resolves doi and returns the first URL t.final accepts. A DOI the
// resolver does not know is the resolver's "HTTP 404: Not Found", as
// upstream reports it; a redirect to a host t.accept refuses is an error
// naming that host.
func (d *doiResolver) follow(ctx context.Context, doi string, t doiTarget) (*url.URL, error) {
	u, err := url.Parse(d.base + "/" + escapePath(doi))
	if err != nil {
		return nil, userErrorf("invalid DOI %q", doi)
	}
	for range maxDOIHops + 1 {
		if t.final(u) {
			return u, nil
		}
		next, err := d.hop(ctx, u, doi, t)
		if err != nil {
			return nil, err
		}
		onResolver := sameHost(next.String(), d.base)
		if (next.Scheme != "https" && next.Scheme != "http") || (!onResolver && !t.accept(next)) {
			return nil, userErrorf("DOI %s does not point to %s: it leads to %s.", doi, t.name, next.Host)
		}
		u = next
	}
	return nil, userErrorf("DOI %s does not point to %s: too many redirects.", doi, t.name)
}

// hop fetches u and returns where its redirect points.
func (d *doiResolver) hop(ctx context.Context, u *url.URL, doi string, t doiTarget) (*url.URL, error) {
	resp, err := d.api.do(ctx, u.String(), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	loc := resp.Header.Get("Location")
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "":
		next, err := u.Parse(loc)
		if err != nil {
			return nil, userErrorf("DOI %s does not point to %s: invalid redirect.", doi, t.name)
		}
		d.api.metrics.upstreamRequest(d.api.upstream, outcomeOK)
		return next, nil
	case resp.StatusCode == http.StatusOK:
		d.api.metrics.upstreamRequest(d.api.upstream, outcomeOK)
		return nil, userErrorf("DOI %s does not point to %s.", doi, t.name)
	}
	return nil, d.api.statusErr(u.String(), resp)
}

// hostIn returns an accept function for the given hosts (host or
// host:port, compared case-insensitively) over http(s).
func hostIn(hosts ...string) func(*url.URL) bool {
	return func(u *url.URL) bool {
		for _, h := range hosts {
			if h != "" && strings.EqualFold(u.Host, h) {
				return true
			}
		}
		return false
	}
}

// hostOf returns the host (with port) of a configured base URL.
func hostOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return u.Host
}
