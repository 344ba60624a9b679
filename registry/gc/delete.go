package gc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Status is the outcome of one candidate in a Report.
type Status string

// Statuses of a Result.
const (
	// StatusWouldDelete: a dry run; nothing was sent.
	StatusWouldDelete Status = "would-delete"
	// StatusDeleted: the registry accepted the deletion.
	StatusDeleted Status = "deleted"
	// StatusAlreadyDeleted: the registry answered 404; a previous,
	// interrupted run (or someone else) deleted it. Counts as done.
	StatusAlreadyDeleted Status = "already-deleted"
	// StatusFailed: the deletion failed after the retries; Error says why.
	StatusFailed Status = "failed"
)

// Result is one candidate of a Report with its outcome.
type Result struct {
	Candidate
	Status Status `json:"status"`
	// Error is why the deletion failed.
	Error string `json:"error,omitempty"`
	// Attempts is the number of DELETE requests sent for the manifest.
	Attempts int `json:"attempts,omitempty"`
}

// Report is the outcome of a collection: the plan with a status for every
// image to delete. Its JSON form is what `binderbuild gc --json` prints
// (README.md documents the schema).
type Report struct {
	Registry string `json:"registry"`
	Prefix   string `json:"prefix"`
	// DryRun is true when nothing was deleted on purpose.
	DryRun bool `json:"dry_run"`
	// Settings are the policies the plan applied.
	Settings Settings `json:"settings"`
	// Started and Finished bound the run (listing included when run by
	// Collector.Run).
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Images and TotalBytes describe the registry as listed.
	Images     int   `json:"images"`
	TotalBytes int64 `json:"total_bytes"`
	// Results has one entry per image to delete, in plan order.
	Results []Result `json:"results"`
	// Protected are images a policy chose but a protection spared.
	Protected []Candidate `json:"protected"`
	// Deleted counts StatusDeleted and StatusAlreadyDeleted results;
	// Failed counts StatusFailed ones.
	Deleted int `json:"deleted"`
	Failed  int `json:"failed"`
	// FreedBytes are the bytes that no remaining image references after
	// the deletions that succeeded (in a dry run: after all of them). The
	// registry's own garbage collection reclaims them.
	FreedBytes int64 `json:"freed_bytes"`
	// RemainingBytes = TotalBytes - FreedBytes.
	RemainingBytes int64 `json:"remaining_bytes"`
	// MaxTotalSize and OverCap are the plan's.
	MaxTotalSize int64 `json:"max_total_size"`
	OverCap      bool  `json:"over_cap"`
}

// Execute carries out plan: it deletes every candidate by digest (index
// children after their index) with at most s.Workers at a time, retrying
// transient failures, or, unless s.Delete, only reports what it would
// delete. One failure never stops the others; a manifest already gone
// (404) counts as deleted, so re-running an interrupted plan is safe. When
// ctx ends, candidates not yet started fail with ctx's error. plan must
// come from an Inventory of List: deletions use the registry as List
// reached it.
func (c *Collector) Execute(ctx context.Context, plan Plan, s Settings) Report {
	start := c.now()
	rep := Report{
		Registry:     plan.Registry,
		Prefix:       plan.Prefix,
		DryRun:       !s.Delete,
		Settings:     s,
		Started:      start,
		Images:       plan.Images,
		TotalBytes:   plan.TotalBytes,
		Protected:    plan.Protected,
		MaxTotalSize: plan.MaxTotalSize,
		OverCap:      plan.OverCap,
		Results:      make([]Result, len(plan.Delete)),
	}
	for i, cand := range plan.Delete {
		rep.Results[i] = Result{Candidate: cand, Status: StatusWouldDelete}
	}
	if s.Delete && len(plan.Delete) > 0 {
		c.log.InfoContext(ctx, "deleting images", "registry", plan.Registry, "images", len(plan.Delete), "workers", max(s.Workers, 1))
		opts := c.options(ctx)
		sem := make(chan struct{}, max(s.Workers, 1))
		var wg sync.WaitGroup
		for i := range rep.Results {
			r := &rep.Results[i]
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				r.Status, r.Error = StatusFailed, fmt.Sprintf("not attempted: %v", context.Cause(ctx))
				continue
			}
			wg.Go(func() {
				defer func() { <-sem }()
				c.deleteOne(ctx, r, opts)
			})
		}
		wg.Wait()
	}
	rep.Finished = c.now()
	rep.FreedBytes, rep.RemainingBytes = plan.TotalBytes-plan.RemainingBytes, plan.RemainingBytes
	if s.Delete {
		rep.FreedBytes = freedBy(rep.Results, plan.kept)
		rep.RemainingBytes = plan.TotalBytes - rep.FreedBytes
	}
	for _, r := range rep.Results {
		switch r.Status {
		case StatusDeleted, StatusAlreadyDeleted:
			rep.Deleted++
		case StatusFailed:
			rep.Failed++
		}
	}
	return rep
}

