package helm

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// keyRow is a row of binderbuild/keys.yaml (its header explains the fields).
type keyRow struct {
	Keys    []string `json:"keys"`
	Action  string   `json:"action"`
	Note    string   `json:"note"`
	Refuse  any      `json:"refuse"`
	Pattern string   `json:"pattern"`
	Refusal string   `json:"refusal"`
	With    string   `json:"with"`
	SHA256  string   `json:"sha256"`
}

func readKeyTable(t testing.TB) []keyRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []keyRow
	if err := yaml.UnmarshalStrict(b, &rows); err != nil {
		t.Fatalf("keys.yaml: %v", err)
	}
	return rows
}

// TestKeyTable checks the table itself: valid rows, each key once, and a
// row for every key of binderhub-service's values schema and every
// configurable BinderHub trait (testdata/corpus names their sources).
func TestKeyTable(t *testing.T) {
	t.Parallel()
	rows := readKeyTable(t)
	seen := map[string]bool{}
	for _, r := range rows {
		if !slices.Contains([]string{"honoured", "translated", "refused"}, r.Action) || r.Note == "" || len(r.Keys) == 0 {
			t.Errorf("row %v: want keys, a note and action honoured, translated or refused", r.Keys)
		}
		switch fmt.Sprint(r.Refuse) {
		case "<nil>", "set", "true", "false":
		case "match":
			if r.Pattern == "" {
				t.Errorf("row %v: refuse match needs a pattern", r.Keys)
			}
		default:
			t.Errorf("row %v: refuse %v, want set, true, false or match", r.Keys, r.Refuse)
		}
		if r.Action != "refused" && r.Refuse != nil && r.Refusal == "" {
			t.Errorf("row %v: an %s row that refuses needs a refusal message", r.Keys, r.Action)
		}
		for _, k := range r.Keys {
			if seen[k] {
				t.Errorf("key %s is in two rows", k)
			}
			seen[k] = true
		}
	}
	for _, k := range schemaKeys(t, filepath.Join(corpusDir, "binderhub-service", "values.schema.yaml")) {
		if !covered(seen, k) {
			t.Errorf("binderhub-service's values schema has %s; keys.yaml has no row for it", k)
		}
	}
	f, err := os.Open(filepath.Join(corpusDir, "binderhub-traits.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" && !strings.HasPrefix(k, "#") && !covered(seen, k) {
			t.Errorf("BinderHub has the trait %s; keys.yaml has no row for it", k)
		}
	}
}

// covered is whether key or one of its parents has a row.
func covered(keys map[string]bool, key string) bool {
	for k := key; k != ""; {
		if keys[k] {
			return true
		}
		i := strings.LastIndex(k, ".")
		if i < 0 {
			return false
		}
		k = k[:i]
	}
	return false
}

// schemaKeys lists the leaf keys of a JSON schema's properties (objects
// with free-form or pattern properties are leaves).
func schemaKeys(t testing.TB, path string) []string {
	t.Helper()
	schema := readValues(t, path)
	var keys []string
	var walk func(prefix string, s map[string]any)
	walk = func(prefix string, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		if len(props) == 0 || s["patternProperties"] != nil {
			keys = append(keys, prefix)
			return
		}
		for name, p := range props {
			sub, _ := p.(map[string]any)
			walk(strings.TrimPrefix(prefix+"."+name, "."), sub)
		}
	}
	walk("", schema)
	sort.Strings(keys)
	return keys
}

const (
	tableStart = "<!-- keys table: generated from keys.yaml by go test ./helm -update; do not edit -->"
	tableEnd   = "<!-- end of keys table -->"
)

// TestMigrationTable checks that the README's migration table is the one
// keys.yaml gives (go test ./helm -update rewrites it).
func TestMigrationTable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(chartDir, "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	before, rest, ok1 := strings.Cut(readme, tableStart)
	_, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the markers %q and %q", path, tableStart, tableEnd)
	}
	want := before + tableStart + "\n" + migrationTable(readKeyTable(t)) + tableEnd + after
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if d := firstDifference(want, readme); d != "" {
		t.Errorf("%s's migration table differs from keys.yaml (go test ./helm -update rewrites it): %s", path, d)
	}
}

// migrationTable renders the rows as Markdown, with the counts first.
func migrationTable(rows []keyRow) string {
	count := map[string]int{}
	conditional := 0
	var b strings.Builder
	b.WriteString("| Key | binderbuild | What happens |\n|---|---|---|\n")
	for _, r := range rows {
		count[r.Action] += len(r.Keys)
		what := r.Note
		if r.Action != "refused" && r.Refuse != nil {
			conditional += len(r.Keys)
			what += fmt.Sprintf(". **Refused** when %s%s: %s", refuseCondition(r), withCondition(r), r.Refusal)
		} else if r.Action == "refused" && r.With != "" {
			what = fmt.Sprintf("when %s%s: %s", refuseCondition(r), withCondition(r), r.Note)
		} else if r.Action == "refused" && r.Refuse != nil && r.Refuse != "set" {
			what = fmt.Sprintf("when %s: %s", refuseCondition(r), r.Note)
		}
		keys := make([]string, len(r.Keys))
		for i, k := range r.Keys {
			keys[i] = "`" + k + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", strings.Join(keys, ", "), r.Action, mdCell(what))
	}
	head := fmt.Sprintf("%d keys: %d honoured, %d translated, %d refused; %d of the honoured or translated ones are refused with some values.\n\n",
		count["honoured"]+count["translated"]+count["refused"], count["honoured"], count["translated"], count["refused"], conditional)
	return head + b.String()
}

// mdCell escapes text for a table cell: | everywhere, < outside code
// spans (where Markdown would read <Class> as HTML).
func mdCell(text string) string {
	parts := strings.Split(strings.ReplaceAll(text, "|", `\|`), "`")
	for i := 0; i < len(parts); i += 2 {
		parts[i] = strings.ReplaceAll(parts[i], "<", "&lt;")
	}
	return strings.Join(parts, "`")
}

func refuseCondition(r keyRow) string {
	switch fmt.Sprint(r.Refuse) {
	case "true", "false":
		return fmt.Sprintf("`%v`", r.Refuse)
	case "match":
		return fmt.Sprintf("it matches `%s`", r.Pattern)
	default:
		return "set"
	}
}

// withCondition is the with condition of a row, as text.
func withCondition(r keyRow) string {
	key, value, ok := strings.Cut(r.With, "=")
	switch {
	case r.With == "":
		return ""
	case ok:
		return fmt.Sprintf(" and `%s` is `%s`", key, value)
	default:
		return fmt.Sprintf(" and `%s` is set", key)
	}
}
