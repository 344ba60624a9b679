package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"

	"github.com/binderbuild/binderbuild/internal/testdocker"
	"github.com/binderbuild/binderbuild/internal/testgit"
	"github.com/binderbuild/binderbuild/internal/testgithub"
	"github.com/binderbuild/binderbuild/internal/testlog"
	"github.com/binderbuild/binderbuild/internal/testregistry"
	"github.com/binderbuild/binderbuild/upgrades"
)

// failingRepo2docker is the "new" build image's repo2docker: it fails every
// build, as a broken release would.
const failingRepo2docker = `#!/bin/sh
printf '{"message": "Picked Git content provider.\\n"}\n'
printf '{"message": "ImportError: cannot import name conda_env\\n", "phase": "failed"}\n'
exit 1
`

// TestUpgradesVerifyFailingCandidate runs `binderbuild upgrades --apply
// --verify` against a real binderbuild service (local executor, real
// dockerd): the deployed fake repo2docker builds the canary, the candidate
// fails it, so the pull request opens as a draft with the failing log tail.
func TestUpgradesVerifyFailingCandidate(t *testing.T) {
	engine := testdocker.Start(t)
	reg := testregistry.Start(t, testregistry.Options{})
	source := reg.Host() + "/jupyterhub/repo2docker"
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"2024.07.0", "2024.08.0", "latest"} {
		ref, _ := name.ParseReference(source + ":" + tag)
		if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
			t.Fatal(err)
		}
	}
	// The engine runs its own images under the registry's names.
	if _, err := engine.Client.ImageTag(t.Context(), client.ImageTagOptions{Source: engine.Repo2dockerImage(t), Target: source + ":2024.07.0"}); err != nil {
		t.Fatal(err)
	}
	engine.Build(t, source+":2024.08.0", "FROM "+engine.Repo2dockerImage(t)+"\nCOPY jupyter-repo2docker /usr/local/bin/jupyter-repo2docker\n",
		map[string]string{"jupyter-repo2docker": failingRepo2docker})

	var gh *testgithub.Server
	git := testgit.StartWith(t, testgit.Options{PushAuth: func(u, p string) bool { return gh.CanPush(u, p) }})
	gh = testgithub.Start(t, git)
	gh.Tokens["ghp_verify"] = "binder-bot"
	canary, _ := git.Repo(t, "canary", map[string]string{"Dockerfile": "FROM " + engine.BaseImage(t) + "\nRUN echo canary > /canary\n"})
	values := "binderhub-service:\n  config:\n    KubernetesBuildExecutor:\n      build_image: " + source + ":2024.07.0  # deployed\n"
	git.Repo(t, "my-org/deploy", map[string]string{
		"values.yaml": values,
		"binderbuild-upgrades.yaml": "repository: my-org/deploy\ncanaries: [" + canary + "]\ndependencies:\n" +
			"  - {name: repo2docker, file: values.yaml, path: binderhub-service.config.KubernetesBuildExecutor.build_image, source: " + source + ", verify: true}\n",
	})
	git.AllowPush(t, "my-org/deploy")
	gh.AddRepo("my-org/deploy", "main")

	env := newEnv().merge(map[string]string{
		"DOCKER_HOST":                          engine.Host,
		"KUBECONFIG":                           "",
		"BINDERBUILD_EXECUTOR":                 "local",
		"BINDERBUILD_IMAGE_PREFIX":             "",
		"BINDERBUILD_BUILD_IMAGE":              source + ":2024.07.0",
		"BINDERBUILD_BUILD_NETWORK":            "host", // the git server is on 127.0.0.1
		"BINDERBUILD_DATA_DIR":                 t.TempDir(),
		"BINDERBUILD_EMBEDDED_REGISTRY_LISTEN": freeAddr(t),
		"BINDERBUILD_GIT_ALLOWED_HOSTS":        git.Host,
		"BINDERBUILD_CANARY_TOKEN":             "canary-s3cret",
		"BINDERBUILD_GC_SCHEDULE":              "",
		"BINDERBUILD_UPGRADES_SCHEDULE":        "",
	})
	base := serveT(t, env)

	upEnv := map[string]string{
		"BINDERBUILD_GITHUB_API_URL":        gh.URL,
		"BINDERBUILD_UPGRADES_GITHUB_TOKEN": "ghp_verify",
		"BINDERBUILD_UPGRADES_VERIFY_TOKEN": "canary-s3cret",
	}
	var stdout, stderr testlog.Buffer
	err = run(t.Context(), []string{"upgrades", "--repo", "my-org/deploy", "--apply", "--verify", base + "/"},
		mapLookup(upEnv), &stdout, &stderr)
	if err != nil {
		t.Fatalf("upgrades: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	prs := gh.PullsOf("my-org/deploy")
	if len(prs) != 1 || !prs[0].Draft || prs[0].Title != "repo2docker: 2024.07.0 → 2024.08.0" {
		t.Fatalf("pull requests %+v, want one draft repo2docker: 2024.07.0 → 2024.08.0", prs)
	}
	// Build times and sizes vary: the failing build has no image.
	body := regexp.MustCompile(`\| (\d+h)?(\d+m)?\d+s \| (\d+\.\d MiB|—) \|`).ReplaceAllString(prs[0].Body, "| <time> | <size> |")
	body = strings.ReplaceAll(body, reg.Host(), "<registry>")
	body = strings.ReplaceAll(body, canary, "<canary>")
	want := "Bumps repo2docker from `2024.07.0` to `2024.08.0` in `values.yaml` (`binderhub-service.config.KubernetesBuildExecutor.build_image`).\n\n" +
		"| | version | appVersion |\n|---|---|---|\n| before | 2024.07.0 | — |\n| after | 2024.08.0 | — |\n\n" +
		"Canary builds (old, then new build image):\n\n| repository | build image | result | build time | image size |\n|---|---|---|---|---|\n" +
		"| <canary> | `<registry>/jupyterhub/repo2docker:2024.07.0` | pass | <time> | <size> |\n" +
		"| <canary> | `<registry>/jupyterhub/repo2docker:2024.08.0` | **fail** | <time> | <size> |\n\n" +
		"Log tail of <canary> with `<registry>/jupyterhub/repo2docker:2024.08.0`:\n\n```\n" +
		"Waiting for build to start...\nPicked Git content provider.\nImportError: cannot import name conda_env\nthe build failed\n```\n" +
		"\n---\nOpened by `binderbuild upgrades`; the next run updates this pull request in place.\n"
	if body != want {
		t.Errorf("pull request body:\n%s\nwant\n%s", body, want)
	}
	// A re-run keeps the verified pull request as it is: no new builds.
	var again testlog.Buffer
	if err := run(t.Context(), []string{"upgrades", "--repo", "my-org/deploy", "--apply", "--verify", base + "/", "--json"},
		mapLookup(upEnv), &again, &testlog.Buffer{}); err != nil {
		t.Fatalf("re-run: %v\n%s", err, again.String())
	}
	if !strings.Contains(again.String(), `"status": "unchanged"`) || strings.Contains(again.String(), `"canaries"`) {
		t.Errorf("re-run report, want unchanged without canary builds:\n%s", again.String())
	}
	if now := gh.PullsOf("my-org/deploy"); len(now) != 1 || now[0].Body != prs[0].Body {
		t.Errorf("re-run changed the pull requests: %+v", now)
	}
	if !regexp.MustCompile(`\| pass \| (\d+h)?(\d+m)?\d+s \| \d+\.\d MiB \|`).MatchString(prs[0].Body) {
		t.Errorf("the passing canary has no build time or image size:\n%s", prs[0].Body)
	}
}

// TestUpgradesUsage: bad flags and settings are exit status 2 with one line.
func TestUpgradesUsage(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"upgrades", "--nope"}, nil, "upgrades: flag provided but not defined: -nope (see binderbuild upgrades --help)"},
		{[]string{"upgrades", "extra"}, nil, `upgrades takes no arguments, got ["extra"] (see binderbuild upgrades --help)`},
		{[]string{"upgrades", "--repo", "not a repo"}, nil, `upgrades: repository "not a repo": want owner/name`},
		{[]string{"upgrades", "--apply"}, nil, "upgrades: --apply needs GitHub credentials: BINDERBUILD_UPGRADES_GITHUB_TOKEN (or GITHUB_TOKEN), or BINDERBUILD_UPGRADES_GITHUB_APP_ID and BINDERBUILD_UPGRADES_GITHUB_APP_KEY_FILE"},
		{[]string{"upgrades", "--verify", "https://binder.example.org/"}, nil, "upgrades: --verify needs the service's canary token in BINDERBUILD_UPGRADES_VERIFY_TOKEN"},
		{[]string{"upgrades"}, map[string]string{"BINDERBUILD_UPGRADES_APPLY": "sure"}, `upgrades: invalid BINDERBUILD_UPGRADES_APPLY="sure": strconv.ParseBool: parsing "sure": invalid syntax`},
	}
	for _, tc := range tests {
		err := run(t.Context(), tc.args, mapLookup(tc.env), &testlog.Buffer{}, &testlog.Buffer{})
		var ue usageError
		if !errors.As(err, &ue) || err.Error() != tc.want {
			t.Errorf("%q: %v, want usage error %q", tc.args, err, tc.want)
		}
	}
	var out testlog.Buffer
	if err := run(t.Context(), []string{"upgrades", "--help"}, newEnv().lookup, &out, &testlog.Buffer{}); err != nil || !strings.Contains(out.String(), "A DRY RUN IS THE DEFAULT") {
		t.Errorf("--help: %v\n%s", err, out.String())
	}
}

