package server

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild/auth"
	"github.com/binderbuild/binderbuild/internal/rawquery"
)

// AccessConfig holds who may use the service, from where, how often and for
// which repositories (spec build-api.md §9). The zero value allows everything:
// no authentication, no rate limit, no bans, no CORS.
type AccessConfig struct {
	RateLimit       int           `split_words:"true" default:"0" desc:"build requests allowed per client and BINDERBUILD_RATE_LIMIT_PERIOD (0: no limit); authenticated users are counted by name, others by client IP"`
	RateLimitPeriod time.Duration `split_words:"true" default:"1h" desc:"rate-limit window (fixed windows starting at a client's first request)"`
	TrustedProxies  Networks      `split_words:"true" desc:"comma list of CIDRs of reverse proxies (e.g. JupyterHub's proxy) whose X-Forwarded-For / X-Real-Ip headers name the client; headers from other peers are ignored"`
	BanNetworks     BanList       `split_words:"true" desc:"comma list of CIDR=label entries whose clients are refused with 'Requests from <label> are not allowed', e.g. 10.0.0.0/8=internal,2001:db8::/32=docs (label defaults to the CIDR)"`

	BannedSpecs    SpecPatterns `split_words:"true" desc:"comma list of regular expressions; a spec (e.g. org/repo/ref) matching one, case-insensitively from its start, is refused. Commas inside {m,n} and [...] belong to the pattern"`
	AllowedSpecs   SpecPatterns `split_words:"true" desc:"comma list of regular expressions; when set, only specs matching one may build"`
	HighQuotaSpecs SpecPatterns `split_words:"true" desc:"comma list of regular expressions of specs with the higher per-repository quota (accepted for compatibility; binderbuild launches no servers, so no quota applies yet)"`

	CorsAllowOrigin string `split_words:"true" desc:"Access-Control-Allow-Origin of every response: *, one origin, or a comma list of origins (the matching request Origin is echoed)"`

	BuildTokenSecret      HexSecret `split_words:"true" desc:"hex-encoded HS256 secret of BinderHub build tokens (build_token query); without it every build token is refused"`
	BuildTokenCheckOrigin bool      `split_words:"true" default:"true" desc:"require a build token's origin claim to match the request's Origin (or Host)"`
}

// Networks is a list of IP prefixes, written as a comma list of CIDRs. A
// bare address counts as a single-address prefix.
type Networks []netip.Prefix

// UnmarshalText parses a comma list of CIDRs.
func (n *Networks) UnmarshalText(text []byte) error {
	var out Networks
	for _, f := range strings.Split(string(text), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := parsePrefix(f)
		if err != nil {
			return err
		}
		out = append(out, p)
	}
	*n = out
	return nil
}

// contains reports whether one of the prefixes contains ip.
func (n Networks) contains(ip netip.Addr) bool {
	for _, p := range n {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or IP address", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: %v", s, err)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// BanNetwork is one banned network and the label shown to its clients.
type BanNetwork struct {
	Prefix netip.Prefix
	Label  string
}

// BanList is upstream's ban_networks: CIDR → label, first match wins. It is
// written as a comma list of CIDR=label entries: envconfig maps cannot hold
// IPv6 CIDRs, whose ":" separates a map's key from its value.
type BanList []BanNetwork

// UnmarshalText parses a comma list of CIDR=label entries.
func (b *BanList) UnmarshalText(text []byte) error {
	var out BanList
	for _, f := range strings.Split(string(text), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		cidr, label, _ := strings.Cut(f, "=")
		p, err := parsePrefix(strings.TrimSpace(cidr))
		if err != nil {
			return err
		}
		label = strings.TrimSpace(label)
		if label == "" {
			label = strings.TrimSpace(cidr)
		}
		// One IPv6 subscriber holds a /64: banning less would let it
		// rotate addresses.
		if p.Addr().Is6() && !p.Addr().Is4In6() && p.Bits() > 64 {
			p, _ = p.Addr().Prefix(64)
		}
		out = append(out, BanNetwork{Prefix: p, Label: label})
	}
	*b = out
	return nil
}

// match returns the label of the first network containing ip.
func (b BanList) match(ip netip.Addr) (string, bool) {
	if !ip.IsValid() {
		return "", false
	}
	ip = ip.Unmap()
	for _, n := range b {
		if n.Prefix.Contains(ip) {
			return n.Label, true
		}
	}
	return "", false
}

// SpecPatterns are regular expressions matched against raw specs as
// upstream's re.match does: case-insensitive, anchored at the start only.
type SpecPatterns []*regexp.Regexp

// UnmarshalText compiles a comma list of patterns. A comma inside {m,n} or a
// [...] class belongs to its pattern; write other literal commas as \x2c.
// RE2 has no look-arounds or back-references: such patterns are refused.
func (s *SpecPatterns) UnmarshalText(text []byte) error {
	var out SpecPatterns
	for _, p := range splitPatterns(string(text)) {
		if strings.TrimSpace(p) == "" {
			continue
		}
		re, err := compileSpecPattern(p)
		if err != nil {
			return err
		}
		out = append(out, re)
	}
	*s = out
	return nil
}

var unsupportedSyntax = regexp.MustCompile(`\(\?<?[=!]|\\[1-9]`)

// compileSpecPattern compiles one spec pattern as (?i)^(?:p).
func compileSpecPattern(p string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`(?i)^(?:` + p + `)`)
	if err != nil {
		if unsupportedSyntax.MatchString(p) {
			return nil, fmt.Errorf("pattern %q uses a look-around or back-reference, which Go's RE2 syntax does not support: %v", p, err)
		}
		return nil, fmt.Errorf("pattern %q: %v", p, err)
	}
	return re, nil
}

