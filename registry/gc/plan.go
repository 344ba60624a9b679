package gc

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/binderbuild/binderbuild/internal/units"
)

// Policy and protection names, as they appear in Reason.Policy.
const (
	PolicyPurge    = "purge"
	PolicyMaxAge   = "max-age"
	PolicyKeep     = "keep"
	PolicyPattern  = "pattern"
	PolicySizeCap  = "max-total-size"
	ProtectMinAge  = "min-age"
	ProtectRunning = "running"
)

// Reason is one policy that chose an image, or one protection that spared
// it.
type Reason struct {
	// Policy is one of the Policy* or Protect* names.
	Policy string `json:"policy"`
	// Detail explains it for this image, e.g. "created 45d ago, over 30d".
	Detail string `json:"detail"`
}

// String returns "policy: detail".
func (r Reason) String() string { return r.Policy + ": " + r.Detail }

// Candidate is an image some policy chose.
type Candidate struct {
	Image
	// Reasons lists every policy that chose the image.
	Reasons []Reason `json:"reasons"`
	// Protections lists why it is kept anyway; empty for images to delete.
	Protections []Reason `json:"protections,omitempty"`
	// DeleteChildren are the child manifests of an index that no kept image
	// uses; they are deleted after the index.
	DeleteChildren []string `json:"delete_children,omitempty"`
}

// Plan is what a collection would delete and why.
type Plan struct {
	// Registry and Prefix are the inventory's.
	Registry string `json:"registry"`
	Prefix   string `json:"prefix"`
	// Now is the time ages were measured at.
	Now time.Time `json:"now"`
	// Images and TotalBytes describe the registry before the plan
	// (shared blobs counted once).
	Images     int   `json:"images"`
	TotalBytes int64 `json:"total_bytes"`
	// Delete are the images to delete, in deletion order (the size cap's
	// picks last, in its order).
	Delete []Candidate `json:"delete"`
	// Protected are images a policy chose but a protection spares.
	Protected []Candidate `json:"protected"`
	// FreedBytes are the bytes no kept image references once Delete is
	// done: what the registry's garbage collection can reclaim.
	FreedBytes int64 `json:"freed_bytes"`
	// RemainingBytes = TotalBytes - FreedBytes.
	RemainingBytes int64 `json:"remaining_bytes"`
	// MaxTotalSize is the cap (0: none); OverCap says whether the kept
	// images still exceed it (protected images are never deleted for it).
	MaxTotalSize int64 `json:"max_total_size"`
	OverCap      bool  `json:"over_cap"`

	// kept counts, per blob, the kept images that reference it.
	kept map[string]int
}

// NewPlan applies the policies of s to inv at time now. running holds the
// image references of running pods (nil when not protecting them). Every
// policy that applies to an image is listed among its reasons; protections
// (s.MinAge, running pods) veto all policies, purge included.
//
//   - Purge chooses every image (s.ConfirmPurge must equal the prefix).
//   - MaxAge chooses images created more than MaxAge before now.
//   - Keep chooses all but the newest Keep images of each repository.
//   - Patterns choose images one of whose "repository:tag" matches.
//   - MaxTotalSize then chooses, among the images still kept and not
//     protected, the largest (or oldest) first until the kept images fit.
//
// An image without a known creation time counts as the newest: MaxAge
// never chooses it, Keep keeps it first, and MinAge (when set) protects it.
func NewPlan(inv Inventory, s Settings, running map[string]bool, now time.Time) (Plan, error) {
	if s.Purge && s.ConfirmPurge != s.ImagePrefix {
		return Plan{}, fmt.Errorf("purge of %q: %w", s.ImagePrefix, ErrPurgeNotConfirmed)
	}
	patterns, err := compilePatterns(s.Patterns)
	if err != nil {
		return Plan{}, err
	}
	p := &planner{inv: inv, s: s, now: now,
		reasons: make([][]Reason, len(inv.Images)), protections: make([][]Reason, len(inv.Images))}
	p.choose(patterns)
	p.protect(runningSet(running))
	p.keepNewest()
	p.countKept()
	p.capSize()
	return p.plan(), nil
}

// compilePatterns compiles Settings.Patterns.
func compilePatterns(patterns []string) ([]*regexp.Regexp, error) {
	res := make([]*regexp.Regexp, 0, len(patterns))
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, &SettingError{Name: "pattern", Value: p, Err: err}
		}
		res = append(res, re)
	}
	return res, nil
}

// planner is the state of one NewPlan; slices are indexed like inv.Images.
type planner struct {
	inv Inventory
	s   Settings
	now time.Time
	// reasons and protections are the policies that chose each image and
	// the protections that spare it.
	reasons, protections [][]Reason
	// deleted marks the images to delete.
	deleted []bool
	// kept counts, per blob, the kept images that reference it; remaining
	// is the size of those blobs.
	kept      map[string]int
	remaining int64
	// capOrder are the images the size cap chose, in its order.
	capOrder []int
}

