package events

import (
	"time"
)

// Schema names and versions of the events this service emits.
const (
	LaunchSchema  = "binderhub.jupyter.org/launch"
	LaunchVersion = 6
	BuildSchema   = "binderbuild.org/build"
	BuildVersion  = 1
)

// Record is an event of one of the embedded schemas: Launch or Build.
type Record interface {
	// Schema returns the record's schema name and version.
	Schema() (name string, version int)
	// fields writes the record's fields, each string passed through clean.
	fields(o *object, clean func(string) string)
}

// Launch statuses.
const (
	LaunchSuccess = "success"
	LaunchFailure = "failure"
)

// Launch is a binderhub.jupyter.org/launch version 6 event, with upstream's
// fields in upstream's order. binderbuild emits one when a /build request
// ends: Status LaunchSuccess with the ready event, LaunchFailure with a
// failed one.
type Launch struct {
	// Provider is the provider name: GitHub, Git, GitLab, ...
	Provider string
	// Spec is the spec after the provider prefix, as requested (trailing
	// "/" removed, after the HEAD fallback).
	Spec string
	// Ref is the resolved ref; empty when resolution failed.
	Ref    string
	Status string
	// BuildToken is whether the request carried a valid build token.
	BuildToken bool
	// Origin is the deployment's normalized origin, else the Host header.
	Origin string
	// RequestOrigin is the Origin header, else Sec-Fetch-Site, else "".
	RequestOrigin string
}

// Schema returns binderhub.jupyter.org/launch, 6.
func (Launch) Schema() (string, int) { return LaunchSchema, LaunchVersion }

func (l Launch) fields(o *object, clean func(string) string) {
	o.str("provider", l.Provider)
	o.str("spec", clean(l.Spec))
	o.str("ref", clean(l.Ref))
	o.str("status", l.Status)
	o.boolean("build_token", l.BuildToken)
	o.str("origin", clean(l.Origin))
	o.str("request_origin", clean(l.RequestOrigin))
}

// BuildStep is the lifecycle step a Build event reports.
type BuildStep string

// The steps of a build.
const (
	BuildQueued    BuildStep = "queued"
	BuildStarted   BuildStep = "started"
	BuildSucceeded BuildStep = "succeeded"
	BuildFailed    BuildStep = "failed"
)

// Phases are the build phases timed by Build events and metrics, in order.
var Phases = [...]string{"waiting", "fetching", "building", "pushing"}

// Build is a binderbuild.org/build version 1 event: one step of a build's
// lifecycle (see events/schemas/build-v1.json).
type Build struct {
	Step     BuildStep
	Name     string // build and build pod name
	Provider string // provider name
	Spec     string
	Ref      string // resolved ref
	Image    string
	// CacheHit marks a request answered from the registry: one
	// BuildSucceeded event and no build.
	CacheHit bool
	// Cause is why the build ended; BuildSucceeded and BuildFailed only.
	Cause Cause
	// Queue is the time from queued to started; BuildStarted only.
	Queue time.Duration
	// Duration is the time from queued to the end; BuildSucceeded and
	// BuildFailed only.
	Duration time.Duration
	// PhaseTimes is the time spent in each phase seen, keyed by the names
	// in Phases; end events of real builds only.
	PhaseTimes map[string]time.Duration
}

// Schema returns binderbuild.org/build, 1.
func (Build) Schema() (string, int) { return BuildSchema, BuildVersion }

func (b Build) fields(o *object, clean func(string) string) {
	o.str("event", string(b.Step))
	o.str("build_name", b.Name)
	o.str("provider", b.Provider)
	o.str("spec", clean(b.Spec))
	o.str("ref", clean(b.Ref))
	o.str("image", clean(b.Image))
	o.boolean("cache_hit", b.CacheHit)
	switch b.Step {
	case BuildStarted:
		o.seconds("queue_seconds", b.Queue)
	case BuildSucceeded, BuildFailed:
		o.str("cause", string(b.Cause))
		o.seconds("duration_seconds", b.Duration)
		if b.PhaseTimes != nil {
			o.key("phase_seconds")
			var p object
			for _, name := range Phases {
				if d, ok := b.PhaseTimes[name]; ok {
					p.seconds(name, d)
				}
			}
			o.b.Write(p.bytes())
		}
	}
}
