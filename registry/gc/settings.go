package gc

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
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

// Defaults of Settings, applied by SettingsFromEnv when a variable is unset
// or empty.
const (
	DefaultAggressive = Largest
	DefaultMinAge     = time.Hour
	DefaultWorkers    = 8
)

// Environment variables read by SettingsFromEnv. The image prefix and the
// insecure hosts are the service's own registry settings.
const (
	EnvImagePrefix    = "BINDERBUILD_IMAGE_PREFIX"
	EnvInsecureHosts  = "BINDERBUILD_REGISTRY_INSECURE_HOSTS"
	EnvMaxAge         = "BINDERBUILD_GC_MAX_AGE"
	EnvKeep           = "BINDERBUILD_GC_KEEP"
	EnvMaxTotalSize   = "BINDERBUILD_GC_MAX_TOTAL_SIZE"
	EnvAggressive     = "BINDERBUILD_GC_AGGRESSIVE"
	EnvPatterns       = "BINDERBUILD_GC_PATTERNS"
	EnvMinAge         = "BINDERBUILD_GC_MIN_AGE"
	EnvProtectRunning = "BINDERBUILD_GC_PROTECT_RUNNING"
	EnvNamespace      = "BINDERBUILD_GC_NAMESPACE"
	EnvWorkers        = "BINDERBUILD_GC_WORKERS"
	EnvDelete         = "BINDERBUILD_GC_DELETE"
	EnvSchedule       = "BINDERBUILD_GC_SCHEDULE"
)

// Settings are the policy values of one collection. The CLI (`binderbuild
// gc`), the Helm CronJob and the in-service schedule all start from
// SettingsFromEnv, so they take the same BINDERBUILD_GC_* variables. A zero
// value of a policy field switches that policy off.
type Settings struct {
	// ImagePrefix is the service's image_prefix, registry host included
	// (e.g. "registry.example.com/binder/r2d-"). Every repository of that
	// registry whose full name starts with it is collected; it may end in
	// the middle of a repository name. Lower-cased, "_" replaced by "-",
	// as image names are. Required.
	ImagePrefix string `json:"image_prefix"`
	// InsecureHosts lists registry hosts reached over plain HTTP
	// (name.Insecure). Loopback and RFC 1918 hosts use HTTP anyway.
	InsecureHosts []string `json:"insecure_hosts,omitempty"`

	// MaxAge deletes images created longer ago than this. 0: off.
	MaxAge time.Duration `json:"max_age"`
	// Keep deletes all but the newest Keep images of each repository.
	// It is a deletion policy, not a protection. 0: off.
	Keep int `json:"keep"`
	// MaxTotalSize caps the bytes under the prefix (compressed, shared
	// layers counted once): while the images left by the other policies
	// exceed it, the next image in Aggressive order is deleted. 0: off.
	MaxTotalSize int64 `json:"max_total_size"`
	// Aggressive is the order of the size cap. Default Largest.
	Aggressive Aggressive `json:"aggressive"`
	// Patterns are regular expressions (RE2, unanchored) matched against
	// "repository:tag" (registry host included); a match deletes the image.
	Patterns []string `json:"patterns,omitempty"`
	// Purge deletes every image under the prefix. It is refused unless
	// ConfirmPurge equals ImagePrefix exactly. Never read from the
	// environment.
	Purge bool `json:"purge"`
	// ConfirmPurge must repeat ImagePrefix for Purge to run.
	ConfirmPurge string `json:"-"`

	// MinAge protects images younger than this from every policy, purge
	// included. Default 1h; 0: off.
	MinAge time.Duration `json:"min_age"`
	// ProtectRunning protects images used by pods that are pending or
	// running (Config.Pods answers which).
	ProtectRunning bool `json:"protect_running"`
	// Namespace is where ProtectRunning looks for pods; "" lets the caller
	// choose (the CLI uses the kubeconfig's or the pod's namespace).
	Namespace string `json:"namespace,omitempty"`

	// Workers bounds the concurrent registry requests of listing and
	// deleting. Default 8.
	Workers int `json:"workers"`
	// Delete carries out the plan; without it a collection is a dry run.
	Delete bool `json:"delete"`
	// Schedule is the in-service schedule (cron expression, "@daily",
	// "@hourly", "@every 6h"); "" means no schedule. Only Scheduler uses it.
	Schedule string `json:"schedule,omitempty"`
}

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

