package repoproviders

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"

	"github.com/binderbuild/binderbuild"
)

// SWH resolves swh specs through the Software Heritage API to the
// directory or revision repo2docker's Software Heritage content provider
// fetches (it takes swh:1:dir and swh:1:rev SWHIDs). A spec is either
//
//   - a SWHID, "swh:1:<dir|rev|rel|snp>:<40 hex>" (qualifiers after ";"
//     are ignored, as repo2docker does): dir and rev are used as they are,
//     without a request; rel and snp are resolved to what they point at
//     (a snapshot through its HEAD branch);
//   - an escaped origin URL with an optional visit number,
//     "https%3A%2F%2Fgithub.com%2Fo%2Fr[/<visit>]": the latest (or given)
//     visit's snapshot, resolved as above.
//
// The resolved ref is the 40-hex id of the directory or revision; the
// build slug is "swh-" and the spec's SWHID or origin URL. It is safe for
// concurrent use.
type SWH struct {
	cfg ArchiveConfig
	api *apiClient
	web string // the archive's web site, for ref URLs
}

var _ Provider = (*SWH)(nil)

// NewSWH returns the swh provider; m and log may be nil.
func NewSWH(cfg ArchiveConfig, m *Metrics, log *slog.Logger) *SWH {
	cfg = cfg.withDefaults()
	web := "https://archive.softwareheritage.org"
	if u, err := url.Parse(cfg.SWHAPIURL); err == nil {
		web = u.Scheme + "://" + u.Host
	}
	return &SWH{cfg: cfg, api: newAPIClient("Software Heritage", upstreamSWH, cfg, nil, m, log), web: web}
}

// Prefix returns "swh".
func (s *SWH) Prefix() string { return "swh" }

// Display returns the swh entry of /api/repoproviders.
func (s *SWH) Display() any {
	return newArchiveDisplay("Software Heritage", "swh", `[^/]+(/[0-9]+)?`,
		"SWHID or origin URL", "example: swh:1:dir:d198bc9d7a6bcf6db04f476d29314f157507d505", true)
}

// swhidPattern is a SWHID's core with the object types binderbuild builds.
var swhidPattern = regexp.MustCompile(`^swh:1:(dir|rev|rel|snp):([0-9a-f]{40})$`)

type swhSpec struct {
	kind, hash string // of a SWHID spec
	origin     string // decoded origin URL, for origin specs
	visit      string // visit number, "" for the latest
}

func parseSWHSpec(spec string) (swhSpec, error) {
	if err := checkSpec(spec); err != nil {
		return swhSpec{}, err
	}
	decoded, err := unescape(spec, spec)
	if err != nil {
		return swhSpec{}, err
	}
	if strings.HasPrefix(decoded, "swh:") {
		core, _, _ := strings.Cut(decoded, ";")
		m := swhidPattern.FindStringSubmatch(core)
		if m == nil {
			return swhSpec{}, userErrorf(`Unsupported SWHID "%s": expected swh:1:<dir|rev|rel|snp>:<40 hex digits>.`, core)
		}
		return swhSpec{kind: m[1], hash: m[2]}, nil
	}
	rawOrigin, visit, _ := strings.Cut(spec, "/")
	origin, err := unescape(spec, rawOrigin)
	if err != nil {
		return swhSpec{}, err
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.ContainsFunc(origin, isControl) {
		return swhSpec{}, userErrorf(`Spec is not a SWHID or "<escaped origin URL>[/<visit>]", provided: "%s".`, spec)
	}
	if visit != "" && (!isDigits(visit) || len(visit) > 18) {
		return swhSpec{}, userErrorf(`Invalid visit %q in spec "%s": expected a visit number.`, visit, spec)
	}
	return swhSpec{origin: origin, visit: visit}, nil
}

// Parse checks the spec. The build slug names the SWHID or origin.
func (s *SWH) Parse(spec string) (binderbuild.Repo, error) {
	p, err := parseSWHSpec(spec)
	if err != nil {
		return binderbuild.Repo{}, err
	}
	id := p.origin
	if p.origin == "" {
		id = "swh:1:" + p.kind + ":" + p.hash
	}
	return binderbuild.Repo{Provider: "swh", ProviderName: "Software Heritage", Spec: spec, URL: id, BuildSlug: "swh-" + id}, nil
}

// Resolve finds the directory or revision the spec stands for.
func (s *SWH) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	p, err := parseSWHSpec(repo.Spec)
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	kind, hash := p.kind, p.hash
	if p.origin != "" {
		if hash, err = s.visitSnapshot(ctx, p.origin, p.visit); err != nil {
			return binderbuild.Resolved{}, err
		}
		kind = "snp"
	}
	if kind, hash, err = s.target(ctx, kind, hash); err != nil {
		return binderbuild.Resolved{}, err
	}
	swhid := "swh:1:" + kind + ":" + hash
	repo.URL = swhid
	return binderbuild.Resolved{Repo: repo, ResolvedRef: hash, ResolvedSpec: swhid, RefURL: s.web + "/" + swhid}, nil
}

