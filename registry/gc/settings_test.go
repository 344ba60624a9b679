package gc

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

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
		{"", 0, true},
		{"30", 0, true},
		{"-1d", 0, true},
		{"1y", 0, true},
		{"d", 0, true},
		{"1.d", 0, true},
		{"1d 2h", 0, true},
		{"1ms", 0, true},
		{"99999999999w", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
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

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"500Gi", 500 << 30, false},
		{"500GiB", 500 << 30, false},
		{"1.5T", 1_500_000_000_000, false},
		{"1.5Ti", 3 << 39, false},
		{"200MB", 200_000_000, false},
		{"200M", 200_000_000, false},
		{"10k", 10_000, false},
		{"10K", 10_000, false},
		{"10Ki", 10_240, false},
		{"1048576", 1 << 20, false},
		{"123B", 123, false},
		{"0", 0, false},
		{"2 Gi", 2 << 30, false},
		{"0.5B", 0, false},
		{"", 0, true},
		{"Gi", 0, true},
		{"-1Gi", 0, true},
		{"1.5.3G", 0, true},
		{"10Gb", 0, true},
		{"10gi", 0, true},
		{"1X", 0, true},
		{"9999999Pi", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{
		0: "0 B", 512: "512 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB", 500 << 30: "500.0 GiB", 2 << 40: "2.0 TiB",
	} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSettingsFromEnv(t *testing.T) {
	t.Parallel()
	defaults := Settings{Aggressive: Largest, MinAge: time.Hour, Workers: 8}
	tests := []struct {
		name    string
		env     map[string]string
		want    Settings
		wantErr []string // variables named by the error
	}{
		{name: "defaults", want: defaults},
		{
			name: "everything",
			env: map[string]string{
				EnvImagePrefix:    "reg.example/binder/r2d-",
				EnvInsecureHosts:  "reg.example, 10.0.0.1:5000",
				EnvMaxAge:         "30d",
				EnvKeep:           "3",
				EnvMaxTotalSize:   "500Gi",
				EnvAggressive:     "oldest",
				EnvPatterns:       "ci-2drepos, ^x",
				EnvMinAge:         "2h",
				EnvProtectRunning: "true",
				EnvNamespace:      "binder",
				EnvWorkers:        "16",
				EnvDelete:         "1",
				EnvSchedule:       "@every 6h",
			},
			want: Settings{
				ImagePrefix: "reg.example/binder/r2d-", InsecureHosts: []string{"reg.example", "10.0.0.1:5000"},
				MaxAge: 30 * 24 * time.Hour, Keep: 3, MaxTotalSize: 500 << 30, Aggressive: Oldest,
				Patterns: []string{"ci-2drepos", "^x"}, MinAge: 2 * time.Hour, ProtectRunning: true,
				Namespace: "binder", Workers: 16, Delete: true, Schedule: "@every 6h",
			},
		},
		{name: "min age off", env: map[string]string{EnvMinAge: "0"}, want: Settings{Aggressive: Largest, Workers: 8}},
		{
			name: "bad values",
			env: map[string]string{
				EnvMaxAge: "30", EnvKeep: "-1", EnvMaxTotalSize: "lots", EnvAggressive: "smallest",
				EnvPatterns: "(", EnvDelete: "yes please", EnvSchedule: "sometimes",
			},
			wantErr: []string{EnvMaxAge, EnvKeep, EnvMaxTotalSize, EnvAggressive, EnvPatterns, EnvDelete, EnvSchedule},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SettingsFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != nil {
				for _, name := range tc.wantErr {
					if !mentionsSetting(err, name) {
						t.Errorf("SettingsFromEnv() error %v does not name %s", err, name)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("SettingsFromEnv() = %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("SettingsFromEnv() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// mentionsSetting reports whether err joins a *SettingError for name.
func mentionsSetting(err error, name string) bool {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return false
	}
	for _, e := range joined.Unwrap() {
		var se *SettingError
		if errors.As(e, &se) && se.Name == name {
			return true
		}
	}
	return false
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Settings{ImagePrefix: "reg.example/binder/r2d-"}
	tests := []struct {
		name    string
		mod     func(*Settings)
		wantErr bool
	}{
		{"valid", func(*Settings) {}, false},
		{"no prefix", func(s *Settings) { s.ImagePrefix = "" }, true},
		{"bad prefix", func(s *Settings) { s.ImagePrefix = "reg.example/UPPER CASE" }, true},
		{"negative keep", func(s *Settings) { s.Keep = -1 }, true},
		{"negative size", func(s *Settings) { s.MaxTotalSize = -1 }, true},
		{"bad aggressive", func(s *Settings) { s.Aggressive = "newest" }, true},
		{"bad pattern", func(s *Settings) { s.Patterns = []string{"[a"} }, true},
		{"purge unconfirmed", func(s *Settings) { s.Purge = true }, true},
		{"purge confirmed", func(s *Settings) { s.Purge, s.ConfirmPurge = true, s.ImagePrefix }, false},
	}
	for _, tc := range tests {
		s := ok
		tc.mod(&s)
		if err := s.Validate(); (err != nil) != tc.wantErr {
			t.Errorf("%s: Validate() = %v, want error %v", tc.name, err, tc.wantErr)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix, insecure       string
		registry, path, scheme string
	}{
		{"registry.example.com/binder/r2d-", "", "registry.example.com", "binder/r2d-", "https"},
		{"Registry.Example.com/Binder_X/", "", "registry.example.com", "binder-x/", "https"},
		{"127.0.0.1:5000/r2d-", "", "127.0.0.1:5000", "r2d-", "http"},
		{"reg.internal:5000/b/", "reg.internal:5000", "reg.internal:5000", "b/", "http"},
		{"myorg/binder-", "", "index.docker.io", "myorg/binder-", "https"},
		{"europe-west10-docker.pkg.dev/proj/repo/binder", "", "europe-west10-docker.pkg.dev", "proj/repo/binder", "https"},
	}
	for _, tc := range tests {
		got, err := parsePrefix(tc.prefix, []string{tc.insecure})
		if err != nil {
			t.Errorf("parsePrefix(%q) = %v", tc.prefix, err)
			continue
		}
		if got.registry.RegistryStr() != tc.registry || got.path != tc.path || got.registry.Scheme() != tc.scheme {
			t.Errorf("parsePrefix(%q) = %s://%s %q, want %s://%s %q", tc.prefix, got.registry.Scheme(), got.registry.RegistryStr(), got.path, tc.scheme, tc.registry, tc.path)
		}
	}
}

// A time zone without fields made cron's parser panic; it is a setting
// error like any other.
func TestParseScheduleTimeZoneOnly(t *testing.T) {
	for _, spec := range []string{"CRON_TZ=Europe/Berlin", "TZ=UTC", " TZ=UTC "} {
		if _, err := ParseSchedule(spec); err == nil {
			t.Errorf("ParseSchedule(%q) = nil error, want one", spec)
		}
	}
	if _, err := ParseSchedule("CRON_TZ=Europe/Berlin 0 3 * * *"); err != nil {
		t.Errorf("a time zone with fields: %v", err)
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "@daily", "@every 6h", "CRON_TZ=Europe/Berlin", "TZ=UTC 0 3 * * *", "* * * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		sched, err := ParseSchedule(spec)
		if (sched == nil) != (err != nil) {
			t.Errorf("ParseSchedule(%q) = %v, %v: want a schedule or an error", spec, sched, err)
		}
	})
}