// SettingsFromEnv reads Settings from BINDERBUILD_GC_* variables (and
// BINDERBUILD_IMAGE_PREFIX, BINDERBUILD_REGISTRY_INSECURE_HOSTS) through
// getenv. Unset or empty variables take the defaults. An unparsable value is
// a *SettingError naming the variable. Purge is never read from the
// environment. The result is not validated: call Validate after applying
// flags.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{
		ImagePrefix:   strings.TrimSpace(getenv(EnvImagePrefix)),
		InsecureHosts: splitList(getenv(EnvInsecureHosts)),
		Aggressive:    DefaultAggressive,
		MinAge:        DefaultMinAge,
		Workers:       DefaultWorkers,
		Patterns:      splitList(getenv(EnvPatterns)),
		Namespace:     strings.TrimSpace(getenv(EnvNamespace)),
		Schedule:      strings.TrimSpace(getenv(EnvSchedule)),
	}
	var errs []error
	set := func(name string, parse func(string) error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		if err := parse(v); err != nil {
			errs = append(errs, &SettingError{Name: name, Value: v, Err: err})
		}
	}
	set(EnvMaxAge, func(v string) (err error) { s.MaxAge, err = ParseDuration(v); return })
	set(EnvMinAge, func(v string) (err error) { s.MinAge, err = ParseDuration(v); return })
	set(EnvKeep, func(v string) (err error) { s.Keep, err = parseCount(v); return })
	set(EnvWorkers, func(v string) (err error) { s.Workers, err = parseCount(v); return })
	set(EnvMaxTotalSize, func(v string) (err error) { s.MaxTotalSize, err = ParseSize(v); return })
	set(EnvAggressive, func(v string) (err error) { s.Aggressive, err = ParseAggressive(v); return })
	set(EnvProtectRunning, func(v string) (err error) { s.ProtectRunning, err = strconv.ParseBool(v); return })
	set(EnvDelete, func(v string) (err error) { s.Delete, err = strconv.ParseBool(v); return })
	for _, p := range s.Patterns {
		if _, err := regexp.Compile(p); err != nil {
			errs = append(errs, &SettingError{Name: EnvPatterns, Value: p, Err: err})
		}
	}
	if s.Schedule != "" {
		if _, err := ParseSchedule(s.Schedule); err != nil {
			errs = append(errs, &SettingError{Name: EnvSchedule, Value: s.Schedule, Err: err})
		}
	}
	return s, errors.Join(errs...)
}

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
		return &SettingError{Name: "max-total-size", Value: strconv.FormatInt(s.MaxTotalSize, 10), Err: errors.New("negative")}
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

// durationUnit returns the length of a ParseDuration unit.
func durationUnit(u byte) (time.Duration, bool) {
	switch u {
	case 's':
		return time.Second, true
	case 'm':
		return time.Minute, true
	case 'h':
		return time.Hour, true
	case 'd':
		return 24 * time.Hour, true
	case 'w':
		return 7 * 24 * time.Hour, true
	}
	return 0, false
}

// leadingNumber splits s into a leading decimal number ("12", "1.5") and
// the rest; the number is "" when s does not start with one.
func leadingNumber(s string) (num, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 0 && i+1 < len(s) && s[i] == '.' && s[i+1] >= '0' && s[i+1] <= '9' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return s[:i], s[i:]
}

// ParseDuration parses a non-negative duration made of numbers with units
// w (7 days), d (24 hours), h, m and s, e.g. "30d", "12h", "90m", "2w",
// "1d12h", "1.5h". "0" alone means zero. A number without a unit is an
// error, so "30" is not silently 30 nanoseconds.
func ParseDuration(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	if s == "0" {
		return 0, nil
	}
	const want = "want a duration like 30d, 12h, 90m or 2w (units w, d, h, m, s)"
	if s == "" {
		return 0, errors.New(want)
	}
	var total float64
	for s != "" {
		num, rest := leadingNumber(s)
		if num == "" || rest == "" {
			return 0, errors.New(want)
		}
		unit, ok := durationUnit(rest[0])
		if !ok {
			return 0, errors.New(want)
		}
		n, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, errors.New(want)
		}
		total += n * float64(unit)
		s = rest[1:]
	}
	if total >= math.MaxInt64 {
		return 0, errors.New("duration too large")
	}
	return time.Duration(total), nil
}

// FormatDuration writes d in the largest of the units w… s ParseDuration
// reads that keeps it exact, e.g. "30d", "36h", "90m"; 0 is "0".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return d.String()
}

// sizeUnit returns the multiplier of a ParseSize unit.
func sizeUnit(u string) (int64, bool) {
	switch u {
	case "", "B":
		return 1, true
	case "k", "K", "kB", "KB":
		return 1e3, true
	case "M", "MB":
		return 1e6, true
	case "G", "GB":
		return 1e9, true
	case "T", "TB":
		return 1e12, true
	case "P", "PB":
		return 1e15, true
	case "Ki", "KiB":
		return 1 << 10, true
	case "Mi", "MiB":
		return 1 << 20, true
	case "Gi", "GiB":
		return 1 << 30, true
	case "Ti", "TiB":
		return 1 << 40, true
	case "Pi", "PiB":
		return 1 << 50, true
	}
	return 0, false
}

// ParseSize parses a non-negative byte count with an optional unit: decimal
// k/K, M, G, T, P (also written KB, MB, GB…: powers of 1000) or binary Ki,
// Mi, Gi, Ti, Pi (also KiB…: powers of 1024), e.g. "500Gi", "1.5T",
// "200MB", "1048576". Fractions are rounded down to whole bytes.
func ParseSize(v string) (int64, error) {
	num, unit := leadingNumber(strings.TrimSpace(v))
	if num == "" {
		return 0, errors.New("want a size like 500Gi, 1.5T or 200MB")
	}
	mult, ok := sizeUnit(strings.TrimSpace(unit))
	if !ok {
		return 0, fmt.Errorf("unknown unit %q; want B, K, M, G, T, P (powers of 1000) or Ki, Mi, Gi, Ti, Pi (powers of 1024)", unit)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("bad number %q", num)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, errors.New("size too large")
	}
	return n.Int64(), nil
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

// parseCount parses a non-negative integer.
func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, errors.New("want a whole number")
	}
	if n < 0 {
		return 0, errors.New("must not be negative")
	}
	return n, nil
}

// splitList splits a comma list, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ParseSchedule parses a BINDERBUILD_GC_SCHEDULE value: a standard 5-field
// cron expression ("0 3 * * *"), optionally led by "CRON_TZ=Area/City ", or
// a descriptor: "@yearly", "@monthly", "@weekly", "@daily", "@hourly",
// "@every <Go duration>" (e.g. "@every 6h").
func ParseSchedule(spec string) (sched cron.Schedule, err error) {
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
