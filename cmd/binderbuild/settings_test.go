package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/binderbuild/binderbuild/internal/units"
)

// TestSettingNames: every variable keeps the name envconfig gave it, so
// that deployments' settings keep working.
func TestSettingNames(t *testing.T) {
	var buf bytes.Buffer
	if err := envconfig.Usagef(envPrefix, &config{}, &buf, "{{range .}}{{usage_key .}}\n{{end}}"); err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(buf.String())
	var got []string
	for _, s := range settingsOf(envPrefix, &config{}) {
		got = append(got, s.name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("settings = %q,\nwant envconfig's %q", got, want)
	}
}

type sample struct {
	Name    string            `default:"x"`
	Count   int               `split_words:"true" default:"3"`
	Every   time.Duration     `default:"1m"`
	Hosts   []string          `split_words:"true" default:"a,b"`
	Labels  map[string]string `default:"k:v"`
	Token   string            `fallback:"OLD_TOKEN,OLDER_TOKEN"`
	Space   string            `fallback:"SPACE" default:"default"`
	Skipped string            `ignored:"true"`
	Inner   struct{ On bool }
	Ratio   float64 `default:"0.5"`
	Small   uint8   `default:"7"`
}

func TestLoadSettings(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(s sample) bool
	}{
		{"defaults", nil, func(s sample) bool {
			return s.Name == "x" && s.Count == 3 && s.Every == time.Minute && slices.Equal(s.Hosts, []string{"a", "b"}) &&
				s.Labels["k"] == "v" && s.Token == "" && s.Space == "default" && !s.Inner.On && s.Ratio == 0.5 && s.Small == 7
		}},
		{"set", map[string]string{"P_NAME": "y", "P_COUNT": "0x10", "P_EVERY": "2s", "P_HOSTS": "c", "P_LABELS": "a:b,c:d", "P_INNER_ON": "true"}, func(s sample) bool {
			return s.Name == "y" && s.Count == 16 && s.Every == 2*time.Second && slices.Equal(s.Hosts, []string{"c"}) && s.Labels["c"] == "d" && s.Inner.On
		}},
		{"set but empty keeps empty", map[string]string{"P_NAME": "", "P_HOSTS": ""}, func(s sample) bool {
			return s.Name == "" && s.Hosts != nil && len(s.Hosts) == 0
		}},
		{"fallbacks in order", map[string]string{"OLDER_TOKEN": "2", "OLD_TOKEN": "1"}, func(s sample) bool { return s.Token == "1" }},
		{"second fallback", map[string]string{"P_TOKEN": "", "OLDER_TOKEN": "2"}, func(s sample) bool { return s.Token == "2" }},
		{"own name first", map[string]string{"P_TOKEN": "0", "OLD_TOKEN": "1"}, func(s sample) bool { return s.Token == "0" }},
		{"empty fallback gives the default", map[string]string{"P_SPACE": "", "SPACE": ""}, func(s sample) bool { return s.Space == "default" }},
		{"ignored", map[string]string{"P_SKIPPED": "z"}, func(s sample) bool { return s.Skipped == "" }},
		{"days and weeks", map[string]string{"P_EVERY": "1w2d"}, func(s sample) bool { return s.Every == 9*24*time.Hour }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s sample
			if err := loadSettings("P", &s, mapLookup(tc.env)); err != nil || !tc.want(s) {
				t.Errorf("loadSettings(%v) = %+v, %v", tc.env, s, err)
			}
		})
	}
}

func TestLoadSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"P_COUNT": "many"}, `invalid P_COUNT="many": strconv.ParseInt: parsing "many": invalid syntax`},
		{map[string]string{"P_EVERY": "soon"}, `invalid P_EVERY="soon": time: invalid duration "soon"`},
		{map[string]string{"P_LABELS": "a:b:c"}, `invalid P_LABELS="a:b:c": invalid map item: "a:b:c"`},
		{map[string]string{"P_SMALL": "300"}, `invalid P_SMALL="300": strconv.ParseUint: parsing "300": value out of range`},
		{map[string]string{"P_COUNT": "010"}, `invalid P_COUNT="010": leading zero in "010" (ambiguous: 010 is octal 8 in Go syntax); write it without, or 0o10 for octal`},
		{map[string]string{"P_SMALL": "07"}, `invalid P_SMALL="07": leading zero in "07" (ambiguous: 010 is octal 8 in Go syntax); write it without, or 0o10 for octal`},
		{map[string]string{"P_INNER_ON": "maybe"}, `invalid P_INNER_ON="maybe": strconv.ParseBool: parsing "maybe": invalid syntax`},
	} {
		var s sample
		if err := loadSettings("P", &s, mapLookup(tc.env)); err == nil || err.Error() != tc.want {
			t.Errorf("loadSettings(%v) = %v, want %s", tc.env, err, tc.want)
		}
	}
}

