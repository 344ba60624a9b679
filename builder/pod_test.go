package builder

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
	}
}

var testReq = binderbuild.BuildRequest{
	Name:    binderbuild.BuildName("binder-examples-octave", "1479e0252b2e648bb755ee913292b79495931717"),
	RepoURL: "https://github.com/binder-examples/octave",
	Ref:     "1479e0252b2e648bb755ee913292b79495931717",
	Image:   "registry.example.com/binder/binder-2dexamples-2doctave-03025a:1479e0252b2e648bb755ee913292b79495931717",
}

func TestPodSpec(t *testing.T) {
	tests := []struct {
		name   string
		cfg    PodConfig
		req    binderbuild.BuildRequest
		sticky string
	}{
		{name: "defaults", cfg: PodConfig{BuildImage: "quay.io/jupyterhub/repo2docker:2024.07.0", DockerHost: "/var/run/docker.sock"}, req: testReq},
		{name: "limit-appendix-proxy", cfg: PodConfig{BuildImage: "quay.io/jupyterhub/repo2docker:2024.07.0", DockerHost: "/var/run/docker.sock",
			BuildMemoryLimit: "2G", Release: "binder", BuildAppendix: "RUN echo appended", BuildExtraEnv: EnvVars{"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": ".svc,registry.example.com"}}, req: testReq},
		{name: "everything", cfg: PodConfig{
			BuildImage:                   "quay.io/jupyterhub/repo2docker:2024.07.0",
			DockerHost:                   "unix:///var/run/binder-ns-binder/docker-api/docker-api.sock",
			BuildNodeSelector:            map[string]string{"hub.jupyter.org/node-purpose": "user"},
			BuildEphemeralStorageRequest: "5Gi",
			BuildEphemeralStorageLimit:   "15Gi",
			BuildMemoryRequest:           "1G",
			BuildMemoryLimit:             "2T",
			PushSecret:                   "build-pods-docker-config",
			BuildImagePullSecrets:        []string{"build-image-secret", "build-image-secret-2"},
			BuildTimeout:                 30 * time.Minute,
			Repo2dockerExtraArgs:         []string{"--repo-dir=/srv/repo"},
			Push:                         true,
		}, req: func() binderbuild.BuildRequest {
			r := testReq
			r.GitCredentials = `username=abc\npassword=x-oauth-basic`
			return r
		}(), sticky: "node-b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			out, err := yaml.Marshal(tc.cfg.pod(tc.req, tc.sticky))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "pods/"+tc.name+".yaml", out)
		})
	}
}

