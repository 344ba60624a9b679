// Package units parses the amounts operators write in settings and flags:
// byte sizes as Kubernetes quantities (16Gi, 500M) and durations as Go
// writes them (90s, 5m) or in days and weeks (30d, 2w).
package units

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Bytes is a number of bytes, written as a Kubernetes quantity: 16Gi (2^30
// each), 500M (10^6 each), 1048576. Its JSON is the plain number.
type Bytes int64

// oldSizeRE matches the units of the retired gc size syntax that Kubernetes
// quantities spell differently (KB, MB, KiB, B, K), so that such a value
// is refused with the spelling to use instead of a bare parse error.
var oldSizeRE = regexp.MustCompile(`^([0-9.]+)\s*(K|[kKMGTP]B|[KMGTP]iB|B)$`)

// spacedRE matches a number and a unit apart ("10 Gi"), which older
// versions read as if joined.
var spacedRE = regexp.MustCompile(`^([0-9.]+)\s+(\S+)$`)

// UnmarshalText parses a Kubernetes quantity of whole bytes. A value that
// could be misread is refused with a message saying how to write it: the
// milli, micro and nano suffixes (500m is half a byte, not 500 megabytes),
// fractions of a byte, a leading zero (010 was octal 8 in Go syntax),
// negative values, and the units KB, MB, GiB, K, B of older versions.
func (b *Bytes) UnmarshalText(text []byte) error {
	n, err := ParseBytes(string(text))
	if err != nil {
		return err
	}
	*b = n
	return nil
}

// UnmarshalJSON reads the plain number Bytes is written as in JSON.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	return json.Unmarshal(data, (*int64)(b))
}

// ParseBytes parses v as UnmarshalText does.
func ParseBytes(v string) (Bytes, error) {
	s := spacedRE.ReplaceAllString(strings.TrimSpace(v), "$1$2")
	if m := oldSizeRE.FindStringSubmatch(s); m != nil {
		return 0, fmt.Errorf("size %q: sizes are Kubernetes quantities now; write %s", v, m[1]+quantityUnit(m[2]))
	}
	if strings.HasSuffix(s, "m") || strings.HasSuffix(s, "u") || strings.HasSuffix(s, "n") {
		return 0, fmt.Errorf("size %q: m, u and n are thousandths, millionths and billionths of a byte; write M for 10^6 bytes or Mi for 2^20", v)
	}
	if HasLeadingZero(s) {
		return 0, fmt.Errorf("size %q: leading zero (ambiguous: octal in Go syntax); write it without", v)
	}
	q, err := resource.ParseQuantity(s)
	// ParseQuantity reads a bare suffix ("Gi") as zero.
	if err != nil || !strings.ContainsAny(s[:1], "+-.0123456789") {
		return 0, fmt.Errorf("size %q: want a Kubernetes quantity like 16Gi, 500M or 1048576", v)
	}
	switch {
	case q.Sign() < 0:
		return 0, fmt.Errorf("size %q is negative", v)
	case q.AsApproximateFloat64() >= math.MaxInt64:
		return 0, fmt.Errorf("size %q is too large", v)
	case q.Cmp(*resource.NewQuantity(q.Value(), resource.DecimalSI)) != 0: // Value rounds up
		return 0, fmt.Errorf("size %q is not a whole number of bytes", v)
	}
	return Bytes(q.Value()), nil
}

// HasLeadingZero reports whether the number v, after its sign, starts
// with a zero and another digit, as 010 does: Go syntax reads it as octal
// 8, where operators mean ten, so settings refuse it.
func HasLeadingZero(v string) bool {
	d := strings.TrimLeft(v, "+-")
	return len(d) > 1 && d[0] == '0' && d[1] >= '0' && d[1] <= '9'
}

// quantityUnit is the Kubernetes suffix of an old unit: KB and K are k,
// MB is M, KiB is Ki, B is none.
func quantityUnit(old string) string {
	switch old {
	case "B":
		return ""
	case "K", "kB", "KB":
		return "k"
	}
	return strings.TrimSuffix(old, "B")
}

// String writes b as a Kubernetes quantity: in binary units when exact
// (16Gi, 1536Mi), else in plain bytes.
func (b Bytes) String() string {
	return resource.NewQuantity(int64(b), resource.BinarySI).String()
}

// ParseDuration parses a duration as Go writes it (90s, 1h30m, 300ms; see
// time.ParseDuration) or with units d (24 hours) and w (7 days) among s, m
// and h: 30d, 2w, 1d12h, 1.5h. A number without a unit is an error, so 30 is
// not silently 30 nanoseconds; 0 alone is zero. Values Go reads keep Go's
// meaning.
func ParseDuration(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	} else if !strings.ContainsAny(s, "dw") {
		return 0, err
	}
	return parseDays(s)
}

// parseDays parses numbers with units w, d, h, m and s.
func parseDays(s string) (time.Duration, error) {
	const want = "want a duration like 30d, 12h, 90m or 2w (units w, d, h, m, s)"
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

// durationUnits are the units parseDays reads and FormatDuration writes,
// largest first.
var durationUnits = []struct {
	name byte
	d    time.Duration
}{{'w', 7 * 24 * time.Hour}, {'d', 24 * time.Hour}, {'h', time.Hour}, {'m', time.Minute}, {'s', time.Second}}

// durationUnit returns the length of a parseDays unit.
func durationUnit(u byte) (time.Duration, bool) {
	for _, unit := range durationUnits {
		if unit.name == u {
			return unit.d, true
		}
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

// FormatDuration writes d in the largest of the units w… s ParseDuration
// reads that keeps it exact, e.g. "30d", "36h", "90m"; 0 is "0".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	for _, u := range durationUnits {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + string(u.name)
		}
	}
	return d.String()
}
