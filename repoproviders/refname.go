package repoproviders

import (
	"strings"
)

// checkRef returns a user-facing error when ref is not a ref a user may ask
// for: it must pass `git check-ref-format --allow-onelevel` (so "HEAD",
// "main" and full shas are fine) and must not start with "-".
func checkRef(ref string) error {
	if reason := refNameProblem(ref); reason != "" {
		return userErrorf("Invalid git ref %q: %s.", ref, reason)
	}
	return nil
}

// refNameProblem implements the rules of git's check_refname_format (refs.c)
// with REFNAME_ALLOW_ONELEVEL, plus a ban on a leading "-" (it would read as
// an option). It returns "" for a valid name, else why the name is invalid.
func refNameProblem(ref string) string {
	switch {
	case ref == "":
		return "it is empty"
	case ref == "@":
		return `it must not be "@"`
	case ref[0] == '-':
		return `it must not start with "-"`
	case ref[0] == '/':
		return `it must not start with "/"`
	case ref[len(ref)-1] == '/':
		return `it must not end with "/"`
	case ref[len(ref)-1] == '.':
		return `it must not end with "."`
	}
	var last byte
	for i := range len(ref) {
		c := ref[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "it must not contain control characters"
		case c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' || c == '*' || c == '[' || c == '\\':
			return "it must not contain " + quoteByte(c)
		case c == '.' && last == '.':
			return `it must not contain ".."`
		case c == '{' && last == '@':
			return `it must not contain "@{"`
		}
		last = c
	}
	for component := range strings.SplitSeq(ref, "/") {
		switch {
		case component == "":
			return `it must not contain "//"`
		case component[0] == '.':
			return `no part of it may start with "."`
		case strings.HasSuffix(component, ".lock"):
			return `no part of it may end with ".lock"`
		}
	}
	return ""
}

// quoteByte returns the printable ASCII byte c in double quotes.
func quoteByte(c byte) string {
	if c == ' ' {
		return "spaces"
	}
	return `"` + string(rune(c)) + `"`
}
