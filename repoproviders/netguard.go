package repoproviders

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/idna"
)

// refusedHostError is returned when a git URL (or a redirect) points at a
// host binderbuild must not contact on a user's behalf. Its text is shown to
// users.
type refusedHostError struct {
	host   string
	reason string
}

func (e *refusedHostError) Error() string {
	return "Refusing to contact " + e.host + ": " + e.reason + "."
}

const (
	reasonResolvesPrivate = "it resolves to a private or loopback address"
	reasonIsPrivate       = "it is a private or loopback address"
	reasonNumeric         = "numeric host names must be written as dotted-decimal IPv4 addresses"
	reasonLocalhost       = "it is a name for the local machine"
)

// errBlockedAddress is returned by the dialer's Control hook for an address
// that is not public; guard.DialContext turns it into a refusedHostError.
var errBlockedAddress = errors.New("address is not public")

// blockedPrefixes are the special-purpose ranges (RFC 6890 and friends) that
// netip's predicates do not already cover and that must not be dialled.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT shared address space
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated), ::, ::1
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/32"),       // Teredo (embeds an obfuscated IPv4)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
	// translated is the IPv4-translated form (RFC 2765), ::ffff:0:a.b.c.d,
	// which some stacks route as IPv4.
	translated = netip.MustParsePrefix("::ffff:0:0:0/96")
)

// isPublicAddr reports whether a may be contacted on a user's behalf: it is
// false for loopback, private (RFC 1918, CGNAT, unique-local), link-local
// (including 169.254.169.254), unspecified, multicast and reserved
// addresses, for IPv4-mapped and IPv4-translated forms of them, and for
// NAT64 or 6to4 addresses embedding them.
func isPublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.Zone() != "" || !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a), translated.Contains(a):
		return isPublicAddr(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		return isPublicAddr(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return true
}

// hostProblem checks a host name or address literal (without brackets or
// port) as far as possible without I/O. It returns a reason when the host is
// an address literal that is not public, a name reserved for the local
// machine, or a numeric form (2130706433, 0177.0.0.1, 0x7f.1) that URL
// parsers and resolvers disagree about.
func hostProblem(host string) string {
	if a, err := netip.ParseAddr(host); err == nil {
		if !isPublicAddr(a) {
			return reasonIsPrivate
		}
		return ""
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return reasonLocalhost
	}
	// WHATWG URL: a host whose last label is a number is an IPv4 address.
	last := name[strings.LastIndexByte(name, '.')+1:]
	if hex, ok := strings.CutPrefix(last, "0x"); ok && strings.Trim(hex, "0123456789abcdef") == "" {
		return reasonNumeric
	}
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return reasonNumeric
	}
	return ""
}

// asciiHost returns host as resolvers and git see it: a non-ASCII name is
// mapped and encoded by IDNA (UTS #46, as browsers, curl and git do), so
// that "１２７.０.０.１", "127。0。0。1" and "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ" are checked, and
// handed on, as "127.0.0.1" and "localhost". ASCII hosts are returned as
// they are.
func asciiHost(host string) (string, error) {
	for i := range len(host) {
		if host[i] >= 0x80 {
			return idna.Lookup.ToASCII(host)
		}
	}
	return host, nil
}

// checkResolved looks host up with r (nil: the system resolver) and refuses
// it when any of its addresses is not public, since a client may connect to
// any of them. Address literals are left to hostProblem. A failed lookup is
// returned as it is (a *net.DNSError): nothing could be checked.
func checkResolved(ctx context.Context, r *net.Resolver, host string) error {
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if !isPublicAddr(a) {
			return &refusedHostError{host: host, reason: reasonResolvesPrivate}
		}
	}
	return nil
}

// hostList is a set of hosts ("example.org") and host:port pairs
// ("127.0.0.1:8080") exempt from the address checks.
type hostList map[string]bool

func newHostList(entries []string) hostList {
	l := hostList{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if host, port, err := net.SplitHostPort(e); err == nil {
			l[canonicalHost(host)+" "+port] = true
		} else if e != "" {
			l[canonicalHost(strings.Trim(e, "[]"))] = true
		}
	}
	return l
}

// contains reports whether host (no brackets) or host:port is listed.
func (l hostList) contains(host, port string) bool {
	if len(l) == 0 {
		return false
	}
	h := canonicalHost(host)
	return l[h] || l[h+" "+port]
}

// canonicalHost lower-cases names and writes address literals in netip's
// canonical form, so "[0:0::1]" and "::1" are the same entry.
func canonicalHost(host string) string {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.String()
	}
	return strings.ToLower(host)
}

// guard dials TCP connections for the git provider. Hosts in allow are
// dialled as they are; every other connection is checked at connect time,
// on the address actually dialled, so neither DNS answers nor rebinding can
// lead it to a private address.
type guard struct {
	allow  hostList
	plain  net.Dialer
	public net.Dialer // plain plus a Control hook refusing non-public addresses
}

func newGuard(allow hostList, timeout time.Duration) *guard {
	g := &guard{allow: allow}
	g.plain = net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	g.public = g.plain
	g.public.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !isPublicAddr(ap.Addr()) {
			return errBlockedAddress
		}
		return nil
	}
	return g
}

// DialContext has the signature of net.Dialer.DialContext.
func (g *guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if g.allow.contains(host, port) {
		return g.plain.DialContext(ctx, network, addr)
	}
	if reason := hostProblem(host); reason != "" {
		return nil, &refusedHostError{host: host, reason: reason}
	}
	conn, err := g.public.DialContext(ctx, network, addr)
	if errors.Is(err, errBlockedAddress) {
		return nil, &refusedHostError{host: host, reason: reasonResolvesPrivate}
	}
	return conn, err
}

// errTooLarge is returned by limitedReader once its limit is exceeded.
var errTooLarge = errors.New("response too large")

// limitedReader reads at most n bytes from r and then fails with errTooLarge
// if more data follows (unlike io.LimitReader, which reports a clean EOF).
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// netReason describes a connection failure in a few words that are safe to
// show to users (no addresses of name servers, no URLs with tokens).
func netReason(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "the request was cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "the request timed out"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "host not found"
		}
		return "host name lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the connection was closed unexpectedly"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "network unreachable"
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority), errors.As(err, &hostnameErr):
		return "TLS certificate verification failed"
	}
	return "network error"
}
