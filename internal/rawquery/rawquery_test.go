package rawquery

import (
	"net/url"
	"testing"
)

func TestGet(t *testing.T) {
	for _, tc := range []struct{ raw, name, want string }{
		{"build_only=true", "build_only", "true"},
		{"a=1&build_only=TRUE&build_only=false", "build_only", "TRUE"},
		{"build%5Fonly=tr%75e", "build_only", "true"},
		{"build_only=%zz&build_only=ok", "build_only", "ok"},
		{"x=a+b&build_only", "x", "a b"},
		{"x=a+b&build_only", "build_only", ""},
		{"a;b=1&a=2", "a", "2"},
		{"", "a", ""},
	} {
		if got := Get(tc.raw, tc.name); got != tc.want {
			t.Errorf("Get(%q, %q) = %q, want %q", tc.raw, tc.name, got, tc.want)
		}
	}
}

func TestGetAllocatesNothingWithoutEscapes(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Get("a=1&build_only=true&b=2", "build_only") }); n != 0 {
		t.Errorf("Get allocates %v times, want 0", n)
	}
}

// Get answers as url.ParseQuery(raw).Get does.
func FuzzGet(f *testing.F) {
	for _, q := range []string{"build_only=true", "a=1&build_only=TRUE&build_only=false", "build%5Fonly=tr%75e", "build_only=%zz&build_only=ok", "x=a+b&build_only", "&&=&build_only=="} {
		f.Add(q, "build_only")
	}
	f.Add("&=v", "")
	f.Add("a;b=1&a;b=2", "a;b")
	f.Fuzz(func(t *testing.T, raw, name string) {
		values, _ := url.ParseQuery(raw)
		if got, want := Get(raw, name), values.Get(name); got != want {
			t.Errorf("Get(%q, %q) = %q, want %q", raw, name, got, want)
		}
	})
}