// TestUpgradesSettings: the BINDERBUILD_UPGRADES_* variables of the chart's
// CronJob keep their names and meanings now that serve's loader reads
// them; the GitHub API and insecure hosts are the service's settings.
func TestUpgradesSettings(t *testing.T) {
	t.Parallel()
	key := filepath.Join(t.TempDir(), "private-key")
	if err := os.WriteFile(key, []byte("PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	defaults := upgrades.Settings{APIURL: "https://api.github.com", MaxWait: time.Minute}
	tests := []struct {
		name    string
		env     map[string]string
		want    upgrades.Settings
		wantErr string
	}{
		{name: "defaults", want: defaults},
		{
			name: "everything",
			env: map[string]string{
				"BINDERBUILD_UPGRADES_REPO":                " my-org/deploy ",
				"BINDERBUILD_UPGRADES_CONFIG":              "deploy/upgrades.yaml",
				"BINDERBUILD_UPGRADES_APPLY":               "true",
				"BINDERBUILD_UPGRADES_FORK":                "1",
				"BINDERBUILD_GITHUB_API_URL":               "https://ghe.example/api/v3",
				"BINDERBUILD_REGISTRY_INSECURE_HOSTS":      "reg.example,10.0.0.1:5000",
				"BINDERBUILD_UPGRADES_GITHUB_TOKEN":        "ghp_own\n",
				"GITHUB_TOKEN":                             "ghp_actions",
				"BINDERBUILD_UPGRADES_GITHUB_APP_ID":       "4242",
				"BINDERBUILD_UPGRADES_GITHUB_APP_KEY_FILE": key,
				"BINDERBUILD_UPGRADES_VERIFY_URL":          "https://binder.example/",
				"BINDERBUILD_UPGRADES_VERIFY_TOKEN":        "canary",
				"BINDERBUILD_UPGRADES_MAX_WAIT":            "5m",
				"BINDERBUILD_UPGRADES_SCHEDULE":            " @daily",
			},
			want: upgrades.Settings{
				Repo: "my-org/deploy", ConfigFile: "deploy/upgrades.yaml", Apply: true, Fork: true,
				APIURL: "https://ghe.example/api/v3", InsecureHosts: []string{"reg.example", "10.0.0.1:5000"},
				Auth:      upgrades.GitHubAuth{Token: "ghp_own", AppID: 4242, AppKey: []byte("PEM")},
				VerifyURL: "https://binder.example/", VerifyToken: "canary", MaxWait: 5 * time.Minute, Schedule: "@daily",
			},
		},
		{name: "token from GITHUB_TOKEN", env: map[string]string{"GITHUB_TOKEN": " ghp_actions\n"},
			want: with(defaults, func(s *upgrades.Settings) { s.Auth.Token = "ghp_actions" })},
		{name: "empty token falls back", env: map[string]string{"BINDERBUILD_UPGRADES_GITHUB_TOKEN": "", "GITHUB_TOKEN": "ghp_actions"},
			want: with(defaults, func(s *upgrades.Settings) { s.Auth.Token = "ghp_actions" })},
		{name: "own token wins", env: map[string]string{"BINDERBUILD_UPGRADES_GITHUB_TOKEN": "ghp_own", "GITHUB_TOKEN": "ghp_actions"},
			want: with(defaults, func(s *upgrades.Settings) { s.Auth.Token = "ghp_own" })},
		{name: "no key file", env: map[string]string{"BINDERBUILD_UPGRADES_GITHUB_APP_KEY_FILE": " "}, want: defaults},
		{name: "apply", env: map[string]string{"BINDERBUILD_UPGRADES_APPLY": "sure"}, wantErr: `invalid BINDERBUILD_UPGRADES_APPLY="sure": strconv.ParseBool: parsing "sure": invalid syntax`},
		{name: "max wait", env: map[string]string{"BINDERBUILD_UPGRADES_MAX_WAIT": "a while"}, wantErr: `invalid BINDERBUILD_UPGRADES_MAX_WAIT="a while"`},
		{name: "app id", env: map[string]string{"BINDERBUILD_UPGRADES_GITHUB_APP_ID": "app"}, wantErr: `invalid BINDERBUILD_UPGRADES_GITHUB_APP_ID="app"`},
		{name: "key file", env: map[string]string{"BINDERBUILD_UPGRADES_GITHUB_APP_KEY_FILE": "/nonexistent/key"},
			wantErr: `invalid BINDERBUILD_UPGRADES_GITHUB_APP_KEY_FILE="/nonexistent/key": open /nonexistent/key: no such file or directory`},
		{name: "schedule", env: map[string]string{"BINDERBUILD_UPGRADES_SCHEDULE": "sometimes"}, wantErr: `invalid BINDERBUILD_UPGRADES_SCHEDULE="sometimes"`},
		{name: "time zone only", env: map[string]string{"BINDERBUILD_UPGRADES_SCHEDULE": "TZ=UTC"}, wantErr: `invalid BINDERBUILD_UPGRADES_SCHEDULE="TZ=UTC": want a cron expression`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := upgradesSettings(mapLookup(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Errorf("upgradesSettings() = %+v, %v; want an error starting %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("upgradesSettings() = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
