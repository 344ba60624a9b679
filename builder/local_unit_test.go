package builder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// frame is one frame of the engine's multiplexed log stream.
func frame(stream byte, payload string) []byte {
	b := make([]byte, 8, 8+len(payload))
	b[0] = stream
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	return append(b, payload...)
}

func TestLocalDemuxLines(t *testing.T) {
	var in bytes.Buffer
	in.Write(frame(1, `{"message": "a`))
	in.Write(frame(2, "err 1\nerr "))
	in.Write(frame(1, `"}`+"\n"+`{"message": "b"}`+"\n"))
	in.Write(frame(2, "2\nno newline at the end"))
	var got []string
	if err := demuxLines(&in, func(l []byte) { got = append(got, string(l)) }); err != nil {
		t.Fatal(err)
	}
	want := []string{"err 1\n", `{"message": "a"}` + "\n", `{"message": "b"}` + "\n", "err 2\n", "no newline at the end"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}

	long := strings.Repeat("x", maxLogLine+10) + "\n"
	got = nil
	if err := demuxLines(bytes.NewReader(frame(1, long)), func(l []byte) { got = append(got, string(l)) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[0]) != maxLogLine || got[1] != strings.Repeat("x", 10)+"\n" {
		t.Errorf("over-long line split into %d records of %d bytes", len(got), len(got[0]))
	}

	broken := frame(1, "partial")[:10]
	got = nil
	if err := demuxLines(bytes.NewReader(broken), func(l []byte) { got = append(got, string(l)) }); !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 0 {
		t.Errorf("broken stream: %v, lines %q; want io.ErrUnexpectedEOF and no line", err, got)
	}
	if err := demuxLines(bytes.NewReader(frame(3, "engine trouble")), func([]byte) {}); err == nil || !strings.Contains(err.Error(), "engine trouble") {
		t.Errorf("system error frame: %v", err)
	}
}

func TestLocalExitFailure(t *testing.T) {
	tests := []struct {
		code  int
		oom   bool
		cause events.Cause
		msg   string
	}{
		{3, false, events.CauseFailed, "Build failed: repo2docker exited with code 3.\n"},
		{137, true, events.CauseOOM, "Build failed: the build ran out of memory (OOMKilled, exit code 137).\n"},
		{137, false, events.CauseFailed, "Build failed: repo2docker exited with code 137.\n"},
	}
	for _, tc := range tests {
		cause, msg := exitFailure(tc.code, tc.oom)
		if cause != tc.cause || msg != tc.msg {
			t.Errorf("exitFailure(%d, %v) = %s, %q; want %s, %q", tc.code, tc.oom, cause, msg, tc.cause, tc.msg)
		}
	}
}

func TestLocalContainerCleanupReason(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	hour, grace := time.Hour, time.Minute
	tests := []struct {
		name              string
		state             container.ContainerState
		created, finished time.Time
		want              string
	}{
		{"running young", container.StateRunning, now.Add(-time.Minute), time.Time{}, ""},
		{"running old", container.StateRunning, now.Add(-2 * hour), time.Time{}, "older than 1h0m0s"},
		{"created old", container.StateCreated, now.Add(-2 * hour), time.Time{}, "older than 1h0m0s"},
		{"just finished", container.StateExited, now.Add(-time.Minute), now.Add(-time.Second), ""},
		{"finished", container.StateExited, now.Add(-time.Minute), now.Add(-grace), "finished"},
		{"dead", container.StateDead, now.Add(-time.Minute), time.Time{}, "finished"},
		{"removing", container.StateRemoving, now.Add(-2 * hour), time.Time{}, ""},
	}
	for _, tc := range tests {
		if got := containerCleanupReason(tc.state, tc.created, tc.finished, now, hour, grace); got != tc.want {
			t.Errorf("%s: containerCleanupReason = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := containerCleanupReason(container.StateRunning, now.Add(-100*hour), time.Time{}, now, 0, grace); got != "" {
		t.Errorf("max age 0: %q, want no age rule", got)
	}
}

// TestLocalContainerSpec checks the create request: the build pod's
// arguments, labels, socket, credentials and memory limit.
func TestLocalContainerSpec(t *testing.T) {
	cfg := LocalConfig{
		BuildNetwork:      "host",
		BuildDockerConfig: "/etc/binderbuild/config.json",
		Build: KubeConfig{PodConfig: PodConfig{
			BuildImage: "quay.io/jupyterhub/repo2docker:2024.07.0", BuildMemoryLimit: "2G",
			Repo2dockerExtraArgs: []string{"--repo-dir=/srv/repo"}, Push: true,
		}},
	}
	req := binderbuild.BuildRequest{Name: "build-x", RepoURL: "https://github.com/o/r", Ref: "abc", Image: "127.0.0.1:5000/binderbuild/o-r:abc", GitCredentials: "password=s"}
	got := cfg.container(req, "/run/docker.sock")
	if got.Name != "build-x" || got.Config.Image != cfg.Build.BuildImage {
		t.Errorf("name %q image %q", got.Name, got.Config.Image)
	}
	wantArgs := []string{"jupyter-repo2docker", "--ref=abc", "--image=127.0.0.1:5000/binderbuild/o-r:abc", "--no-clean", "--no-run",
		"--json-logs", "--user-name=jovyan", "--user-id=1000", "--push", "--repo-dir=/srv/repo", "https://github.com/o/r"}
	if !reflect.DeepEqual([]string(got.Config.Cmd), wantArgs) {
		t.Errorf("Cmd = %q, want %q", got.Config.Cmd, wantArgs)
	}
	if want := map[string]string{"name": "build-x", "component": "binderhub-build", "binder-repo": "https://github.com/o/r",
		"binderbuild.org/image": "127.0.0.1:5000/binderbuild/o-r:abc"}; !reflect.DeepEqual(got.Config.Labels, want) {
		t.Errorf("Labels = %v, want %v", got.Config.Labels, want)
	}
	if want := []string{"GIT_CREDENTIAL_ENV=password=s", "GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=credential.helper", "GIT_CONFIG_VALUE_0=",
		"GIT_CONFIG_KEY_1=credential.https://github.com.helper", "GIT_CONFIG_VALUE_1=env"}; !reflect.DeepEqual(got.Config.Env, want) {
		t.Errorf("Env = %q, want %q", got.Config.Env, want)
	}
	h := got.HostConfig
	if want := []string{"/run/docker.sock:/var/run/docker.sock", "/etc/binderbuild/config.json:/root/.docker/config.json:ro"}; !reflect.DeepEqual(h.Binds, want) {
		t.Errorf("Binds = %q, want %q", h.Binds, want)
	}
	if h.NetworkMode != "host" || h.Memory != 2<<30 || h.MemorySwap != 2<<30 {
		t.Errorf("network %q memory %d swap %d", h.NetworkMode, h.Memory, h.MemorySwap)
	}
	if !reflect.DeepEqual(h.CapDrop, []string{"ALL"}) || !reflect.DeepEqual(h.SecurityOpt, []string{"no-new-privileges"}) {
		t.Errorf("CapDrop %q SecurityOpt %q", h.CapDrop, h.SecurityOpt)
	}
	cfg.Build.Push = false
	if got := cfg.container(req, "/run/docker.sock"); len(got.HostConfig.Binds) != 1 {
		t.Errorf("without push the docker config is still mounted: %q", got.HostConfig.Binds)
	}
}
