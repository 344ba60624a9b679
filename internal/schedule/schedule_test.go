package schedule

import "testing"

// A time zone without fields made cron's parser panic; it is a setting
// error like any other.
func TestParseTimeZoneOnly(t *testing.T) {
	for _, spec := range []string{"CRON_TZ=Europe/Berlin", "TZ=UTC", " TZ=UTC "} {
		if _, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) = nil error, want one", spec)
		}
		var s Spec
		if err := s.UnmarshalText([]byte(spec)); err == nil {
			t.Errorf("Spec.UnmarshalText(%q) = nil error, want one", spec)
		}
	}
	if _, err := Parse("CRON_TZ=Europe/Berlin 0 3 * * *"); err != nil {
		t.Errorf("a time zone with fields: %v", err)
	}
}

func TestSpec(t *testing.T) {
	for text, want := range map[string]Spec{"": "", "  ": "", " @every 6h ": "@every 6h", "0 3 * * *": "0 3 * * *"} {
		var s Spec
		if err := s.UnmarshalText([]byte(text)); err != nil || s != want {
			t.Errorf("Spec.UnmarshalText(%q) = %q, %v; want %q", text, s, err, want)
		}
	}
	var s Spec
	want := `want a cron expression like "0 3 * * *", @daily, @hourly or "@every 6h": expected exactly 5 fields, found 1: [sometimes]`
	if err := s.UnmarshalText([]byte("sometimes")); err == nil || err.Error() != want {
		t.Errorf("Spec.UnmarshalText(sometimes) = %v, want %s", err, want)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "@daily", "@every 6h", "CRON_TZ=Europe/Berlin", "TZ=UTC 0 3 * * *", "* * * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		sched, err := Parse(spec)
		if (sched == nil) != (err != nil) {
			t.Errorf("Parse(%q) = %v, %v: want a schedule or an error", spec, sched, err)
		}
	})
}
