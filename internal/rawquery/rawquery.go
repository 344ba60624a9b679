// Package rawquery reads one value of a URL's raw query without parsing the
// whole query into a map: the warm path asks for one or two values.
package rawquery

import (
	"net/url"
	"strings"
)

// Get is url.ParseQuery(raw).Get(name): the first value of name, "" when
// there is none.
func Get(raw, name string) string {
	for q := raw; q != ""; {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if kv == "" || strings.Contains(kv, ";") {
			continue // as url.ParseQuery skips them
		}
		k, v, _ := strings.Cut(kv, "=")
		if k, err := unescape(k); err != nil || k != name {
			continue
		}
		if v, err := unescape(v); err == nil {
			return v
		}
	}
	return ""
}

// unescape is url.QueryUnescape, which allocates only when there is
// something to unescape.
func unescape(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	return url.QueryUnescape(s)
}
