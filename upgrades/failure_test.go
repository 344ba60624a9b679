package upgrades

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailuresNameTheDependency: each broken dependency fails with one
// message naming it, and the others still get their pull requests.
func TestFailuresNameTheDependency(t *testing.T) {
	f := newFixture(t)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<html>Service Unavailable</html>"))
	}))
	t.Cleanup(garbage.Close)
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downHost := down.Addr().String()
	down.Close()
	f.git.Commit(t, deployRepo, "Add broken files", map[string]string{"config/broken.yaml": "a: [1, 2\n"})
	hook := filepath.Join(f.git.Dir(deployRepo), "hooks", "pre-receive")
	protect := "#!/bin/sh\nwhile read old new ref; do\n  case $ref in refs/heads/binderbuild-upgrades/protected) exit 1;; esac\ndone\n"
	if err := os.WriteFile(hook, []byte(protect), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte(f.configYAML(nil) + strings.Join([]string{
		"  - {name: malformed, file: config/broken.yaml, path: a, source: " + f.registry.Host() + "/library/docker}",
		"  - {name: no-path, file: config/prod.values.yaml, path: binderhub-service.nope.tag, source: " + f.registry.Host() + "/library/docker}",
		"  - {name: no-file, file: config/missing.yaml, path: a, source: " + f.registry.Host() + "/library/docker}",
		"  - {name: registry-down, file: config/prod.values.yaml, path: binderhub-service.dockerApi.image.tag, source: " + downHost + "/library/docker}",
		"  - {name: helm-garbage, file: chart/Chart.yaml, chart: jupyterhub, source: " + garbage.URL + "}",
		"  - {name: protected, file: config/prod.values.yaml, path: binderhub-service.dockerApi.image.tag, source: " + f.registry.Host() + "/library/docker}",
	}, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	bot := f.bot(t, token, true)
	co, err := bot.GitHub.Clone(t.Context(), deployRepo, "")
	if err != nil {
		t.Fatal(err)
	}
	rep := bot.Run(t.Context(), cfg, co)
	wantSummary(t, rep,
		"repo2docker opened 2024.07.0→2024.08.0",
		"docker-dind opened 27.3.1-dind→27.10.0-dind",
		"jupyterhub opened 3.3.8→4.0.0",
		"malformed failed: malformed: config/broken.yaml: malformed YAML: yaml: line 1: did not find expected ',' or ']'",
		"no-path failed: no-path: config/prod.values.yaml: path not found: binderhub-service.nope.tag",
		"no-file failed: no-file: read config/missing.yaml: file not found",
		"registry-down failed: registry-down: list tags of "+downHost+"/library/docker: Get \"https://"+downHost+"/v2/\": dial tcp "+downHost+": connect: connection refused; Get \"http://"+downHost+"/v2/\": dial tcp "+downHost+": connect: connection refused",
		"helm-garbage failed: helm-garbage: helm repository: "+garbage.URL+"/index.yaml is not a Helm index: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `<html>S...` into upgrades.helmIndex",
		"protected failed 27.3.1-dind→27.10.0-dind: protected: push branch binderbuild-upgrades/protected: command error on refs/heads/binderbuild-upgrades/protected: pre-receive hook declined",
	)
	if n := rep.Failures(); n != 6 {
		t.Errorf("%d failures, want 6", n)
	}
}

// TestNoPullRequestPermission: a token that may push but not open pull
// requests fails each dependency with GitHub's 403 explained.
func TestNoPullRequestPermission(t *testing.T) {
	f := newFixture(t)
	f.gh.Tokens["ghp_readonly"] = "reader"
	f.gh.ReadOnly["ghp_readonly"] = true
	rep := f.run(t, f.bot(t, "ghp_readonly", true))
	const denied = "open pull request: the token lacks permission (403) for POST /repos/my-org/my-hub-deploy/pulls: Resource not accessible by personal access token"
	wantSummary(t, rep,
		"repo2docker failed 2024.07.0→2024.08.0: repo2docker: "+denied,
		"docker-dind failed 27.3.1-dind→27.10.0-dind: docker-dind: "+denied,
		"jupyterhub failed 3.3.8→4.0.0: jupyterhub: "+denied)
}

// TestOCIChart lists a chart's versions as OCI tags (pushed with the real
// `helm push`) and reads appVersions from the charts' config blobs.
func TestOCIChart(t *testing.T) {
	f := newFixture(t)
	tgzs, err := filepath.Glob(filepath.Join(f.helmDir, "jupyterhub-*.tgz"))
	if err != nil || len(tgzs) != 3 {
		t.Fatalf("packaged charts: %q, %v", tgzs, err)
	}
	for _, tgz := range tgzs {
		helm(t, "push", tgz, "oci://"+f.registry.Host()+"/charts", "--plain-http")
	}
	cfg, err := ParseConfig([]byte("repository: " + deployRepo + "\ndependencies:\n" +
		"  - {name: jupyterhub, file: chart/Chart.yaml, chart: jupyterhub, source: oci://" + f.registry.Host() + "/charts}\n"))
	if err != nil {
		t.Fatal(err)
	}
	bot := f.bot(t, token, false)
	co, err := bot.GitHub.Clone(t.Context(), deployRepo, "")
	if err != nil {
		t.Fatal(err)
	}
	rep := bot.Run(t.Context(), cfg, co)
	wantSummary(t, rep, "jupyterhub would update 3.3.8→4.0.0")
	if r := rep.Results[0]; r.OldAppVersion != "4.1.5" || r.NewAppVersion != "5.2.1" {
		t.Errorf("appVersion %q → %q, want 4.1.5 → 5.2.1", r.OldAppVersion, r.NewAppVersion)
	}
}