// splitPatterns splits on commas outside {...} and [...].
func splitPatterns(s string) []string {
	var out []string
	var cur strings.Builder
	class, brace := false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(c)
			i++
			c = s[i]
		case class:
			if c == ']' {
				class = false
			}
		case c == '[':
			class = true
			// "[]...]" and "[^]...]" start with a literal "]".
			if i+1 < len(s) && s[i+1] == '^' {
				cur.WriteByte(c)
				i++
				c = s[i]
			}
			if i+1 < len(s) && s[i+1] == ']' {
				cur.WriteByte(c)
				i++
				c = s[i]
			}
		case c == '{':
			brace++
		case c == '}' && brace > 0:
			brace--
		case c == ',' && brace == 0:
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	return append(out, cur.String())
}

// matchAny reports whether one pattern matches spec.
func (s SpecPatterns) matchAny(spec string) bool {
	for _, re := range s {
		if re.MatchString(spec) {
			return true
		}
	}
	return false
}

// String lists the patterns as configured (for logs).
func (s SpecPatterns) String() string {
	out := make([]string, len(s))
	for i, re := range s {
		p := strings.TrimPrefix(re.String(), "(?i)^(?:")
		out[i] = strings.TrimSuffix(p, ")")
	}
	return strings.Join(out, ",")
}

// specBanned is upstream's is_banned: a banned pattern matches, or allowed
// patterns are set and none matches.
func (c AccessConfig) specBanned(spec string) bool {
	if c.BannedSpecs.matchAny(spec) {
		return true
	}
	return len(c.AllowedSpecs) > 0 && !c.AllowedSpecs.matchAny(spec)
}

// highQuota is upstream's has_higher_quota.
func (c AccessConfig) highQuota(spec string) bool { return c.HighQuotaSpecs.matchAny(spec) }

// HexSecret is a secret written in hex, as upstream's build_token_secret.
type HexSecret []byte

// UnmarshalText hex-decodes the secret.
func (h *HexSecret) UnmarshalText(text []byte) error {
	b, err := hex.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("want a hex-encoded secret: %v", err)
	}
	*h = b
	return nil
}

// String hides the secret from logs and usage output.
func (h HexSecret) String() string {
	if len(h) == 0 {
		return ""
	}
	return "<redacted>"
}

// clientIP returns the client's address: the peer, or, when the peer is a
// trusted proxy, the address its X-Forwarded-For (read from the right,
// skipping further trusted proxies) or X-Real-Ip names. Invalid header
// values are ignored, as upstream's tornado does.
func (c AccessConfig) clientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !peer.IsValid() || !c.TrustedProxies.contains(peer) {
		return peer
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		client := peer
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			client = a.Unmap().WithZone("")
			if !c.TrustedProxies.contains(client) {
				break
			}
		}
		return client
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-Ip"))); err == nil {
		return a.Unmap().WithZone("")
	}
	return peer
}

func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// banned returns the refusal for a client in BanNetworks.
func (s *Server) banned(r *http.Request) error {
	if len(s.cfg.BanNetworks) == 0 {
		return nil
	}
	if label, ok := s.cfg.BanNetworks.match(s.cfg.clientIP(r)); ok {
		return userError(http.StatusForbidden, "Requests from "+label+" are not allowed")
	}
	return nil
}

