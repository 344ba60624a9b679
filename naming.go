package binderbuild

import (
	"crypto/sha256"
	"strings"
)

// Naming constants from BinderHub's builder.py (spec §11).
const (
	// maxRepositoryLen bounds the repository part (everything before the
	// ":" tag separator) of an image name.
	maxRepositoryLen = 255
	// imageSlugHashLen is the number of sha256 hex digits in an image slug.
	imageSlugHashLen = 6

	// buildNamePrefix starts every build (pod) name.
	buildNamePrefix = "build-"
	// maxBuildNameLen is the DNS-1123 label limit for a pod name.
	maxBuildNameLen = 63
	// buildRefLen is the length of the ref part of a build name.
	buildRefLen = 6
	// buildRefHashLen is the number of sha256 hex digits in the ref part.
	buildRefHashLen = 2
)

const upperHex = "0123456789ABCDEF"
const lowerHex = "0123456789abcdef"

// ImageName returns the full image name, with tag, for a build slug at a
// resolved ref, exactly as BinderHub names it:
//
//	lower(replace(prefix + safeSlug(buildSlug, 255-len(prefix)) + ":" + ref, "_", "-"))
//
// where safeSlug escapes the slug (escapism, "-" as escape character),
// truncates the escaped form and appends "-" and 6 hex digits of the sha256
// of the unescaped slug. prefix is the configured image_prefix and is joined
// without a separator; the ref becomes the tag verbatim apart from the
// lower-casing and "_" → "-" (it is never truncated).
//
// The repository part (everything before the final ":"+tag) is at most 255
// bytes when the normalized prefix is at most 248 bytes (255 minus the hash
// and its dash); slug "a"*300 with prefix "" gives exactly 255. With a
// longer prefix the escaped slug is dropped entirely (upstream would slice
// with a negative index), so only the prefix, "-" and the hash remain.
// Lengths are bytes after normalization; upstream counts the code points of
// the raw prefix, which differs only for a non-ASCII prefix, itself invalid
// in an image reference.
//
// The result is deterministic. ImageName does not validate it: a prefix or
// ref outside the image reference grammar yields a name that
// name.ParseReference rejects.
func ImageName(prefix, buildSlug, ref string) string {
	prefix = normalize(prefix)
	var b strings.Builder
	b.Grow(len(prefix) + min(maxRepositoryLen, 3*len(buildSlug)+imageSlugHashLen+1) + 1 + len(ref))
	b.WriteString(prefix)
	writeSafeSlug(&b, buildSlug, maxRepositoryLen-len(prefix), imageSlugHashLen)
	b.WriteByte(':')
	writeNormalized(&b, ref)
	return b.String()
}

// BuildName returns the build (pod) name for a build slug at a resolved ref,
// exactly as BinderHub names its build pods:
//
//	"build-" + safeSlug(slug, 50) + "-" + safeSlug(ref, 6, 2)[:6]
//
// i.e. up to 43 escaped characters of the slug, "-", 6 hex digits of the
// slug's sha256, "-", up to 3 escaped characters of the ref, "-" and 2 hex
// digits of the ref's sha256, all lower-cased. The result is always at
// most 63 characters and a valid DNS-1123 label
// ([a-z0-9]([-a-z0-9]*[a-z0-9])?), ending in 2 hex digits. It depends only
// on (buildSlug, ref), so concurrent requests for the same repository and
// ref map to the same build pod.
func BuildName(buildSlug, ref string) string {
	return buildName(buildSlug, ref, buildNamePrefix)
}

// buildName is BinderHub's _generate_build_name with limit 63 and ref
// length 6. The prefix must be ASCII; it is lower-cased.
func buildName(buildSlug, ref, prefix string) string {
	prefix = normalize(prefix)
	var b strings.Builder
	b.Grow(maxBuildNameLen)
	b.WriteString(prefix)
	writeSafeSlug(&b, buildSlug, maxBuildNameLen-len(prefix)-buildRefLen-1, imageSlugHashLen)
	b.WriteByte('-')
	// safeSlug(ref, 6, 2)[:6]: with limit 6 and hash length 2 the safe slug
	// is at most 6 characters long, so the cut is a no-op.
	writeSafeSlug(&b, ref, buildRefLen, buildRefHashLen)
	return b.String()
}

// Escape escapes s like escapism 1.1.0 with BinderHub's settings: ASCII
// letters and digits are kept; every other UTF-8 byte (including "-",
// the escape character) becomes "-" followed by the byte in upper-case
// hex without zero padding ("\t" → "-9", "ü" → "-C3-BC").
func Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isSafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('-')
		if c >= 0x10 {
			b.WriteByte(upperHex[c>>4])
		}
		b.WriteByte(upperHex[c&0x0f])
	}
	return b.String()
}

// safeSlug is BinderHub's _safe_build_slug: the first limit-hashLen-1
// characters of Escape(slug), "-" and the first hashLen hex digits of the
// sha256 of the unescaped slug, lower-cased. The cut may split an escape
// sequence in half, as upstream does. A negative cut keeps nothing.
func safeSlug(slug string, limit, hashLen int) string {
	var b strings.Builder
	writeSafeSlug(&b, slug, limit, hashLen)
	return b.String()
}

// writeSafeSlug writes safeSlug(slug, limit, hashLen) to b, escaping only
// as much of slug as the cut keeps.
func writeSafeSlug(b *strings.Builder, slug string, limit, hashLen int) {
	keep := limit - hashLen - 1
	for i := 0; i < len(slug) && keep > 0; i++ {
		c := slug[i]
		if isSafe(c) {
			b.WriteByte(toLower(c))
			keep--
			continue
		}
		b.WriteByte('-')
		keep--
		if c >= 0x10 && keep > 0 {
			b.WriteByte(lowerHex[c>>4])
			keep--
		}
		if keep > 0 {
			b.WriteByte(lowerHex[c&0x0f])
			keep--
		}
	}
	b.WriteByte('-')
	sum := sha256Of(slug)
	for i := 0; i < hashLen; i++ {
		c := sum[i/2]
		if i%2 == 0 {
			b.WriteByte(lowerHex[c>>4])
		} else {
			b.WriteByte(lowerHex[c&0x0f])
		}
	}
}

// normalize returns s lower-cased and with "_" replaced by "-", as
// BinderHub does to the whole image name. It returns s itself, without
// allocating, when there is nothing to change.
func normalize(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c == '_' || 'A' <= c && c <= 'Z' {
			var b strings.Builder
			b.Grow(len(s))
			writeNormalized(&b, s)
			return b.String()
		}
	}
	return s
}

// sha256Of returns the sha256 of s, copying short strings through a stack
// buffer so that hashing them does not allocate.
func sha256Of(s string) [sha256.Size]byte {
	var buf [256]byte
	if len(s) <= len(buf) {
		n := copy(buf[:], s)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(s))
}

// writeNormalized writes normalize(s) to b. ASCII takes a fast path;
// anything else goes through strings.ToLower, which maps invalid UTF-8
// bytes to U+FFFD.
func writeNormalized(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			b.WriteString(strings.ToLower(strings.ReplaceAll(s, "_", "-")))
			return
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' {
			c = '-'
		}
		b.WriteByte(toLower(c))
	}
}

// isSafe reports whether escapism keeps c unescaped.
func isSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// toLower lower-cases an ASCII letter and returns any other byte unchanged.
func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
