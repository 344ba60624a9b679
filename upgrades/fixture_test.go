package upgrades

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/internal/testgit"
	"github.com/binderbuild/binderbuild/internal/testgithub"
	"github.com/binderbuild/binderbuild/internal/testregistry"
)

// deployRepo is the deployment repository of the tests.
const deployRepo = "my-org/my-hub-deploy"

// token is the bot's GitHub token; the fake knows it as user binder-bot.
const token = "ghp_upgradesbot"

const chartYAML = `apiVersion: v2
name: my-hub
version: 0.1.0
dependencies:
  # The hub itself.
  - name: jupyterhub
    version: "3.3.8"
    repository: https://hub.jupyter.org/helm-chart/
  - {name: binderhub-service, version: 0.1.0, repository: https://2i2c.org/binderhub-service/}
`

// fixture is a deployment repository on a real git server, the real
// registry with repo2docker- and dind-like tags, a Helm repository indexed
// by the real helm, and the fake GitHub API.
type fixture struct {
	git      *testgit.Server
	gh       *testgithub.Server
	registry *testregistry.Registry
	helmURL  string
	helmDir  string
	values   string // config/prod.values.yaml as committed
	config   string // binderbuild-upgrades.yaml as committed
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{}
	f.git = testgit.StartWith(t, testgit.Options{PushAuth: func(u, p string) bool { return f.gh.CanPush(u, p) }})
	f.gh = testgithub.Start(t, f.git)
	f.gh.Tokens[token] = "binder-bot"
	f.registry = testregistry.Start(t, testregistry.Options{})
	f.pushTags(t, "jupyterhub/repo2docker", "2024.03.0", "2024.07.0", "2024.07.0-52.g5a3f2b1", "2024.08.0", "2024.10.0-beta.1", "latest", "main")
	f.pushTags(t, "library/docker", "27", "27-dind", "27.3.1-dind", "27.4.0-dind", "27.10.0-dind", "27.11.0-dind-rootless", "28.0.0-rc.1-dind", "27.10.0", "latest", "dind")
	f.helmDir = t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(f.helmDir)))
	t.Cleanup(srv.Close)
	f.helmURL = srv.URL + "/"
	f.addCharts(t, "jupyterhub", map[string]string{"3.3.8": "4.1.5", "4.0.0": "5.2.1", "4.1.0-0.dev.git.6957.h1a2b3c4": "5.3.0.dev"})

	values, err := os.ReadFile("testdata/prod.values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f.values = string(values)
	f.config = f.configYAML(nil)
	f.git.Repo(t, deployRepo, map[string]string{
		DefaultConfigFile:         f.config,
		"config/prod.values.yaml": f.values,
		"chart/Chart.yaml":        chartYAML,
	})
	f.git.AllowPush(t, deployRepo)
	f.gh.AddRepo(deployRepo, "main")
	f.gh.AddRepo("jupyterhub/repo2docker", "main") // the source, for compare
	f.gh.Compares["jupyterhub/repo2docker 2024.07.0...2024.08.0"] = []testgithub.Commit{
		{SHA: "1111111", Message: "Merge pull request #1380 from someone/fix-conda\n\nPin conda to 24.7"},
		{SHA: "2222222", Message: "Update the docs"},
		{SHA: "3333333", Message: "Support Python 3.13 (#1391)"},
	}
	return f
}

// configYAML is the bot's configuration; extra lines go under the
// repo2docker dependency.
func (f *fixture) configYAML(extra []string) string {
	r2d := []string{
		"  - name: repo2docker",
		"    file: config/prod.values.yaml",
		"    path: binderhub-service.config.KubernetesBuildExecutor.build_image",
		"    source: " + f.registry.Host() + "/jupyterhub/repo2docker",
		"    github: jupyterhub/repo2docker",
		"    changelog: https://repo2docker.readthedocs.io/en/latest/changelog.html",
		"    labels: [dependencies, repo2docker]",
		"    reviewers: [alice]",
		"    team_reviewers: [binder-team]",
	}
	return strings.Join(append(append([]string{
		"repository: " + deployRepo,
		"base: main",
		"dependencies:",
	}, append(r2d, extra...)...),
		"  - name: docker-dind",
		"    file: config/prod.values.yaml",
		"    path: binderhub-service.dockerApi.image.tag",
		"    source: "+f.registry.Host()+"/library/docker",
		`    tags: '^\d+\.\d+\.\d+-dind$'`,
		"  - name: jupyterhub",
		"    file: chart/Chart.yaml",
		"    chart: jupyterhub",
		"    source: "+f.helmURL,
		"    prerelease: false",
	), "\n") + "\n"
}

// pushTags pushes one small image to repo of the registry under tags.
func (f *fixture) pushTags(t *testing.T, repo string, tags ...string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		ref, err := name.ParseReference(f.registry.Host() + "/" + repo + ":" + tag)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
}

// addCharts packages chart versions (version → appVersion) with the real
// helm and indexes the repository with `helm repo index`.
func (f *fixture) addCharts(t *testing.T, chart string, versions map[string]string) {
	t.Helper()
	for v, app := range versions {
		dir := filepath.Join(t.TempDir(), chart)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		meta := fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\nappVersion: %q\n", chart, v, app)
		if err := os.WriteFile(filepath.Join(dir, "Chart.yaml"), []byte(meta), 0o644); err != nil {
			t.Fatal(err)
		}
		helm(t, "package", dir, "--destination", f.helmDir)
	}
	helm(t, "repo", "index", f.helmDir, "--url", f.helmURL)
}

// helm runs the helm that `make helm-bin` builds, with private folders.
func helm(t *testing.T, args ...string) {
	t.Helper()
	dir, err := testcluster.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("helm is missing (%v): run `make helm-bin`", err)
	}
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
}

// bot returns a bot authenticated with tok.
func (f *fixture) bot(t *testing.T, tok string, apply bool) *Bot {
	t.Helper()
	gh, err := NewGitHub(t.Context(), f.gh.URL, GitHubAuth{Token: tok}, deployRepo, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return &Bot{Sources: Sources{Keychain: authn.NewMultiKeychain()}, GitHub: gh, Apply: apply}
}

// run clones the deployment repository, reads its configuration and runs
// the bot.
func (f *fixture) run(t *testing.T, b *Bot) Report {
	t.Helper()
	co, err := b.GitHub.Clone(t.Context(), deployRepo, "")
	if err != nil {
		t.Fatal(err)
	}
	data, err := co.ReadFile(DefaultConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	return b.Run(t.Context(), cfg, co)
}

// branchFile returns path as committed on branch of repo on the git server.
func (f *fixture) branchFile(t *testing.T, repo, branch, path string) string {
	t.Helper()
	out, err := f.git.Output(repo, "show", "refs/heads/"+branch+":"+path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// branches lists the branches of repo on the git server.
func (f *fixture) branches(t *testing.T, repo string) []string {
	t.Helper()
	out := f.git.Git(t, repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/")
	return strings.Fields(out)
}