// checkSpec refuses banned specs (§2 step 10). The message has no final
// newline, as upstream's.
func (s *Server) checkSpec(r *http.Request, spec string) error {
	if s.cfg.specBanned(spec) {
		s.log.InfoContext(r.Context(), "banned spec refused", "spec", spec)
		return &requestError{msg: "Sorry, " + spec + " is not allowed to launch. Please contact admins for more info!"}
	}
	return nil
}

// corsOrigin returns the Access-Control-Allow-Origin value for r, if any.
func (s *Server) corsOrigin(r *http.Request) (string, bool) {
	allow := strings.TrimSpace(s.cfg.CorsAllowOrigin)
	if allow == "" {
		return "", false
	}
	if !strings.Contains(allow, ",") {
		return allow, true
	}
	origin := r.Header.Get("Origin")
	for _, o := range strings.Split(allow, ",") {
		if o = strings.TrimSpace(o); o == "*" || (origin != "" && o == origin) {
			if o == "*" {
				return "*", true
			}
			return origin, true
		}
	}
	return "", false
}

// corsAllowHeaders are the request headers browsers may send: the
// binderhub-client's Authorization and X-Xsrftoken, EventSource's
// Cache-Control and Last-Event-ID.
const corsAllowHeaders = "authorization, cache-control, last-event-id, x-xsrftoken, content-type"

// exposedHeaders lets browser code read the rate-limit state.
const exposedHeaders = "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"

// access is the middleware of every route: CORS headers and the preflight,
// and the ban check of routes other than /build (which answers with an
// event), /health and /versions.
func (s *Server) access(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin, cors := s.corsOrigin(r)
		if cors {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", exposedHeaders)
			if origin != "*" {
				h.Add("Vary", "Origin")
			}
		}
		rel := strings.TrimPrefix(r.URL.Path, s.cfg.BaseURL)
		preflight := cors && r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		// /build answers a ban with a failed event itself, except to a
		// preflight, which cannot carry one.
		if rel != "health" && rel != "versions" && (preflight || !strings.HasPrefix(rel, "build/")) {
			if err := s.banned(r); err != nil {
				http.Error(w, strings.TrimSuffix(err.Error(), "\n"), http.StatusForbidden)
				return
			}
		}
		if preflight {
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "7200")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// admit runs the checks of §2 steps 3, 5 and 6 that follow the Accept
// check: authentication, the build token, then the rate limit. A valid
// build token exempts from the rate limit; an authenticated user is counted
// by name, anyone else by client IP.
//
// It returns the authenticated user, nil for anyone else; clientKey makes
// of it who the request counts against, computed only when something
// counts (the rate limit, the builds one client starts).
func (s *Server) admit(w http.ResponseWriter, r *http.Request, provider, rawSpec string) (user *auth.User, err error) {
	user, err = s.authenticate(r)
	if err != nil {
		return nil, err
	}
	if tok := rawquery.Get(r.URL.RawQuery, "build_token"); tok != "" {
		bt := auth.BuildTokens{Secret: s.cfg.BuildTokenSecret, CheckOrigin: s.cfg.BuildTokenCheckOrigin, Now: s.now}
		if err := bt.Verify(tok, provider+"/"+rawSpec, auth.Origin(r)); err != nil {
			return nil, userError(http.StatusForbidden, "Invalid build token")
		}
		return user, nil
	}
	if s.limiter == nil {
		return user, nil
	}
	client := s.clientKey(r, user)
	rl, err := s.limiter.increment(client)
	if err != nil {
		s.log.InfoContext(r.Context(), "rate limit exceeded", "client", client, "reset", rl.Reset)
		return nil, err
	}
	rl.setHeaders(w.Header())
	return user, nil
}

// clientKey is "user:<name>" for an authenticated user, else "ip:" and the
// client's address; an IPv6 client is keyed by its /64, the block one
// subscriber gets, so that rotating addresses within it does not help.
func (s *Server) clientKey(r *http.Request, user *auth.User) string {
	if user != nil {
		return "user:" + user.Name
	}
	ip := s.cfg.clientIP(r)
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + ip.String()
}

func (s *Server) now() time.Time {
	if s.deps.Now != nil {
		return s.deps.Now()
	}
	return time.Now()
}

// Validate checks the settings that parsing alone does not.
func (c AccessConfig) Validate() error {
	if c.RateLimit < 0 {
		return fmt.Errorf("invalid BINDERBUILD_RATE_LIMIT=%d: want 0 (off) or more", c.RateLimit)
	}
	if c.RateLimit > 0 && c.RateLimitPeriod < time.Second {
		return fmt.Errorf("invalid BINDERBUILD_RATE_LIMIT_PERIOD=%s: want at least 1s", c.RateLimitPeriod)
	}
	return nil
}
