package embedded_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// conformancePkg is the OCI distribution-spec conformance suite, pinned in
// go.mod as a tool.
const conformancePkg = "github.com/opencontainers/distribution-spec/conformance"

// notPassed are the suite's results that are not Pass, with the reason.
var notPassed = map[string]string{
	// DELETE of a blob answers 405, which the spec allows: blobs are
	// shared by all repositories and go by garbage collection.
	"Blob delete":        "Skip",
	"Blob delete atomic": "Skip",
	// Off in the suite's defaults (distribution-spec 1.1): features of
	// later versions, and sparse manifests, which PUT refuses on purpose.
	"Manifest put with tag params": "Disabled",
	"Sparse Manifests":             "Disabled",
	"Tag Param":                    "Disabled",
	"Tag Param sha512":             "Disabled",
}

// TestConformance runs the OCI distribution-spec conformance suite against
// the registry on loopback: pull, push (sha256 and sha512, monolithic,
// chunked, streamed, mounts, cancel), content discovery (tag lists,
// referrers) and content management (tag and manifest deletes).
func TestConformance(t *testing.T) {
	bin := buildConformance(t)
	host := serve(t, t.TempDir())
	work := t.TempDir()
	results := filepath.Join(work, "results")
	cmd := exec.CommandContext(t.Context(), bin)
	cmd.Dir = work // no oci-conformance.yaml here
	cmd.Env = append(withoutOCI(os.Environ()),
		"OCI_REGISTRY="+host,
		"OCI_TLS=disabled",
		"OCI_RESULTS_DIR="+results,
		"OCI_API_BLOBS_UPLOAD_CANCEL=true")
	out, err := cmd.CombinedOutput()
	summary := regexp.MustCompile(`(?s)OCI Conformance Result:.*?Total\.*:\s+\d+`).Find(out)
	t.Logf("%s", summary)
	if err != nil {
		t.Fatalf("conformance suite: %v\n%s", err, failures(out))
	}
	b, err := os.ReadFile(filepath.Join(results, "results.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		APIs map[string]string `json:"apis"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(b, &got); err != nil {
		t.Fatalf("results.yaml: %v", err)
	}
	if len(got.APIs) < 20 || len(got.Data) < 20 {
		t.Fatalf("results.yaml has %d API and %d data results, want 20 or more of each", len(got.APIs), len(got.Data))
	}
	for _, results := range []map[string]string{got.APIs, got.Data} {
		for name, status := range results {
			want := notPassed[name]
			if want == "" {
				want = "Pass"
			}
			if status != want {
				t.Errorf("conformance %q = %s, want %s", name, status, want)
			}
		}
	}
}

// buildConformance builds the suite with the go command running the tests.
func buildConformance(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command builds the conformance suite: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "conformance")
	cmd := exec.CommandContext(t.Context(), goCmd, "build", "-o", bin, conformancePkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", conformancePkg, err, out)
	}
	return bin
}

// withoutOCI drops the suite's settings from env, so that only the test's
// apply.
func withoutOCI(env []string) []string {
	var kept []string
	for _, e := range env {
		if !strings.HasPrefix(e, "OCI_") {
			kept = append(kept, e)
		}
	}
	return kept
}

// failures are the suite's log lines about failed tests, each cut to 300
// bytes.
func failures(out []byte) string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "failed test") {
			lines = append(lines, l[:min(len(l), 300)])
		}
	}
	return strings.Join(lines, "\n")
}
