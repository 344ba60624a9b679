package gc

import (
	"encoding/json"
	"reflect"
	"testing"
)

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

// TestSettingTypes: the text forms of the settings that are more than a
// number keep the meaning BINDERBUILD_GC_* values had: patterns trimmed and
// blanks dropped, orders in any case, schedules checked.
func TestSettingTypes(t *testing.T) {
	t.Parallel()
	var p Patterns
	if err := p.UnmarshalText([]byte(" ci-2drepos, ,^x ,")); err != nil || !reflect.DeepEqual(p, Patterns{"ci-2drepos", "^x"}) {
		t.Errorf("Patterns = %q, %v; want [ci-2drepos ^x]", p, err)
	}
	if err := p.UnmarshalText([]byte("ok,(")); err == nil {
		t.Errorf("Patterns with an invalid expression = %q, nil error", p)
	}
	if err := json.Unmarshal([]byte(`["a, b"]`), &p); err != nil || !reflect.DeepEqual(p, Patterns{"a, b"}) {
		t.Errorf("Patterns from JSON = %q, %v; want one item", p, err)
	}
	var a Aggressive
	for in, want := range map[string]Aggressive{"OLDEST": Oldest, " largest ": Largest, "": ""} {
		if err := a.UnmarshalText([]byte(in)); err != nil || a != want {
			t.Errorf("Aggressive(%q) = %q, %v; want %q", in, a, err, want)
		}
	}
	if err := a.UnmarshalText([]byte("smallest")); err == nil {
		t.Errorf("Aggressive(smallest) = %q, nil error", a)
	}
	var s Schedule
	for in, want := range map[string]Schedule{" @every 6h ": "@every 6h", "": "", "0 3 * * *": "0 3 * * *"} {
		if err := s.UnmarshalText([]byte(in)); err != nil || s != want {
			t.Errorf("Schedule(%q) = %q, %v; want %q", in, s, err, want)
		}
	}
	for _, in := range []string{"sometimes", "CRON_TZ=Europe/Berlin"} {
		if err := s.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("Schedule(%q) = %q, nil error", in, s)
		}
	}
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
