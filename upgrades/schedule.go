package upgrades

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/binderbuild/binderbuild/internal/schedule"
)

// Scheduler runs upgrades on a schedule inside the service. Create it with
// NewScheduler; Run blocks until its context ends.
type Scheduler struct {
	settings Settings
	// schedule says when the next run is due.
	schedule cron.Schedule
	log      *slog.Logger
	// now and after are the clock; tests replace them.
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	// done, when set by tests, is called after each run.
	done func(Report, error)
}

// NewScheduler returns a Scheduler running s at the times of s.Schedule
// (a cron expression, "@daily", "@every 6h"). Settings are validated now,
// so a bad value fails at startup rather than at the first run. The
// in-service schedule needs Repo: the service has no checkout.
func NewScheduler(s Settings, log *slog.Logger) (*Scheduler, error) {
	sched, err := schedule.Parse(string(s.Schedule))
	if err != nil {
		return nil, err
	}
	if s.Repo == "" {
		return nil, errors.New("BINDERBUILD_UPGRADES_SCHEDULE needs BINDERBUILD_UPGRADES_REPO (owner/name of the deployment repository)")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{settings: s, schedule: sched, log: log, now: time.Now, after: time.After}, nil
}

// Run runs the upgrades at every scheduled time until ctx ends, then
// returns nil. Runs never overlap; failures are logged and the schedule
// goes on.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		next := s.schedule.Next(s.now())
		s.log.InfoContext(ctx, "next upgrades run", "at", next, "repository", s.settings.Repo, "dry_run", !s.settings.Apply)
		select {
		case <-ctx.Done():
			return nil
		case <-s.after(next.Sub(s.now())):
		}
		if ctx.Err() != nil { // the service stopped as the run came due
			return nil
		}
		rep, err := Execute(ctx, s.settings, nil, s.log)
		switch {
		case err != nil:
			s.log.ErrorContext(ctx, "upgrades run failed", "repository", s.settings.Repo, "error", err)
		case rep.Failures() > 0:
			for _, r := range rep.Results {
				if r.Status == Failed {
					s.log.ErrorContext(ctx, "upgrade failed", "dependency", r.Name, "error", r.Error)
				}
			}
		}
		if s.done != nil {
			s.done(rep, err)
		}
	}
}
