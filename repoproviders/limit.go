package repoproviders

import (
	"context"
	"errors"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/flight"
)

// LimitConfig bounds the upstream lookups (git ls-remote, GitHub and GitLab
// API calls) of all providers together. The zero value uses the defaults.
type LimitConfig struct {
	// MaxConcurrentLookups is the number of lookups that may run at once
	// over all providers. Default 16.
	MaxConcurrentLookups int `split_words:"true" default:"16" desc:"upstream ref lookups (git, GitHub, GitLab) running at once over all providers"`
	// LookupQueueTimeout is how long a lookup waits for a free slot before
	// it fails. Default 10s.
	LookupQueueTimeout time.Duration `split_words:"true" default:"10s" desc:"how long a ref lookup waits for a free slot before failing"`
}

// Limiter is the bound of LimitConfig, shared by the providers it wraps.
type Limiter struct {
	l *flight.Limiter
}

// NewLimiter returns the limiter of cfg.
func NewLimiter(cfg LimitConfig) *Limiter {
	n := orDefault(cfg.MaxConcurrentLookups, 16)
	return &Limiter{l: flight.NewLimiter(n, orDefault(cfg.LookupQueueTimeout, 10*time.Second))}
}

// errTooManyLookups is the error of a lookup that found no free slot.
var errTooManyLookups = &userError{
	msg: "too many repository lookups are in progress, please try again in a minute",
	err: flight.ErrBusy,
}

// LimitedProvider is a Provider whose Resolve calls run under a Limiter.
// Build it with Limited.
type LimitedProvider struct {
	next Provider
	lim  *flight.Limiter // nil: no limit
}

var _ Provider = LimitedProvider{}

// Limited wraps next so that its Resolve waits for a slot of lim (nil: no
// limit) and fails, with an error shown to users, when none frees up in
// time. Put it inside Cached, so that cache hits take no slot and a
// coalesced lookup takes one.
func Limited(next Provider, lim *Limiter) LimitedProvider {
	p := LimitedProvider{next: next}
	if lim != nil {
		p.lim = lim.l
	}
	return p
}

// Prefix returns the wrapped provider's prefix.
func (p LimitedProvider) Prefix() string { return p.next.Prefix() }

// Parse calls the wrapped provider's Parse.
func (p LimitedProvider) Parse(spec string) (binderbuild.Repo, error) { return p.next.Parse(spec) }

// Display returns the wrapped provider's Display.
func (p LimitedProvider) Display() any { return p.next.Display() }

// Pinned asks the wrapped provider, when it is a Pinner, so that Cached
// sees through the limit.
func (p LimitedProvider) Pinned(res binderbuild.Resolved) bool {
	pinner, ok := p.next.(Pinner)
	return ok && pinner.Pinned(res)
}

// Resolve calls the wrapped Resolve once a slot is free.
func (p LimitedProvider) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	release, err := p.lim.Acquire(ctx)
	if errors.Is(err, flight.ErrBusy) {
		return binderbuild.Resolved{}, errTooManyLookups
	}
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	defer release()
	return p.next.Resolve(ctx, repo)
}
