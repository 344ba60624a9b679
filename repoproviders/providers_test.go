package repoproviders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/binderbuild/binderbuild"
)

// serverProvider is a copy of the interface the server declares for the
// providers it consumes; the checks below keep the two in step.
type serverProvider interface {
	Prefix() string
	Parse(spec string) (binderbuild.Repo, error)
	Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error)
	Display() any
}

var (
	_ serverProvider = (*GitHub)(nil)
	_ serverProvider = (*GitLab)(nil)
	_ serverProvider = (*Git)(nil)
	_ serverProvider = (*CachedProvider)(nil)
	_ serverProvider = (*Gist)(nil)
	_ serverProvider = (*Zenodo)(nil)
	_ serverProvider = (*Figshare)(nil)
	_ serverProvider = (*HydroShare)(nil)
	_ serverProvider = (*Dataverse)(nil)
	_ serverProvider = (*CKAN)(nil)
	_ serverProvider = (*SWH)(nil)

	_ Pinner = (*Zenodo)(nil)
	_ Pinner = (*Figshare)(nil)
	_ Pinner = (*CKAN)(nil)
	_ Pinner = (*SWH)(nil)
)

func TestDisplayJSON(t *testing.T) {
	tests := []struct {
		name string
		p    Provider
		want string
	}{
		{
			name: "gh",
			p:    NewGitHub(GitHubConfig{}, nil, nil, nil),
			want: `{"displayName":"GitHub","id":"gh","spec":{"validateRegex":"[^/]+/[^/]+/.+"},` +
				`"detect":{"regex":"^(https?://github.com/)?(?<repo>.*[^/])/?"},` +
				`"repo":{"label":"GitHub repository name or URL","placeholder":"example: binder-examples/requirements or https://github.com/binder-examples/requirements","urlEncode":false},` +
				`"ref":{"enabled":true,"default":"HEAD"}}`,
		},
		{
			name: "gl",
			p:    NewGitLab(GitLabConfig{}, nil, nil, nil),
			want: `{"displayName":"GitLab","id":"gl","spec":{"validateRegex":"[^/]+/.+"},` +
				`"detect":{"regex":"^(https?://gitlab.com/)?(?<repo>.*[^/])/?"},` +
				`"repo":{"label":"GitLab repository name or URL","placeholder":"example: https://gitlab.com/mosaik/examples/mosaik-tutorials-on-binder or mosaik/examples/mosaik-tutorials-on-binder","urlEncode":true},` +
				`"ref":{"enabled":true,"default":"HEAD"}}`,
		},
		{
			name: "git",
			p:    NewGit(GitConfig{}, nil, nil),
			want: `{"displayName":"Git repository","id":"git","spec":{"validateRegex":"[^/]+/.+"},` +
				`"repo":{"label":"Arbitrary git repository URL","placeholder":"example: http://git.example.com/repo","urlEncode":true},` +
				`"ref":{"enabled":true,"default":"HEAD"}}`,
		},
		{
			name: "gist",
			p:    NewGist(GistConfig{}, nil, nil),
			want: `{"displayName":"GitHub Gist","id":"gist","spec":{"validateRegex":"[^/]+/[^/]+(/[^/]+)?"},` +
				`"detect":{"regex":"^(https?://gist.github.com/)?(?<repo>.*[^/])/?"},` +
				`"repo":{"label":"Gist ID (username/gistId) or URL","placeholder":"","urlEncode":false},` +
				`"ref":{"enabled":true,"default":"HEAD"}}`,
		},
		{
			name: "zenodo",
			p:    NewZenodo(ArchiveConfig{}, nil, nil),
			want: `{"displayName":"Zenodo DOI","id":"zenodo","spec":{"validateRegex":"10\\.\\d+\\/(.)+"},` +
				`"repo":{"label":"Zenodo DOI","placeholder":"example: 10.5281/zenodo.3242074","urlEncode":false},"ref":{"enabled":false}}`,
		},
		{
			name: "figshare",
			p:    NewFigshare(ArchiveConfig{}, nil, nil),
			want: `{"displayName":"FigShare DOI","id":"figshare","spec":{"validateRegex":"10\\.\\d+\\/(.)+"},` +
				`"repo":{"label":"FigShare DOI","placeholder":"example: 10.6084/m9.figshare.9782777.v1","urlEncode":false},"ref":{"enabled":false}}`,
		},
		{
			name: "dataverse",
			p:    NewDataverse(ArchiveConfig{}, nil, nil),
			want: `{"displayName":"Dataverse DOI","id":"dataverse","spec":{"validateRegex":"10\\.\\d+\\/(.)+"},` +
				`"repo":{"label":"Dataverse DOI","placeholder":"example: 10.7910/DVN/TJCLKP","urlEncode":false},"ref":{"enabled":false}}`,
		},
		{
			name: "hydroshare",
			p:    NewHydroShare(ArchiveConfig{}, nil, nil),
			want: `{"displayName":"Hydroshare resource","id":"hydroshare","spec":{"validateRegex":"[^/]+"},` +
				`"repo":{"label":"Hydroshare resource id","placeholder":"example: 8f7c2f0341ef4180b0dbe97f59130756","urlEncode":true},"ref":{"enabled":false}}`,
		},
		{
			name: "ckan",
			p:    NewCKAN(ArchiveConfig{}, nil, nil),
			want: `{"displayName":"CKAN dataset","id":"ckan","spec":{"validateRegex":"[^/]+"},` +
				`"repo":{"label":"CKAN dataset URL","placeholder":"https://demo.ckan.org/dataset/my-sample-dataset-001","urlEncode":true},"ref":{"enabled":false}}`,
		},
		{
			name: "swh",
			p:    NewSWH(ArchiveConfig{}, nil, nil),
			want: `{"displayName":"Software Heritage","id":"swh","spec":{"validateRegex":"[^/]+(/[0-9]+)?"},` +
				`"repo":{"label":"SWHID or origin URL","placeholder":"example: swh:1:dir:d198bc9d7a6bcf6db04f476d29314f157507d505","urlEncode":true},"ref":{"enabled":false}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(tc.p.Display()); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(buf.String()); got != tc.want {
				t.Errorf("Display() = %s\nwant        %s", got, tc.want)
			}
			if got := tc.p.Prefix(); got != tc.name {
				t.Errorf("Prefix() = %q, want %q", got, tc.name)
			}
		})
	}
}

// parseErrorCase is a spec a provider must refuse with exactly want.
type parseErrorCase struct {
	spec string
	want string
}

func checkParseErrors(t *testing.T, p Provider, tests []parseErrorCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			repo, err := p.Parse(tc.spec)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error %q", tc.spec, repo, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("Parse(%q) error = %q, want %q", tc.spec, err, tc.want)
			}
		})
	}
}

func TestSpecLimits(t *testing.T) {
	long := "a/b/" + strings.Repeat("c", MaxSpecLength)
	tests := []struct {
		p      Provider
		badUTF string // a spec whose ref decodes to invalid UTF-8
	}{
		{p: NewGitHub(GitHubConfig{}, nil, nil, nil), badUTF: "a/b/c%ff"},
		{p: NewGitLab(GitLabConfig{}, nil, nil, nil), badUTF: "a%2Fb/c%ff"},
		{p: NewGit(GitConfig{}, nil, nil), badUTF: "https%3A%2F%2Fexample.org%2Fr/c%ff"},
	}
	for _, tc := range tests {
		t.Run(tc.p.Prefix(), func(t *testing.T) {
			checkParseErrors(t, tc.p, []parseErrorCase{
				{spec: long, want: "Spec is too long (4100 bytes, the limit is 4096)"},
				{spec: "a/b/\xff", want: `Spec "a/b/\xff" is not valid UTF-8.`},
				{spec: tc.badUTF, want: `Spec "` + tc.badUTF + `" is not valid UTF-8 after percent-decoding.`},
			})
		})
	}
}

// newTestMetrics returns metrics on a fresh pedantic registry.
func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	return NewMetrics(reg), reg
}

// histogramCount returns the sample count of the histogram series name
// with the given label values.
func histogramCount(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(labels)
}

// logBuffer is a concurrency-safe log destination for tests.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestLogger logs everything, debug included, as text into the buffer.
func newTestLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, binderbuild.ErrRefNotFound) {
		t.Errorf("%s error = %v, want ErrRefNotFound", what, err)
	}
}