// Pinned reports whether the spec named an object or a numbered visit,
// which cannot change; an origin's latest visit moves.
func (s *SWH) Pinned(res binderbuild.Resolved) bool {
	p, err := parseSWHSpec(res.Spec)
	return err == nil && (p.origin == "" || p.visit != "")
}

// maxSWHHops bounds release and alias chains.
const maxSWHHops = 8

// target follows releases and snapshots to a directory or revision.
func (s *SWH) target(ctx context.Context, kind, hash string) (string, string, error) {
	for range maxSWHHops {
		var err error
		switch kind {
		case "dir", "rev":
			return kind, hash, nil
		case "rel":
			kind, hash, err = s.release(ctx, hash)
		case "snp":
			kind, hash, err = s.snapshotHead(ctx, hash)
		default:
			return "", "", userErrorf("Software Heritage object of type %q cannot be built.", kind)
		}
		if err != nil {
			return "", "", err
		}
	}
	return "", "", userErrorf("Software Heritage objects point to each other too many times.")
}

// swhKinds maps the API's target types to SWHID object types.
var swhKinds = map[string]string{"directory": "dir", "revision": "rev", "release": "rel", "snapshot": "snp", "content": "cnt"}

// swhTarget checks one object reference of an API answer.
func swhTarget(targetType, target string) (string, string, error) {
	kind, ok := swhKinds[targetType]
	if !ok || !isFullSHA(target) {
		return "", "", userErrorf("Software Heritage returned an invalid target (%q %q).", targetType, target)
	}
	return kind, target, nil
}

func (s *SWH) release(ctx context.Context, hash string) (string, string, error) {
	var rel struct {
		TargetType string `json:"target_type"`
		Target     string `json:"target"`
	}
	if err := s.get(ctx, "/release/"+hash+"/", &rel); err != nil {
		return "", "", err
	}
	return swhTarget(rel.TargetType, rel.Target)
}

// snapshotHead returns the target of the snapshot's HEAD branch, following
// aliases (HEAD → refs/heads/main).
func (s *SWH) snapshotHead(ctx context.Context, hash string) (string, string, error) {
	var snp struct {
		Branches map[string]*struct {
			TargetType string `json:"target_type"`
			Target     string `json:"target"`
		} `json:"branches"`
	}
	if err := s.get(ctx, "/snapshot/"+hash+"/", &snp); err != nil {
		return "", "", err
	}
	name := "HEAD"
	for range maxSWHHops {
		b := snp.Branches[name]
		if b == nil {
			return "", "", userErrorf("Software Heritage snapshot %s has no branch %q.", hash, name)
		}
		if b.TargetType != "alias" {
			return swhTarget(b.TargetType, b.Target)
		}
		name = b.Target
	}
	return "", "", userErrorf("Software Heritage snapshot %s: too many branch aliases.", hash)
}

// visitSnapshot returns the snapshot of an origin's visit (the latest with
// a snapshot when visit is "").
func (s *SWH) visitSnapshot(ctx context.Context, origin, visit string) (string, error) {
	path := "/origin/" + escapePath(origin) + "/visit/latest/?require_snapshot=true"
	if visit != "" {
		path = "/origin/" + escapePath(origin) + "/visit/" + visit + "/"
	}
	var v struct {
		Snapshot *string `json:"snapshot"`
	}
	if err := s.get(ctx, path, &v); err != nil {
		return "", err
	}
	if v.Snapshot == nil || !isFullSHA(*v.Snapshot) {
		return "", fmt.Errorf("swh origin %s visit %q has no snapshot: %w", origin, visit, binderbuild.ErrRefNotFound)
	}
	return *v.Snapshot, nil
}

// get GETs an API path; a 404 is binderbuild.ErrRefNotFound.
func (s *SWH) get(ctx context.Context, path string, v any) error {
	err := s.api.getJSON(ctx, s.cfg.SWHAPIURL+path, nil, v)
	if isStatus(err, 404) {
		return fmt.Errorf("swh %s: %w", path, binderbuild.ErrRefNotFound)
	}
	return err
}
