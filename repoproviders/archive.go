package repoproviders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ArchiveConfig configures the providers of research archives (zenodo,
// figshare, hydroshare, dataverse, ckan) and Software Heritage (swh). The
// zero value talks to the public services without credentials.
type ArchiveConfig struct {
	// DOIResolverURL is where DOIs are resolved. Default "https://doi.org".
	DOIResolverURL string `envconfig:"DOI_RESOLVER_URL" default:"https://doi.org" desc:"DOI resolver followed for zenodo, figshare and dataverse DOIs"`
	// ZenodoURL is Zenodo's base URL. Default "https://zenodo.org".
	ZenodoURL string `envconfig:"ZENODO_URL" default:"https://zenodo.org" desc:"Zenodo base URL"`
	// ZenodoAccessToken is sent to ZenodoURL only, as a Bearer token. Secret.
	ZenodoAccessToken string `envconfig:"ZENODO_ACCESS_TOKEN" desc:"Zenodo access token (secret), sent to BINDERBUILD_ZENODO_URL only"`
	// FigshareAPIURL is Figshare's API base URL. Default
	// "https://api.figshare.com/v2".
	FigshareAPIURL string `envconfig:"FIGSHARE_API_URL" default:"https://api.figshare.com/v2" desc:"Figshare API base URL"`
	// FigshareAccessToken is sent to FigshareAPIURL only. Secret.
	FigshareAccessToken string `envconfig:"FIGSHARE_ACCESS_TOKEN" desc:"Figshare access token (secret), sent to BINDERBUILD_FIGSHARE_API_URL only"`
	// HydroShareURL is HydroShare's base URL. Default
	// "https://www.hydroshare.org".
	HydroShareURL string `envconfig:"HYDROSHARE_URL" default:"https://www.hydroshare.org" desc:"HydroShare base URL"`
	// HydroShareAccessToken is sent to HydroShareURL only, as a Bearer
	// token. Secret.
	HydroShareAccessToken string `envconfig:"HYDROSHARE_ACCESS_TOKEN" desc:"HydroShare access token (secret), sent to BINDERBUILD_HYDROSHARE_URL only"`
	// DataverseAPIToken is sent as X-Dataverse-key, only to
	// DataverseTokenHost. Secret.
	DataverseAPIToken string `envconfig:"DATAVERSE_API_TOKEN" desc:"Dataverse API token (secret), sent to BINDERBUILD_DATAVERSE_TOKEN_HOST only"`
	// DataverseTokenHost is the one Dataverse installation (host or
	// host:port) DataverseAPIToken belongs to. Default
	// "dataverse.harvard.edu".
	DataverseTokenHost string `envconfig:"DATAVERSE_TOKEN_HOST" default:"dataverse.harvard.edu" desc:"the Dataverse installation (host or host:port) BINDERBUILD_DATAVERSE_API_TOKEN belongs to"`
	// SWHAPIURL is the Software Heritage API base URL. Default
	// "https://archive.softwareheritage.org/api/1".
	SWHAPIURL string `envconfig:"SWH_API_URL" default:"https://archive.softwareheritage.org/api/1" desc:"Software Heritage API base URL"`
	// AllowedHosts are hosts (or host:port) that dataverse and ckan may
	// contact although they are private or loopback addresses, as
	// GitConfig.AllowedHosts for git (cmd passes those). Default none.
	AllowedHosts []string `ignored:"true"`
	// Timeout bounds one request. Default 20s.
	Timeout time.Duration `ignored:"true"`
	// MaxBody bounds one response body. Default 8 MiB.
	MaxBody int64 `ignored:"true"`
}

// withDefaults fills unset fields.
func (c ArchiveConfig) withDefaults() ArchiveConfig {
	c.DOIResolverURL = strings.TrimRight(orDefault(c.DOIResolverURL, "https://doi.org"), "/")
	c.ZenodoURL = strings.TrimRight(orDefault(c.ZenodoURL, "https://zenodo.org"), "/")
	c.FigshareAPIURL = strings.TrimRight(orDefault(c.FigshareAPIURL, "https://api.figshare.com/v2"), "/")
	c.HydroShareURL = strings.TrimRight(orDefault(c.HydroShareURL, "https://www.hydroshare.org"), "/")
	c.DataverseTokenHost = orDefault(c.DataverseTokenHost, "dataverse.harvard.edu")
	c.SWHAPIURL = strings.TrimRight(orDefault(c.SWHAPIURL, "https://archive.softwareheritage.org/api/1"), "/")
	c.Timeout = orDefault(c.Timeout, defaultAPITimeout)
	c.MaxBody = orDefault(c.MaxBody, maxAPIBody)
	return c
}

// apiClient makes the GET requests of one provider: bounded in time and
// size, User-Agent BinderHub, redirects followed only within one host (so
// that no token follows a redirect elsewhere), and upstream's error texts.
// It is safe for concurrent use.
type apiClient struct {
	name     string // the service, in messages: "Zenodo"
	upstream string // label of binderbuild_upstream_requests_total
	http     *http.Client
	maxBody  int64
	metrics  *Metrics
	log      *slog.Logger
}

// newAPIClient returns a client over a transport dialling with dial.
func newAPIClient(name, upstream string, cfg ArchiveConfig, dial func(context.Context, string, string) (net.Conn, error), m *Metrics, log *slog.Logger) *apiClient {
	tr := &http.Transport{
		Proxy:                 nil, // guarded clients need the address they check to be the one they reach
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	if dial != nil {
		tr.DialContext = dial
	}
	return &apiClient{
		name:     name,
		upstream: upstream,
		http: &http.Client{
			Transport:     tr,
			Timeout:       cfg.Timeout,
			CheckRedirect: sameHostRedirects,
		},
		maxBody: cfg.MaxBody,
		metrics: m,
		log:     discardIfNil(log),
	}
}

// sameHostRedirects follows at most 5 redirects, and only within the host
// of the first request.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 || req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		return http.ErrUseLastResponse
	}
	return nil
}

