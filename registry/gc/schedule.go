package gc

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/binderbuild/binderbuild/internal/schedule"
)

// Scheduler runs collections on a schedule inside the service. Create it
// with NewScheduler; Run blocks until its context ends.
type Scheduler struct {
	// collector runs each collection with settings.
	collector *Collector
	settings  Settings
	// schedule says when the next run is due.
	schedule cron.Schedule
	log      *slog.Logger
	// now and after are the clock; tests replace them.
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	// done, when set by tests, is called after each run.
	done func(Report, error)
	// OnDelete, when set, is called after a run that deleted images, so
	// that caches of the registry's contents forget them.
	OnDelete func()
}

// NewScheduler returns a Scheduler that runs c with s at the times of
// s.Schedule (see schedule.Parse). Purge is refused in a schedule. log may
// be nil (no logs). Settings are validated now, so a bad value fails at
// startup rather than at the first run.
func NewScheduler(c *Collector, s Settings, log *slog.Logger) (*Scheduler, error) {
	if s.Schedule == "" {
		return nil, &SettingError{Name: "schedule", Value: "", Err: errors.New("empty schedule")}
	}
	sched, err := schedule.Parse(string(s.Schedule))
	if err != nil {
		return nil, &SettingError{Name: "schedule", Value: string(s.Schedule), Err: err}
	}
	if s.Purge {
		return nil, errors.New("gc schedule: purge is only allowed from the command line")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{collector: c, settings: s, schedule: sched, log: log, now: time.Now, after: time.After}, nil
}

// Run runs a collection at every scheduled time until ctx ends, then
// returns nil. Runs never overlap: a run that lasts past the next due time
// delays it. Failures are logged (and counted by the collector's metrics);
// the schedule goes on.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		next := s.schedule.Next(s.now())
		s.log.InfoContext(ctx, "next registry garbage collection", "at", next, "dry_run", !s.settings.Delete)
		select {
		case <-ctx.Done():
			return nil
		case <-s.after(next.Sub(s.now())):
		}
		if ctx.Err() != nil {
			return nil
		}
		rep, err := s.collector.Run(ctx, s.settings)
		if err != nil {
			s.log.ErrorContext(ctx, "registry garbage collection failed", "error", err, "deleted", rep.Deleted, "failed", rep.Failed)
		} else {
			s.log.InfoContext(ctx, "registry garbage collection done", "dry_run", rep.DryRun, "images", rep.Images,
				"chosen", len(rep.Results), "deleted", rep.Deleted, "freed_bytes", rep.FreedBytes, "remaining_bytes", rep.RemainingBytes)
		}
		if rep.Deleted > 0 && s.OnDelete != nil {
			s.OnDelete()
		}
		if s.done != nil {
			s.done(rep, err)
		}
	}
}
