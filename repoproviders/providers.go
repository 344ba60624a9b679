// Package repoproviders turns the spec of a /build request into a repository
// and resolves its ref to a commit or archived version: GitHub (gh), gists
// (gist), GitLab (gl), any git URL (git), Zenodo, Figshare, HydroShare,
// Dataverse and CKAN, following upstream BinderHub's repoproviders.py
// (spec/build-api.md §10), and Software Heritage (swh).
//
// Every provider implements Provider. Parse is pure and its errors are
// sentences for users; Resolve returns binderbuild.ErrRefNotFound (wrapped)
// for a missing ref or repository, and otherwise errors whose text is safe to
// show to users (no tokens, no internal addresses). Cached decorates a
// Provider with a result cache and coalesces concurrent identical
// resolutions.
//
// The git, ckan and dataverse providers contact arbitrary hosts on behalf of
// users. They refuse private, loopback, link-local and similar addresses at
// connection time (see GitConfig.AllowedHosts, ArchiveConfig.AllowedHosts)
// and validate URLs and refs before use.
package repoproviders

import (
	"context"
	"fmt"
	"net/url"
	"unicode/utf8"

	"github.com/binderbuild/binderbuild"
)

// Provider is what every provider in this package implements and what
// Cached wraps.
type Provider interface {
	// Prefix is the provider's URL prefix: "gh", "gl", "git", "zenodo", ….
	Prefix() string
	// Parse parses a raw (still percent-encoded) spec whose trailing "/"
	// are already stripped. It does no I/O; its error text is shown to users.
	Parse(spec string) (binderbuild.Repo, error)
	// Resolve resolves the repository's ref to a commit.
	Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error)
	// Display returns the provider's /api/repoproviders entry.
	Display() any
}

// MaxSpecLength is the longest spec, in bytes, that Parse accepts.
const MaxSpecLength = 4096

// DisplayConfig is one entry of GET /api/repoproviders (spec §10.6). It
// marshals to JSON with upstream's key order.
type DisplayConfig struct {
	// DisplayName is the provider's name in the UI, e.g. "GitHub".
	DisplayName string `json:"displayName"`
	// ID is the provider prefix.
	ID string `json:"id"`
	// Spec.ValidateRegex is the JavaScript regex the UI checks specs with.
	Spec struct {
		ValidateRegex string `json:"validateRegex"`
	} `json:"spec"`
	// Detect.Regex extracts the "repo" group from a pasted URL; Detect is
	// nil for providers without URL detection (git).
	Detect *struct {
		Regex string `json:"regex"`
	} `json:"detect,omitempty"`
	// Repo describes the repository input field.
	Repo struct {
		Label       string `json:"label"`
		Placeholder string `json:"placeholder"`
		URLEncode   bool   `json:"urlEncode"`
	} `json:"repo"`
	// Ref describes the ref input field.
	Ref struct {
		Enabled bool   `json:"enabled"`
		Default string `json:"default,omitempty"`
	} `json:"ref"`
}

// newDisplayConfig fills a DisplayConfig whose ref is enabled with default
// HEAD, as for all three git-based providers. An empty detect leaves Detect nil.
func newDisplayConfig(name, id, validate, detect, label, placeholder string, urlEncode bool) DisplayConfig {
	var d DisplayConfig
	d.DisplayName = name
	d.ID = id
	d.Spec.ValidateRegex = validate
	if detect != "" {
		d.Detect = &struct {
			Regex string `json:"regex"`
		}{Regex: detect}
	}
	d.Repo.Label = label
	d.Repo.Placeholder = placeholder
	d.Repo.URLEncode = urlEncode
	d.Ref.Enabled = true
	d.Ref.Default = "HEAD"
	return d
}

// userError is an error whose text is written for users: the server shows it
// verbatim, so it may be capitalised and end with a full stop like upstream's
// messages. err, if set, is the cause for errors.Is and errors.As; its text
// is never shown.
type userError struct {
	msg string
	err error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.err }

// userErrorf formats a userError without a cause.
func userErrorf(format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...)}
}

// checkSpec applies the limits common to every provider's spec.
func checkSpec(spec string) error {
	if len(spec) > MaxSpecLength {
		return userErrorf("Spec is too long (%d bytes, the limit is %d)", len(spec), MaxSpecLength)
	}
	if !utf8.ValidString(spec) {
		return userErrorf("Spec %q is not valid UTF-8.", spec)
	}
	return nil
}

// unescape percent-decodes one part of a spec like Python's
// urllib.parse.unquote ("+" stays "+"), but refuses malformed escapes and
// results that are not UTF-8 instead of passing them on.
func unescape(spec, part string) (string, error) {
	s, err := url.PathUnescape(part)
	if err != nil {
		return "", userErrorf("Spec %q contains an invalid percent-encoding.", spec)
	}
	if !utf8.ValidString(s) {
		return "", userErrorf("Spec %q is not valid UTF-8 after percent-decoding.", spec)
	}
	return s, nil
}

// isFullSHA reports whether s is exactly 40 lower-case hex digits.
func isFullSHA(s string) bool {
	return len(s) == 40 && isLowerHex(s)
}

// hasSHAPrefix reports whether s starts with 40 lower-case hex digits, the
// test upstream's SHA1_PATTERN.match applies.
func hasSHAPrefix(s string) bool {
	return len(s) >= 40 && isLowerHex(s[:40])
}

// isCommitID reports whether s looks like a commit id an API returned: 40
// (SHA-1) or 64 (SHA-256) lower-case hex digits.
func isCommitID(s string) bool {
	return (len(s) == 40 || len(s) == 64) && isLowerHex(s)
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
