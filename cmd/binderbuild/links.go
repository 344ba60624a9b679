package main

import (
	"net/url"
	"regexp"
	"strings"
)

// linkRules turn a pasted link, DOI or SWHID into "<provider>/<spec>", the
// same links the web page detects (web/static/app.js). Each returns "" when
// the match is not usable.
var linkRules = []struct {
	re   *regexp.Regexp
	spec func(m []string) string
}{
	{regexp.MustCompile(`(?i)^(?:https?://(?:dx\.)?doi\.org/|doi:)?(10\.\d+/[^\s?#]+?)/?$`), func(m []string) string {
		for _, p := range doiPrefixes {
			if p.re.MatchString(m[1]) {
				return p.provider + "/" + m[1]
			}
		}
		return "dataverse/" + m[1]
	}},
	{regexp.MustCompile(`(?i)^https?://(?:www\.|sandbox\.)?zenodo\.org/records?/(\d+)/?(?:[?#].*)?$`), func(m []string) string {
		return "zenodo/10.5281/zenodo." + m[1]
	}},
	{regexp.MustCompile(`(?i)^https?://(?:[\w-]+\.)*figshare\.com/articles/(?:[^/?#]+/)*?(\d+)(?:/(\d{1,4}))?/?(?:[?#].*)?$`), func(m []string) string {
		if m[2] != "" {
			return "figshare/10.6084/m9.figshare." + m[1] + ".v" + m[2]
		}
		return "figshare/10.6084/m9.figshare." + m[1]
	}},
	{regexp.MustCompile(`(?i)^https?://(?:www\.)?hydroshare\.org/resource/([0-9a-f]{32})(?:[/?#].*)?$`), func(m []string) string {
		return "hydroshare/" + strings.ToLower(m[1])
	}},
	{regexp.MustCompile(`(?i)^(?:https?://archive\.softwareheritage\.org/(?:browse/)?)?(swh:1:(?:dir|rev|rel|snp):[0-9a-f]{40})(?:;.*|/)?$`), func(m []string) string {
		return "swh/" + m[1]
	}},
	{regexp.MustCompile(`(?i)^https?://gist\.github\.com/([^/?#]+/[0-9a-f]+)/?$`), func(m []string) string {
		return "gist/" + m[1]
	}},
	{regexp.MustCompile(`(?i)^https?://github\.com/([^/?#]+/[^/?#]+?)(?:\.git)?(?:/tree/([^?#]+?))?/?$`), func(m []string) string {
		return "gh/" + m[1] + "/" + orText(m[2], "HEAD")
	}},
	{regexp.MustCompile(`(?i)^https?://gitlab\.com/([^?#]+?)(?:\.git)?(?:/-/tree/([^?#]+?))?/?$`), func(m []string) string {
		return "gl/" + url.PathEscape(m[1]) + "/" + url.PathEscape(orText(m[2], "HEAD"))
	}},
	{regexp.MustCompile(`(?i)^https?://[^/?#]+/[^?#]*$`), func(m []string) string {
		return "git/" + strings.ReplaceAll(url.QueryEscape(strings.TrimRight(m[0], "/")), "+", "%20") + "/HEAD"
	}},
}

// doiPrefixes pick the archive of a DOI; other DOIs go to dataverse, whose
// installations mint DOIs under many prefixes.
var doiPrefixes = []struct {
	re       *regexp.Regexp
	provider string
}{
	{regexp.MustCompile(`(?i)^10\.5281/zenodo\.`), "zenodo"},
	{regexp.MustCompile(`(?i)^10\.6084/m9\.figshare\.`), "figshare"},
	{regexp.MustCompile(`(?i)^10\.4211/hs\.`), "hydroshare"},
}

// specFromLink returns the "<provider>/<spec>" of a link, DOI or SWHID, and
// false for anything else (such as an argument that already is
// "<provider>/<spec>").
func specFromLink(arg string) (string, bool) {
	if prefix, _, _ := strings.Cut(arg, "/"); exampleSpecs[prefix] != "" {
		return "", false
	}
	for _, r := range linkRules {
		if m := r.re.FindStringSubmatch(arg); m != nil {
			if spec := r.spec(m); spec != "" {
				return spec, true
			}
		}
	}
	return "", false
}