// statusError is an answer other than 200, written like tornado's
// HTTPError, which upstream shows: "HTTP 404: Not Found".
type statusError struct {
	code int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.code, orDefault(http.StatusText(e.code), "Unknown"))
}

// isStatus reports whether err is an answer with HTTP status code.
func isStatus(err error, code int) bool {
	var se *statusError
	return errors.As(err, &se) && se.code == code
}

// getJSON GETs u and decodes a 200 answer into v. header may be nil.
func (c *apiClient) getJSON(ctx context.Context, u string, header http.Header, v any) error {
	header = header.Clone()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Accept", "application/json")
	resp, err := c.do(ctx, u, header)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.statusErr(u, resp)
	}
	body := &limitedReader{r: resp.Body, n: c.maxBody}
	if err := json.NewDecoder(body).Decode(v); err != nil {
		c.metrics.upstreamRequest(c.upstream, outcomeError)
		c.log.Warn("unreadable API response", "service", c.name, "url", u, "error", err)
		if errors.Is(err, errTooLarge) {
			return userErrorf("the %s response was larger than %d bytes", c.name, c.maxBody)
		}
		return &userError{msg: "could not read the " + c.name + " response", err: err}
	}
	c.metrics.upstreamRequest(c.upstream, outcomeOK)
	return nil
}

// do sends GET u with header (which may be nil) and User-Agent BinderHub.
// The caller closes the body. DOI resolver hops send no Accept header:
// doi.org answers some media types with metadata instead of a redirect.
func (c *apiClient) do(ctx context.Context, u string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, userErrorf("invalid %s URL", c.name)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		c.metrics.upstreamRequest(c.upstream, outcomeError)
		var refused *refusedHostError
		if errors.As(err, &refused) {
			return nil, refused
		}
		c.log.Warn("API request failed", "service", c.name, "url", u, "error", err)
		return nil, &userError{msg: "could not reach " + c.name + ": " + netReason(err), err: err}
	}
	return resp, nil
}

// statusErr turns an answer other than 200 into an error: 429 into a rate
// limit message with the wait from Retry-After, anything else into a
// statusError.
func (c *apiClient) statusErr(u string, resp *http.Response) error {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests:
		c.metrics.upstreamRequest(c.upstream, outcomeRateLimited)
		c.log.Warn("API rate limit exceeded", "service", c.name, "url", u, "retry_after", resp.Header.Get("Retry-After"))
		return c.rateLimited(resp.Header.Get("Retry-After"), time.Now())
	case code == http.StatusNotFound || code == http.StatusGone:
		c.metrics.upstreamRequest(c.upstream, outcomeNotFound)
	default:
		c.metrics.upstreamRequest(c.upstream, outcomeError)
		c.log.Warn("unexpected API response", "service", c.name, "url", u, "status", code)
	}
	return &statusError{code: resp.StatusCode}
}

// rateLimited words a 429 answer like upstream's GitHub rate limit error,
// rounding the Retry-After wait (seconds or an HTTP date) up to the next
// 5 minutes: N = 5·(1 + ⌊seconds/300⌋).
func (c *apiClient) rateLimited(retryAfter string, now time.Time) error {
	wait, ok := parseRetryAfter(retryAfter, now)
	if !ok {
		return userErrorf("%s rate limit exceeded (HTTP 429: Too Many Requests). Try again later.", c.name)
	}
	minutes := 5 * (1 + int64(wait.Seconds())/300)
	return userErrorf("%s rate limit exceeded (HTTP 429: Too Many Requests). Try again in %d minutes.", c.name, minutes)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 || s > 1<<31 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// bearer returns an Authorization header for token, nil when it is empty.
func bearer(scheme, token string) http.Header {
	if token == "" {
		return nil
	}
	return http.Header{"Authorization": {scheme + " " + token}}
}

// sameHost reports whether u (an absolute URL) is on the host of base.
func sameHost(u, base string) bool {
	a, err1 := url.Parse(u)
	b, err2 := url.Parse(base)
	return err1 == nil && err2 == nil && strings.EqualFold(a.Host, b.Host) && a.Scheme == b.Scheme
}

// checkPublicHost refuses, without I/O, a URL whose host is known to be
// private or local, unless allow lists it; the guarded dialer then refuses
// names that resolve to such addresses.
func checkPublicHost(allow hostList, u *url.URL) error {
	port := u.Port()
	if port == "" {
		port = defaultPorts[u.Scheme]
	}
	if allow.contains(u.Hostname(), port) {
		return nil
	}
	if reason := hostProblem(u.Hostname()); reason != "" {
		return &refusedHostError{host: u.Hostname(), reason: reason}
	}
	return nil
}
