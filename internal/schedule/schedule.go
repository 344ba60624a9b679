// Package schedule is the schedule setting of the service's background
// jobs: registry gc and the upgrade bot.
package schedule

import (
	"errors"
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
)

// Spec is a schedule (see Parse); "" is none.
type Spec string

// UnmarshalText checks the schedule; spaces around it are trimmed.
func (s *Spec) UnmarshalText(text []byte) error {
	v := strings.TrimSpace(string(text))
	if v != "" {
		if _, err := Parse(v); err != nil {
			return err
		}
	}
	*s = Spec(v)
	return nil
}

// Parse parses a schedule: a standard 5-field cron expression
// ("0 3 * * *"), optionally led by "CRON_TZ=Area/City ", or a descriptor:
// "@yearly", "@monthly", "@weekly", "@daily", "@hourly", "@every <Go
// duration>" (e.g. "@every 6h").
func Parse(spec string) (sched cron.Schedule, err error) {
	// cron's parser panics on a time zone with no fields after it
	// ("CRON_TZ=Europe/Berlin", "TZ=UTC").
	defer func() {
		if recover() != nil {
			sched, err = nil, errors.New(`want a cron expression like "0 3 * * *", @daily, @hourly or "@every 6h", after the time zone if any`)
		}
	}()
	sched, err = cron.ParseStandard(strings.TrimSpace(spec))
	if err != nil {
		return nil, fmt.Errorf("want a cron expression like \"0 3 * * *\", @daily, @hourly or \"@every 6h\": %w", err)
	}
	return sched, nil
}