func TestArgs(t *testing.T) {
	cfg := PodConfig{Repo2dockerExtraArgs: []string{"--repo-dir=/srv/repo"}}
	got := cfg.args(binderbuild.BuildRequest{Image: "test:test", Ref: "main", RepoURL: "https://example.com/r"})
	want := "jupyter-repo2docker --ref=main --image=test:test --no-clean --no-run --json-logs --user-name=jovyan --user-id=1000 --repo-dir=/srv/repo https://example.com/r"
	if strings.Join(got, " ") != want {
		t.Errorf("args = %q, want %q", strings.Join(got, " "), want)
	}
	cfg.BuildAppendix, cfg.Push = "RUN echo a\nRUN echo b", true
	got = cfg.args(binderbuild.BuildRequest{Image: "test:test", Ref: "main", RepoURL: "https://example.com/r"})
	want = "jupyter-repo2docker --ref=main --image=test:test --no-clean --no-run --json-logs --user-name=jovyan --user-id=1000 --appendix RUN echo a\nRUN echo b --push --repo-dir=/srv/repo https://example.com/r"
	if strings.Join(got, " ") != want {
		t.Errorf("args with appendix = %q, want %q", strings.Join(got, " "), want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg  PodConfig
		want string
	}{
		{PodConfig{BuildMemoryLimit: "lots"}, `invalid BINDERBUILD_BUILD_MEMORY_LIMIT="lots"`},
		{PodConfig{DockerHost: "tcp://10.0.0.1:2375"}, `invalid BINDERBUILD_DOCKER_HOST="tcp://10.0.0.1:2375": only unix domain sockets on the same node are supported`},
		{PodConfig{DockerHost: "unix://host/sock"}, `only unix domain sockets`},
		{PodConfig{Release: "a/b"}, `invalid BINDERBUILD_RELEASE="a/b"`},
	}
	for _, tc := range tests {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for in, want := range map[string]int64{"2T": 2199023255552, "123G": 132070244352, "1.5Gi": 1610612736, "100M": 104857600, "512": 512} {
		q, err := parseQuantity(in)
		if err != nil || q.Value() != want {
			t.Errorf("parseQuantity(%q) = %v, %v, want %d", in, q, err, want)
		}
	}
}

func TestRendezvousRank(t *testing.T) {
	tests := []struct {
		buckets []string
		key     string
		want    []string
	}{
		{[]string{"node-a", "node-b"}, "repo", []string{"node-b", "node-a"}},
		{[]string{"node-a", "node-b", "node-c"}, "https://github.com/binderhub-ci-repos/cached-minimal-dockerfile", []string{"node-b", "node-a", "node-c"}},
		{[]string{"b1", "b2", "b3"}, "crazy frog is a crazy key", []string{"b2", "b1", "b3"}},
	}
	for _, tc := range tests {
		if got := rendezvousRank(tc.buckets, tc.key); !slices.Equal(got, tc.want) {
			t.Errorf("rendezvousRank(%q, %q) = %q, want %q", tc.buckets, tc.key, got, tc.want)
		}
	}
}

func TestFailureCause(t *testing.T) {
	terminated := func(reason string, code int32) []corev1.ContainerStatus {
		return []corev1.ContainerStatus{{Name: containerName, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code}}}}
	}
	tests := []struct {
		status    corev1.PodStatus
		deadline  *int64 // the pod's activeDeadlineSeconds
		wantCause events.Cause
		wantMsg   string
	}{
		{corev1.PodStatus{ContainerStatuses: terminated("OOMKilled", 137)}, nil, events.CauseOOM, "Build failed: the build ran out of memory (OOMKilled, exit code 137).\n"},
		{corev1.PodStatus{Reason: "DeadlineExceeded", ContainerStatuses: terminated("Error", 137)}, nil, events.CauseDeadline, "Build failed: the build took longer than its deadline (DeadlineExceeded).\n"},
		// As the server's timer says when it fires first.
		{corev1.PodStatus{Reason: "DeadlineExceeded", ContainerStatuses: terminated("Error", 137)}, ptr.To[int64](90), events.CauseDeadline, "Build failed: it took longer than the build timeout of 1m30s.\n"},
		{corev1.PodStatus{Reason: "Evicted", Message: "Pod ephemeral local storage usage exceeds the total limit of containers 1Gi."}, nil, events.CauseEvicted, "Build failed: the build pod was evicted: Pod ephemeral local storage usage exceeds the total limit of containers 1Gi.\n"},
		{corev1.PodStatus{ContainerStatuses: terminated("Error", 2)}, nil, events.CauseFailed, "Build failed: repo2docker exited with code 2.\n"},
		{corev1.PodStatus{Reason: "NodeLost"}, nil, events.CauseFailed, "Build failed: the build pod failed (NodeLost).\n"},
	}
	for _, tc := range tests {
		cause, msg := failureCause(&corev1.Pod{Spec: corev1.PodSpec{ActiveDeadlineSeconds: tc.deadline}, Status: tc.status})
		if cause != tc.wantCause || msg != tc.wantMsg {
			t.Errorf("failureCause(%+v) = %s %q, want %s %q", tc.status, cause, msg, tc.wantCause, tc.wantMsg)
		}
	}
}

