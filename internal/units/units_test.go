package units

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestParseBytes: every size of the old gc syntax either means the same
// number of bytes as a Kubernetes quantity or is refused with the spelling
// to use; values that could be misread are refused too.
func TestParseBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Bytes
		wantErr string // part of the error; "" means none
	}{
		// Same meaning as before.
		{"500Gi", 500 << 30, ""},
		{"1.5T", 1_500_000_000_000, ""},
		{"1.5Ti", 3 << 39, ""},
		{"200M", 200_000_000, ""},
		{"10G", 10_000_000_000, ""},
		{"10k", 10_000, ""},
		{"10Ki", 10_240, ""},
		{"1048576", 1 << 20, ""},
		{"104857600", 100 << 20, ""},
		{"0", 0, ""},
		{" 16Gi ", 16 << 30, ""},
		{"2 Gi", 2 << 30, ""},
		{"0.5k", 500, ""},
		{"1e3", 1000, ""},
		// Old units, refused with the quantity to write.
		{"10GB", 0, "write 10G"},
		{"200MB", 0, "write 200M"},
		{"10 GB", 0, "write 10G"},
		{"10K", 0, "write 10k"},
		{"10KB", 0, "write 10k"},
		{"10kB", 0, "write 10k"},
		{"500GiB", 0, "write 500Gi"},
		{"1KiB", 0, "write 1Ki"},
		{"123B", 0, "write 123"},
		// Misreadings.
		{"500m", 0, "thousandths"},
		{"1000m", 0, "thousandths"},
		{"5u", 0, "thousandths"},
		{"1.5", 0, "whole number of bytes"},
		{"0.5B", 0, "write 0.5"},
		{"010", 0, "leading zero"},
		{"0x10", 0, "Kubernetes quantity"},
		{"-1Gi", 0, "negative"},
		{"9999999Pi", 0, "too large"},
		{"", 0, "Kubernetes quantity"},
		{"Gi", 0, "Kubernetes quantity"},
		{"10Gb", 0, "Kubernetes quantity"},
		{"10gi", 0, "Kubernetes quantity"},
		{"lots", 0, "Kubernetes quantity"},
	}
	for _, tc := range tests {
		var got Bytes
		err := got.UnmarshalText([]byte(tc.in))
		switch {
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("Bytes(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("Bytes(%q) = %d, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
		}
	}
}

func TestBytesString(t *testing.T) {
	t.Parallel()
	for n, want := range map[Bytes]string{0: "0", 16 << 30: "16Gi", 100 << 20: "100Mi", 500_000_000: "500000000", 1023: "1023"} {
		if got := n.String(); got != want {
			t.Errorf("Bytes(%d).String() = %q, want %q", int64(n), got, want)
		}
		var back Bytes
		if err := back.UnmarshalText([]byte(n.String())); err != nil || back != n {
			t.Errorf("Bytes(%q) = %d, %v; want %d back", n.String(), back, err, n)
		}
	}
}

// Bytes is a plain number in JSON, as the gc report's max_total_size was.
func TestBytesJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(struct{ N Bytes }{5 << 30})
	if err != nil || string(b) != `{"N":5368709120}` {
		t.Errorf("json.Marshal = %s, %v", b, err)
	}
	var back struct{ N Bytes }
	if err := json.Unmarshal(b, &back); err != nil || back.N != 5<<30 {
		t.Errorf("json.Unmarshal(%s) = %d, %v; want %d", b, back.N, err, 5<<30)
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30d", 30 * 24 * time.Hour, false},
		{"12h", 12 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"2w", 14 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"1.5h", 90 * time.Minute, false},
		{"45s", 45 * time.Second, false},
		{" 7d ", 7 * 24 * time.Hour, false},
		{"0", 0, false},
		{"0d", 0, false},
		// Go's syntax keeps Go's meaning.
		{"1h30m", 90 * time.Minute, false},
		{"1ms", time.Millisecond, false},
		{"", 0, true},
		{"30", 0, true},
		{"-1d", 0, true},
		{"1y", 0, true},
		{"d", 0, true},
		{"1.d", 0, true},
		{"1d 2h", 0, true},
		{"99999999999w", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := ParseDuration("soon"); err == nil || err.Error() != `time: invalid duration "soon"` {
		t.Errorf(`ParseDuration("soon") = %v, want Go's error`, err)
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0", 14 * 24 * time.Hour: "2w", 30 * 24 * time.Hour: "30d", 36 * time.Hour: "36h",
		90 * time.Minute: "90m", 45 * time.Second: "45s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