// errNotListed fails candidates whose image did not come from List: only
// List knows whether their registry may be reached over plain HTTP.
var errNotListed = errors.New("not deleted: the image was not listed by this collector")

// deleteOne deletes r's manifest, then the children it should delete,
// and records the outcome in r.
func (c *Collector) deleteOne(ctx context.Context, r *Result, opts []remote.Option) {
	repo := r.repo
	if repo.Name() != r.Repository {
		r.Status, r.Error = StatusFailed, errNotListed.Error()
		return
	}
	gone, attempts, err := c.deleteManifest(ctx, repo.Digest(r.Digest), opts)
	r.Attempts = attempts
	if err != nil {
		r.Status, r.Error = StatusFailed, err.Error()
		c.log.WarnContext(ctx, "delete failed", "image", r.Ref(), "attempts", attempts, "error", err)
		return
	}
	r.Status = StatusDeleted
	if gone {
		r.Status = StatusAlreadyDeleted
	}
	var errs []error
	for _, child := range r.DeleteChildren {
		if _, _, err := c.deleteManifest(ctx, repo.Digest(child), opts); err != nil {
			errs = append(errs, fmt.Errorf("child manifest %s: %w", child, err))
		}
	}
	if len(errs) > 0 {
		r.Status = StatusFailed
		r.Error = fmt.Sprintf("index deleted, but not all of its manifests (the registry's untagged-manifest cleanup can remove them): %v", errors.Join(errs...))
		c.log.WarnContext(ctx, "delete of index children failed", "image", r.Ref(), "error", r.Error)
		return
	}
	c.log.DebugContext(ctx, "deleted", "image", r.Ref(), "status", r.Status)
}

// deleteManifest deletes ref with retries; gone reports a 404 (already
// deleted).
func (c *Collector) deleteManifest(ctx context.Context, ref name.Digest, opts []remote.Option) (gone bool, attempts int, err error) {
	attempts, err = c.retry(ctx, "delete "+ref.Name(), func() error {
		err := remote.Delete(ref, opts...)
		if isNotFound(err) {
			gone = true
			return nil
		}
		return err
	})
	if err != nil {
		return false, attempts, fmt.Errorf("delete %s: %w", ref.Name(), err)
	}
	return gone, attempts, nil
}

// freedBy returns the bytes of the blobs of deleted results that neither
// kept images nor failed results reference.
func freedBy(results []Result, kept map[string]int) int64 {
	still := make(map[string]bool, len(kept))
	for d := range kept {
		still[d] = true
	}
	for _, r := range results {
		if r.Status != StatusDeleted && r.Status != StatusAlreadyDeleted {
			for d := range r.Blobs {
				still[d] = true
			}
		}
	}
	seen := make(map[string]bool)
	var n int64
	for _, r := range results {
		if r.Status != StatusDeleted && r.Status != StatusAlreadyDeleted {
			continue
		}
		for d, size := range r.Blobs {
			if !still[d] && !seen[d] {
				seen[d] = true
				n += size
			}
		}
	}
	return n
}
