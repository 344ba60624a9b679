package gc

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild/internal/schedule"
	"github.com/binderbuild/binderbuild/internal/units"
)

// Aggressive is the order in which the size cap picks images once the
// registry is over Settings.MaxTotalSize.
type Aggressive string

// Orders of the size cap.
const (
	// Largest deletes the largest images (compressed size) first.
	Largest Aggressive = "largest"
	// Oldest deletes the oldest images (config creation time) first.
	Oldest Aggressive = "oldest"
)

// DefaultAggressive is the order of the size cap when Settings.Aggressive
// is empty.
const DefaultAggressive = Largest

// EnvImagePrefix names the image prefix in errors: gc takes the service's
// own BINDERBUILD_IMAGE_PREFIX.
const EnvImagePrefix = "BINDERBUILD_IMAGE_PREFIX"

// Settings are the policy values of one collection. The CLI (`binderbuild
// gc`), the Helm CronJob and the in-service schedule all read them with
// cmd's settings loader, as BINDERBUILD_GC_* variables named after the
// fields (the tags are envconfig's; default and desc feed the docs). A zero
// value of a policy field switches that policy off.
type Settings struct {
	// ImagePrefix is the service's image_prefix, registry host included
	// (e.g. "registry.example.com/binder/r2d-"). Every repository of that
	// registry whose full name starts with it is collected; it may end in
	// the middle of a repository name. Lower-cased, "_" replaced by "-",
	// as image names are. Required; the caller copies the service's.
	ImagePrefix string `json:"image_prefix" ignored:"true"`
	// InsecureHosts lists registry hosts reached over plain HTTP
	// (name.Insecure). Loopback and RFC 1918 hosts use HTTP anyway. The
	// caller copies the service's.
	InsecureHosts []string `json:"insecure_hosts,omitempty" ignored:"true"`

	// MaxAge deletes images created longer ago than this. 0: off.
	MaxAge time.Duration `json:"max_age" split_words:"true" default:"0" desc:"registry gc: delete images created longer ago than this, e.g. 30d, 2w, 12h (0: off)"`
	// Keep deletes all but the newest Keep images of each repository.
	// It is a deletion policy, not a protection. 0: off.
	Keep int `json:"keep" default:"0" desc:"registry gc: delete all but the newest N images of each repository, a policy, not a protection (0: off)"`
	// MaxTotalSize caps the bytes under the prefix (compressed, shared
	// layers counted once): while the images left by the other policies
	// exceed it, the next image in Aggressive order is deleted. 0: off.
	MaxTotalSize units.Bytes `json:"max_total_size" split_words:"true" default:"0" desc:"registry gc: a budget for the images under the prefix (compressed, shared layers once), as a Kubernetes quantity (500Gi, 1T); while over it, images go in BINDERBUILD_GC_AGGRESSIVE order (0: off)"`
	// Aggressive is the order of the size cap. Default Largest.
	Aggressive Aggressive `json:"aggressive" default:"largest" desc:"registry gc: order of the size cap, largest or oldest images first"`
	// Patterns are regular expressions (RE2, unanchored) matched against
	// "repository:tag" (registry host included); a match deletes the image.
	Patterns Patterns `json:"patterns,omitempty" desc:"registry gc: comma list of regular expressions (RE2, unanchored) matched against repository:tag, registry host included; a match deletes the image"`
	// Purge deletes every image under the prefix. It is refused unless
	// ConfirmPurge equals ImagePrefix exactly. Never read from the
	// environment.
	Purge bool `json:"purge" ignored:"true"`
	// ConfirmPurge must repeat ImagePrefix for Purge to run.
	ConfirmPurge string `json:"-" ignored:"true"`

	// MinAge protects images younger than this from every policy, purge
	// included. Default 1h; 0: off.
	MinAge time.Duration `json:"min_age" split_words:"true" default:"1h" desc:"registry gc: never delete images younger than this, nor images of unknown age (0: off)"`
	// ProtectRunning protects images used by pods that are pending or
	// running (Config.Pods answers which).
	ProtectRunning bool `json:"protect_running" split_words:"true" default:"false" desc:"registry gc: never delete images that pending or running pods use (needs the Kubernetes API)"`
	// Namespace is where ProtectRunning looks for pods; "" lets the caller
	// choose (the CLI uses the kubeconfig's or the pod's namespace).
	Namespace string `json:"namespace,omitempty" desc:"registry gc: namespace of the pods of BINDERBUILD_GC_PROTECT_RUNNING, for binderbuild gc (default: the kubeconfig's or the pod's); the schedule of serve looks in the build namespace"`

	// Workers bounds the concurrent registry requests of listing and
	// deleting. Default 8.
	Workers int `json:"workers" default:"8" desc:"registry gc: concurrent registry requests"`
	// Delete carries out the plan; without it a collection is a dry run.
	Delete bool `json:"delete" default:"false" desc:"registry gc: delete for real; false: a dry run that only reports"`
	// Schedule is the in-service schedule (see schedule.Parse); "" means
	// no schedule. Only Scheduler uses it.
	Schedule Schedule `json:"schedule,omitempty" desc:"registry gc schedule of binderbuild serve: a cron expression (0 3 * * *), @daily, @hourly or @every 6h; empty: none (the chart's CronJob runs binderbuild gc instead)"`
}