// choose applies purge, MaxAge and the patterns.
func (p *planner) choose(patterns []*regexp.Regexp) {
	s := p.s
	for i, img := range p.inv.Images {
		age := p.now.Sub(img.Created)
		if s.Purge {
			p.reasons[i] = append(p.reasons[i], Reason{PolicyPurge, "everything under " + s.ImagePrefix})
		}
		if s.MaxAge > 0 && !img.Created.IsZero() && age > s.MaxAge {
			p.reasons[i] = append(p.reasons[i], Reason{PolicyMaxAge, fmt.Sprintf("created %s ago, over %s", FormatAge(age), units.FormatDuration(s.MaxAge))})
		}
		for _, re := range patterns {
			if tag, ok := matchTag(re, img); ok {
				p.reasons[i] = append(p.reasons[i], Reason{PolicyPattern, fmt.Sprintf("%s:%s matches %q", shortRepo(img.Repository), tag, re.String())})
			}
		}
	}
}

// protect applies MinAge and the running pods.
func (p *planner) protect(run runSet) {
	minAge := p.s.MinAge
	for i, img := range p.inv.Images {
		age := p.now.Sub(img.Created)
		switch {
		case minAge <= 0:
		case img.Created.IsZero():
			p.protections[i] = append(p.protections[i], Reason{ProtectMinAge, "creation time unknown"})
		case age < minAge:
			p.protections[i] = append(p.protections[i], Reason{ProtectMinAge, fmt.Sprintf("created %s ago, under %s", FormatAge(age), units.FormatDuration(minAge))})
		}
		if ref, ok := run.uses(img); ok {
			p.protections[i] = append(p.protections[i], Reason{ProtectRunning, "used by a running pod (" + ref + ")"})
		}
	}
}

// keepNewest applies Keep: all but the newest Keep of each repository.
func (p *planner) keepNewest() {
	keep := p.s.Keep
	if keep <= 0 {
		return
	}
	byRepo := make(map[string][]int)
	for i, img := range p.inv.Images {
		byRepo[img.Repository] = append(byRepo[img.Repository], i)
	}
	for _, idx := range byRepo {
		slices.SortFunc(idx, func(a, b int) int { return newestFirst(p.inv.Images[a], p.inv.Images[b]) })
		for rank, i := range idx {
			if rank >= keep {
				p.reasons[i] = append(p.reasons[i], Reason{PolicyKeep, fmt.Sprintf("%s newest of %d in its repository, keep %d", ordinal(rank+1), len(idx), keep)})
			}
		}
	}
}

// countKept marks the images chosen and not protected as deleted and
// counts the blobs of the rest.
func (p *planner) countKept() {
	p.deleted = make([]bool, len(p.inv.Images))
	p.kept = make(map[string]int)
	for i, img := range p.inv.Images {
		if len(p.reasons[i]) > 0 && len(p.protections[i]) == 0 {
			p.deleted[i] = true
			continue
		}
		for d := range img.Blobs {
			p.kept[d]++
		}
	}
	sizes := blobSizes(p.inv.Images)
	for d := range p.kept {
		p.remaining += sizes[d]
	}
}

// capSize applies MaxTotalSize: while the kept images exceed it, it
// chooses the largest (or oldest) kept image; protected ones stay.
func (p *planner) capSize() {
	limit := int64(p.s.MaxTotalSize)
	if limit <= 0 || p.remaining <= limit {
		return
	}
	images := p.inv.Images
	var order []int
	for i := range images {
		if !p.deleted[i] {
			order = append(order, i)
		}
	}
	aggr := cmp.Or(p.s.Aggressive, DefaultAggressive)
	slices.SortFunc(order, func(a, b int) int {
		x, y := images[a], images[b]
		if aggr == Oldest {
			return cmp.Or(-newestFirst(x, y), cmp.Compare(y.Size, x.Size), strings.Compare(x.Ref(), y.Ref()))
		}
		return cmp.Or(cmp.Compare(y.Size, x.Size), -newestFirst(x, y), strings.Compare(x.Ref(), y.Ref()))
	})
	sizes := blobSizes(images)
	for _, i := range order {
		if p.remaining <= limit {
			break
		}
		r := Reason{PolicySizeCap, fmt.Sprintf("%s kept, over the cap of %s; %s first", FormatSize(p.remaining), FormatSize(limit), aggr)}
		p.reasons[i] = append(p.reasons[i], r)
		if len(p.protections[i]) > 0 {
			continue
		}
		p.deleted[i] = true
		p.capOrder = append(p.capOrder, i)
		for d := range images[i].Blobs {
			if p.kept[d]--; p.kept[d] == 0 {
				delete(p.kept, d)
				p.remaining -= sizes[d]
			}
		}
	}
}