func TestPendingReason(t *testing.T) {
	tests := []struct {
		status corev1.PodStatus
		want   string
	}{
		{corev1.PodStatus{}, ""},
		{corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
			Message: "0/3 nodes are available: 3 Insufficient ephemeral-storage."}}}, "Waiting for a node to run the build: 0/3 nodes are available: 3 Insufficient ephemeral-storage.\n"},
		{corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "x"`}}}}},
			"Waiting for the build to start: ImagePullBackOff: Back-off pulling image \"x\"\n"},
		{corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}, ""},
	}
	for _, tc := range tests {
		if got := pendingReason(&corev1.Pod{Status: tc.status}); got != tc.want {
			t.Errorf("pendingReason(%+v) = %q, want %q", tc.status, got, tc.want)
		}
	}
}

// TestPendingFailure covers the waiting reasons the real-node tests
// (helm/realnode_test.go) do not produce.
func TestPendingFailure(t *testing.T) {
	waiting := func(reason, msg string) corev1.PodStatus {
		return corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}}
	}
	tests := []struct {
		status corev1.PodStatus
		want   string // "": no failure
	}{
		{corev1.PodStatus{}, ""},
		{waiting("ContainerCreating", ""), ""},
		{waiting("ImagePullBackOff", `Back-off pulling image "x"`), "Build failed: the build image could not be pulled (ImagePullBackOff): Back-off pulling image \"x\"\n"},
		{waiting("ErrImageNeverPull", `Container image "x" is not present with pull policy of Never`),
			"Build failed: the build image could not be pulled (ErrImageNeverPull): Container image \"x\" is not present with pull policy of Never\n"},
		{waiting("CreateContainerConfigError", `secret "s" not found`),
			"Build failed: the build container could not be created (CreateContainerConfigError): secret \"s\" not found\n"},
	}
	for _, tc := range tests {
		err := pendingFailure(&corev1.Pod{Status: tc.status})
		var f *events.Failure
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("pendingFailure(%+v) = %v, want none", tc.status, err)
		case tc.want != "" && (!errors.As(err, &f) || f.Cause != events.CauseFailed || messageOf(f.Event) != tc.want):
			t.Errorf("pendingFailure(%+v) = %v, want a failure with %q", tc.status, err, tc.want)
		}
	}
}

func TestCleanupReason(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	finished := func(phase corev1.PodPhase, ago time.Duration) corev1.PodStatus {
		return corev1.PodStatus{Phase: phase, StartTime: ptrTime(at(time.Hour)), ContainerStatuses: []corev1.ContainerStatus{{
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: at(ago)}}}}}
	}
	tests := []struct {
		name   string
		status corev1.PodStatus
		want   string
	}{
		{"running young", corev1.PodStatus{Phase: corev1.PodRunning, StartTime: ptrTime(at(time.Hour))}, ""},
		{"running old", corev1.PodStatus{Phase: corev1.PodRunning, StartTime: ptrTime(at(5 * time.Hour))}, "older than 4h0m0s"},
		{"succeeded just now", finished(corev1.PodSucceeded, time.Second), ""},
		{"succeeded a while ago", finished(corev1.PodSucceeded, 2*time.Minute), "finished"},
		{"failed without finish time", corev1.PodStatus{Phase: corev1.PodFailed}, "finished"},
		{"pending old, never started", corev1.PodStatus{Phase: corev1.PodPending}, "older than 4h0m0s"},
	}
	for _, tc := range tests {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: at(5 * time.Hour)}, Status: tc.status}
		if got := cleanupReason(p, now, 4*time.Hour, time.Minute); got != tc.want {
			t.Errorf("%s: cleanupReason = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }

func TestRefused(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	tests := []struct {
		err  error
		want bool
	}{
		{apierrors.NewForbidden(pods, "b", errors.New("exceeded quota: pods")), true},
		{apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "b", nil), true},
		// An admission webhook's refusal: 400 unless it chose a code.
		{apierrors.NewBadRequest(`admission webhook "deny.example.org" denied the request: no`), true},
		{apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "builds"), true},
		{apierrors.NewAlreadyExists(pods, "b"), false},
		{apierrors.NewConflict(pods, "b", errors.New("changed")), false},
		{apierrors.NewTooManyRequests("slow down", 1), false},
		{apierrors.NewInternalError(errors.New(`failed calling webhook "w": dial tcp 10.0.0.1:443: connection refused`)), false},
		{errors.New("connection reset by peer"), false},
	}
	for _, tc := range tests {
		if got := refused(tc.err); got != tc.want {
			t.Errorf("refused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
