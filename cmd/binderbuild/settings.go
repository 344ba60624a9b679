package main

import (
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/binderbuild/binderbuild/internal/units"
)

// lookupFunc reads one environment variable; ok is false when it is unset.
// serve passes os.LookupEnv, tests a map.
type lookupFunc func(name string) (value string, ok bool)

// mapLookup reads variables from env.
func mapLookup(env map[string]string) lookupFunc {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// setting is one variable of a settings struct. The struct tags are
// envconfig's (envconfig, split_words, default, desc, ignored; names as
// envconfig v1.4.0 derives them, without its unprefixed fallback), so that
// the packages' Config types need no import, plus fallback: a comma list of variables read in order when the variable
// is unset or empty, the names that JupyterHub and binderhub-service's chart
// set.
type setting struct {
	name      string
	fallbacks []string
	def, desc string
	field     reflect.Value
}

// wordRE and acronymRE split a field name into words as envconfig's
// split_words does: GithubApiUrl → GITHUB_API_URL, RefCacheTTL →
// REF_CACHE_TTL.
var (
	wordRE    = regexp.MustCompile("([^A-Z]+|[A-Z]+[^A-Z]+|[A-Z]+)")
	acronymRE = regexp.MustCompile("([A-Z]+)([A-Z][^A-Z]+)")
)

// settingsOf lists the variables of the struct spec points to: embedded
// structs without a prefix of their own, named ones under their name.
func settingsOf(prefix string, spec any) []setting {
	v := reflect.ValueOf(spec).Elem()
	var out []setting
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		if !f.CanSet() || sf.Tag.Get("ignored") == "true" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(fieldKey(sf))
		if f.Kind() == reflect.Struct && !isText(f) {
			inner := name
			if sf.Anonymous {
				inner = prefix
			}
			out = append(out, settingsOf(inner, f.Addr().Interface())...)
			continue
		}
		s := setting{name: name, def: sf.Tag.Get("default"), desc: sf.Tag.Get("desc"), field: f}
		if fb := sf.Tag.Get("fallback"); fb != "" {
			s.fallbacks = strings.Split(fb, ",")
		}
		out = append(out, s)
	}
	return out
}

func fieldKey(sf reflect.StructField) string {
	if name := sf.Tag.Get("envconfig"); name != "" {
		return name
	}
	if sf.Tag.Get("split_words") != "true" {
		return sf.Name
	}
	var words []string
	for _, w := range wordRE.FindAllString(sf.Name, -1) {
		if m := acronymRE.FindStringSubmatch(w); m != nil {
			words = append(words, m[1], m[2])
		} else {
			words = append(words, w)
		}
	}
	return strings.Join(words, "_")
}

func isText(f reflect.Value) bool {
	_, ok := f.Addr().Interface().(encoding.TextUnmarshaler)
	return ok
}

// loadSettings sets every variable of spec from lookup, or its fallbacks,
// or its default. An invalid value is an error naming the variable.
func loadSettings(prefix string, spec any, lookup lookupFunc) error {
	for _, s := range settingsOf(prefix, spec) {
		name, v, ok := s.name, "", false
		v, ok = lookup(name)
		for _, fb := range s.fallbacks {
			if ok && v != "" {
				break
			}
			name = fb
			v, ok = lookup(fb)
		}
		if !ok || (v == "" && s.fallbacks != nil) {
			if s.def == "" {
				continue
			}
			name, v = s.name, s.def
		}
		if err := setValue(s.field, v); err != nil {
			return fmt.Errorf("invalid %s=%q: %v", name, v, err)
		}
	}
	return nil
}

// setValue parses v into f as envconfig does: text unmarshalers, strings,
// booleans, numbers (integers in Go syntax: 0x10 is 16), durations, comma
// lists and comma lists of key:value pairs. Unlike envconfig, durations may
// also count days and weeks (30d, 2w; see units.ParseDuration), and an
// integer with a leading zero is refused: Go syntax reads 010 as 8, the gc
// settings once read it as 10.
func setValue(f reflect.Value, v string) error {
	if u, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(v))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(v)
	case reflect.Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if f.Type() == reflect.TypeFor[time.Duration]() {
			d, err := units.ParseDuration(v)
			if err != nil {
				return err
			}
			f.SetInt(int64(d))
			return nil
		}
		if err := checkLeadingZero(v); err != nil {
			return err
		}
		n, err := strconv.ParseInt(v, 0, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if err := checkLeadingZero(v); err != nil {
			return err
		}
		n, err := strconv.ParseUint(v, 0, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetUint(n)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(v, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetFloat(x)
	case reflect.Slice:
		return setList(f, v)
	case reflect.Map:
		return setMap(f, v)
	default:
		return fmt.Errorf("unsupported setting type %s", f.Type())
	}
	return nil
}

// checkLeadingZero refuses integers like 010 (units.HasLeadingZero).
func checkLeadingZero(v string) error {
	if units.HasLeadingZero(v) {
		return fmt.Errorf("leading zero in %q (ambiguous: 010 is octal 8 in Go syntax); write it without, or 0o10 for octal", v)
	}
	return nil
}

func setList(f reflect.Value, v string) error {
	l := reflect.MakeSlice(f.Type(), 0, 0)
	if strings.TrimSpace(v) != "" {
		for _, item := range strings.Split(v, ",") {
			e := reflect.New(f.Type().Elem()).Elem()
			if err := setValue(e, item); err != nil {
				return err
			}
			l = reflect.Append(l, e)
		}
	}
	f.Set(l)
	return nil
}

func setMap(f reflect.Value, v string) error {
	m := reflect.MakeMap(f.Type())
	if strings.TrimSpace(v) != "" {
		for _, pair := range strings.Split(v, ",") {
			kv := strings.Split(pair, ":")
			if len(kv) != 2 {
				return fmt.Errorf("invalid map item: %q", pair)
			}
			k, e := reflect.New(f.Type().Key()).Elem(), reflect.New(f.Type().Elem()).Elem()
			if err := errors.Join(setValue(k, kv[0]), setValue(e, kv[1])); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
	}
	f.Set(m)
	return nil
}

// writeSettingsMarkdown writes the settings as the Markdown table of
// docs/settings.md, which the chart's README points to.
func writeSettingsMarkdown(w io.Writer, prefix string, spec any) {
	fmt.Fprintln(w, "| Variable | Default | Meaning |")
	fmt.Fprintln(w, "|---|---|---|")
	cell := strings.NewReplacer("|", `\|`, "<", "&lt;").Replace
	for _, s := range settingsOf(prefix, spec) {
		desc := s.desc
		if s.fallbacks != nil {
			desc += "; unset or empty: `$" + strings.Join(s.fallbacks, "`, then `$") + "`"
		}
		def := ""
		if s.def != "" {
			def = "`" + s.def + "`"
		}
		fmt.Fprintf(w, "| `%s` | %s | %s |\n", s.name, def, cell(desc))
	}
}

// writeSettings prints the table of `serve --help`: every variable with
// its default, description and fallbacks.
func writeSettings(w io.Writer, prefix string, spec any) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tDESCRIPTION")
	for _, s := range settingsOf(prefix, spec) {
		desc := s.desc
		if s.fallbacks != nil {
			desc += "; unset or empty: $" + strings.Join(s.fallbacks, ", then $")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.name, s.def, desc)
	}
	_ = tw.Flush()
}