// TestEventsFileMaxBytes: the rotation size is a Kubernetes quantity; the
// byte counts of before keep their meaning, Go's hex and octal forms are
// refused.
func TestEventsFileMaxBytes(t *testing.T) {
	for value, want := range map[string]units.Bytes{"": 100 << 20, "104857600": 100 << 20, "1Gi": 1 << 30, "500M": 500_000_000, "0": 0} {
		env := newEnv()
		if value != "" {
			env.set("BINDERBUILD_EVENTS_FILE_MAX_BYTES", value)
		}
		if cfg, err := loadConfig(env.lookup); err != nil || cfg.EventsFileMaxBytes != want {
			t.Errorf("BINDERBUILD_EVENTS_FILE_MAX_BYTES=%q: %d, %v; want %d", value, cfg.EventsFileMaxBytes, err, want)
		}
	}
	for _, value := range []string{"0x100000", "0100", "1_000", "100MB"} {
		env := newEnv()
		env.set("BINDERBUILD_EVENTS_FILE_MAX_BYTES", value)
		if _, err := loadConfig(env.lookup); err == nil || !strings.HasPrefix(err.Error(), "invalid BINDERBUILD_EVENTS_FILE_MAX_BYTES=") {
			t.Errorf("BINDERBUILD_EVENTS_FILE_MAX_BYTES=%q: %v, want an error naming it", value, err)
		}
	}
}

// TestServeHelpFallbacks: serve --help names the variables a setting falls
// back to.
func TestServeHelpFallbacks(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), []string{"serve", "--help"}, newEnv().lookup, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"unset or empty: $GITHUB_ACCESS_TOKEN", "unset or empty: $BUILD_NAMESPACE, then $NAMESPACE",
		"unset or empty: $JUPYTERHUB_API_URL", "BINDERBUILD_FALLBACK_DELAY", "10s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
}

// TestConfigFallbacks: the variables JupyterHub and binderhub-service's
// chart set still fill the settings they stand for.
func TestConfigFallbacks(t *testing.T) {
	cfg, err := loadConfig(newEnv().merge(map[string]string{
		"GITHUB_ACCESS_TOKEN": "gh", "GITLAB_ACCESS_TOKEN": "gla", "GITLAB_PRIVATE_TOKEN": "glp",
		"NAMESPACE": "ns", "PUSH_SECRET_NAME": "push", "JUPYTERHUB_API_TOKEN": "hub", "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
	}).lookup)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.GitHubConfig.AccessToken, cfg.GitLabConfig.AccessToken, cfg.PrivateToken, cfg.BuildNamespace, cfg.PushSecret, cfg.HubAPIToken, cfg.JupyterhubApiUrl}
	if want := []string{"gh", "gla", "glp", "ns", "push", "hub", "http://hub:8081/hub/api"}; !slices.Equal(got, want) {
		t.Errorf("settings from fallbacks = %q, want %q", got, want)
	}
	if cfg, err = loadConfig(newEnv().lookup); err != nil || cfg.BuildNamespace != "default" {
		t.Errorf("BuildNamespace without any variable = %q, %v; want default", cfg.BuildNamespace, err)
	}
}

// TestSettingsGolden pins every variable of serve and its default:
// deployments set them, so a rename or a new default is a decision
// (go test -update-local rewrites testdata/settings.golden).
func TestSettingsGolden(t *testing.T) {
	var b strings.Builder
	for _, s := range settingsOf(envPrefix, &config{}) {
		fmt.Fprintf(&b, "%s=%s\n", s.name, s.def)
	}
	golden(t, "settings.golden", b.String())
}

// settingsDocHeader opens docs/settings.md.
const settingsDocHeader = `# Settings of binderbuild serve

Generated from the settings' struct tags by ` + "`go test ./cmd/binderbuild -run TestSettingsDoc -update-local`" + `;
` + "`binderbuild serve --help`" + ` prints the same table. Every setting is an
environment variable (in the Helm chart: ` + "`extraEnv`" + `). Durations are Go
durations (` + "`90s`, `5m`" + `) or count days and weeks (` + "`30d`, `2w`" + `), lists are
comma-separated, sizes are Kubernetes quantities (` + "`16Gi`" + ` is 16·2³⁰ bytes, ` + "`500M`" + `
is 500·10⁶; ` + "`m`" + ` would be thousandths, so it is refused). Registry retention
(` + "`BINDERBUILD_GC_*`" + `) is also the setting of ` + "`binderbuild gc`" + ` (see its ` + "`--help`" + `).

`

// TestSettingsDoc: docs/settings.md is the table of the settings as the
// tags describe them.
func TestSettingsDoc(t *testing.T) {
	var b strings.Builder
	b.WriteString(settingsDocHeader)
	writeSettingsMarkdown(&b, envPrefix, &config{})
	path := filepath.Join("..", "..", "docs", "settings.md")
	if *localUpdate {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil || string(want) != b.String() {
		t.Errorf("%s differs from the settings' tags (%v); run go test ./cmd/binderbuild -run TestSettingsDoc -update-local", path, err)
	}
}