// Patterns are regular expressions. As a setting they are a comma list:
// spaces around items are trimmed and blank items dropped (an empty
// expression would match every image), and each must compile.
type Patterns []string

// UnmarshalText parses a comma list of regular expressions.
func (p *Patterns) UnmarshalText(text []byte) error {
	var out Patterns
	for _, item := range strings.Split(string(text), ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		if _, err := regexp.Compile(item); err != nil {
			return err
		}
		out = append(out, item)
	}
	*p = out
	return nil
}

// UnmarshalJSON reads a JSON list, as Settings are written.
func (p *Patterns) UnmarshalJSON(b []byte) error {
	return json.Unmarshal(b, (*[]string)(p))
}

// Schedule is a gc schedule, parsed as the upgrade bot's (schedule.Spec).
type Schedule = schedule.Spec

// SettingError is an invalid setting. Name is the variable or flag that
// held Value.
type SettingError struct {
	Name  string
	Value string
	Err   error
}

// Error names the setting, its value and the problem.
func (e *SettingError) Error() string {
	return fmt.Sprintf("invalid %s=%q: %v", e.Name, e.Value, e.Err)
}

// Unwrap returns the underlying problem.
func (e *SettingError) Unwrap() error { return e.Err }

// ErrPurgeNotConfirmed means Settings.Purge was set without
// Settings.ConfirmPurge equal to the image prefix.
var ErrPurgeNotConfirmed = errors.New("purge not confirmed: the confirmation must equal the image prefix exactly")

// Validate checks s before a collection: a prefix is set and names a
// repository, counts are not negative, patterns compile, and purge is
// confirmed (an error wrapping ErrPurgeNotConfirmed otherwise).
func (s Settings) Validate() error {
	if _, err := parsePrefix(s.ImagePrefix, s.InsecureHosts); err != nil {
		return err
	}
	switch {
	case s.MaxAge < 0:
		return &SettingError{Name: "max-age", Value: s.MaxAge.String(), Err: errors.New("negative")}
	case s.MinAge < 0:
		return &SettingError{Name: "min-age", Value: s.MinAge.String(), Err: errors.New("negative")}
	case s.Keep < 0:
		return &SettingError{Name: "keep", Value: strconv.Itoa(s.Keep), Err: errors.New("negative")}
	case s.MaxTotalSize < 0:
		return &SettingError{Name: "max-total-size", Value: s.MaxTotalSize.String(), Err: errors.New("negative")}
	case s.Workers < 0:
		return &SettingError{Name: "workers", Value: strconv.Itoa(s.Workers), Err: errors.New("negative")}
	}
	if s.Aggressive != "" {
		if _, err := ParseAggressive(string(s.Aggressive)); err != nil {
			return &SettingError{Name: "aggressive", Value: string(s.Aggressive), Err: err}
		}
	}
	for _, p := range s.Patterns {
		if _, err := regexp.Compile(p); err != nil {
			return &SettingError{Name: "pattern", Value: p, Err: err}
		}
	}
	if s.Purge && s.ConfirmPurge != s.ImagePrefix {
		return fmt.Errorf("purge of %q: %w", s.ImagePrefix, ErrPurgeNotConfirmed)
	}
	return nil
}

// ParseAggressive parses "largest" or "oldest".
func ParseAggressive(v string) (Aggressive, error) {
	switch a := Aggressive(strings.ToLower(strings.TrimSpace(v))); a {
	case Largest, Oldest:
		return a, nil
	}
	return "", fmt.Errorf("want %q or %q", Largest, Oldest)
}

// UnmarshalText parses an order as ParseAggressive does; "" is the
// default order.
func (a *Aggressive) UnmarshalText(text []byte) error {
	if strings.TrimSpace(string(text)) == "" {
		*a = ""
		return nil
	}
	v, err := ParseAggressive(string(text))
	*a = v
	return err
}

// FormatSize writes n bytes with a binary unit and one decimal, e.g.
// "512 B", "1.5 KiB", "3.0 GiB".
func FormatSize(n int64) string {
	const units = "KMGTPE"
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	i := -1
	for math.Abs(f) >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i:i+1] + "iB"
}