// plan assembles the Plan: deletions in inventory order, the size cap's
// picks last in its order, then the protected images.
func (p *planner) plan() Plan {
	total := unionSize(p.inv.Images)
	plan := Plan{
		Registry:       p.inv.Registry,
		Prefix:         p.inv.Prefix,
		Now:            p.now,
		Images:         len(p.inv.Images),
		TotalBytes:     total,
		FreedBytes:     total - p.remaining,
		RemainingBytes: p.remaining,
		MaxTotalSize:   int64(p.s.MaxTotalSize),
		OverCap:        p.s.MaxTotalSize > 0 && p.remaining > int64(p.s.MaxTotalSize),
		kept:           p.kept,
	}
	inCap := make(map[int]bool, len(p.capOrder))
	for _, i := range p.capOrder {
		inCap[i] = true
	}
	keptManifests := p.keptManifests()
	for i := range p.inv.Images {
		switch {
		case p.deleted[i] && !inCap[i]:
			plan.Delete = append(plan.Delete, p.candidate(i, keptManifests))
		case len(p.reasons[i]) > 0 && len(p.protections[i]) > 0:
			plan.Protected = append(plan.Protected, p.candidate(i, keptManifests))
		}
	}
	for _, i := range p.capOrder {
		plan.Delete = append(plan.Delete, p.candidate(i, keptManifests))
	}
	return plan
}

// keptManifests are the "repository@digest" of kept images and of their
// index children.
func (p *planner) keptManifests() map[string]bool {
	m := make(map[string]bool)
	for i, img := range p.inv.Images {
		if p.deleted[i] {
			continue
		}
		m[img.Repository+"@"+img.Digest] = true
		for _, c := range img.Children {
			m[img.Repository+"@"+c] = true
		}
	}
	return m
}

// candidate is image i with its reasons; a deleted index also lists the
// children no kept image uses.
func (p *planner) candidate(i int, keptManifests map[string]bool) Candidate {
	c := Candidate{Image: p.inv.Images[i], Reasons: p.reasons[i], Protections: p.protections[i]}
	if p.deleted[i] {
		for _, child := range c.Children {
			if !keptManifests[c.Repository+"@"+child] {
				c.DeleteChildren = append(c.DeleteChildren, child)
			}
		}
	}
	return c
}

// newestFirst orders images newest first; unknown creation times count as
// newest; ties by reference.
func newestFirst(a, b Image) int {
	switch {
	case a.Created.IsZero() && !b.Created.IsZero():
		return -1
	case !a.Created.IsZero() && b.Created.IsZero():
		return 1
	}
	return cmp.Or(b.Created.Compare(a.Created), strings.Compare(a.Ref(), b.Ref()))
}

// blobSizes maps every blob of images to its size.
func blobSizes(images []Image) map[string]int64 {
	sizes := make(map[string]int64)
	for _, img := range images {
		for d, s := range img.Blobs {
			sizes[d] = s
		}
	}
	return sizes
}

// matchTag returns the first tag of img whose "repository:tag" matches re.
func matchTag(re *regexp.Regexp, img Image) (string, bool) {
	for _, tag := range img.Tags {
		if re.MatchString(img.Repository + ":" + tag) {
			return tag, true
		}
	}
	return "", false
}

// shortRepo drops the registry host from a repository name.
func shortRepo(repo string) string {
	if _, rest, ok := strings.Cut(repo, "/"); ok {
		return rest
	}
	return repo
}

// ordinal writes 1st, 2nd, 3rd, 4th, 11th, 21st…
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}

// FormatAge writes an age coarsely: "45d" from two days on, "5h" from one
// hour, "12m" from one minute, else "<1m". Negative ages (clock skew) are
// "0m".
func FormatAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0m"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return "<1m"
}

// runSet are the references of running pods, normalised.
type runSet map[string]string

// runningSet normalises the pods' image references to "repo:tag" and
// "repo@digest" with full repository names (index.docker.io/library/…).
func runningSet(running map[string]bool) runSet {
	set := make(runSet)
	for ref, ok := range running {
		if !ok {
			continue
		}
		r, err := name.ParseReference(ref, name.WeakValidation)
		if err != nil {
			continue
		}
		sep := ":"
		if _, isDigest := r.(name.Digest); isDigest {
			sep = "@"
		}
		set[r.Context().Name()+sep+r.Identifier()] = ref
	}
	return set
}

// uses returns the pod reference that uses img (by tag, by digest or by
// the digest of one of an index's images).
func (s runSet) uses(img Image) (string, bool) {
	if len(s) == 0 {
		return "", false
	}
	keys := []string{img.Repository + "@" + img.Digest}
	for _, t := range img.Tags {
		keys = append(keys, img.Repository+":"+t)
	}
	for _, c := range img.Children {
		keys = append(keys, img.Repository+"@"+c)
	}
	for _, k := range keys {
		if ref, ok := s[k]; ok {
			return ref, true
		}
	}
	return "", false
}
