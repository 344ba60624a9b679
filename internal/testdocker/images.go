//go:build linux

package testdocker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

// Repo2dockerName is the repository of the fake repo2docker image; its tag
// is a hash of what it is made of.
const Repo2dockerName = "localhost/fake-repo2docker"

// BaseImage imports the debootstrap base image (BaseImage) into the engine
// unless it is there already, making the root file system tarball first when
// it is not cached, and returns the image name.
func (e *Engine) BaseImage(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if res, err := e.Client.ImageInspect(ctx, BaseImage); err == nil && res.Config != nil && res.Config.Labels[versionLabel] == Version {
		return BaseImage
	}
	tarball, err := rootfsTarball(ctx)
	if err != nil {
		t.Fatalf("testdocker: base image: %v", err)
	}
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	resp, err := e.Client.ImageImport(ctx, client.ImageImportSource{Source: f, SourceName: "-"}, BaseImage,
		client.ImageImportOptions{Changes: []string{"LABEL " + versionLabel + "=" + Version, `CMD ["/bin/bash"]`}})
	if err != nil {
		t.Fatalf("testdocker: import %s: %v", tarball, err)
	}
	defer resp.Close()
	if _, err := jsonStream(resp); err != nil {
		t.Fatalf("testdocker: import %s: %v", tarball, err)
	}
	return BaseImage
}

// Repo2dockerImage builds the fake repo2docker image (fake-repo2docker.sh
// as jupyter-repo2docker, and the host's docker CLI) from the base image
// unless it is there already, and returns its name.
func (e *Engine) Repo2dockerImage(t testing.TB) string {
	t.Helper()
	base := e.BaseImage(t)
	dockerCLI, err := dockerCLIPath()
	if err != nil {
		t.Fatalf("testdocker: %v", err)
	}
	cli, err := os.ReadFile(dockerCLI)
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM " + base + "\n" +
		"COPY docker /usr/local/bin/docker\n" +
		"COPY jupyter-repo2docker /usr/local/bin/jupyter-repo2docker\n" +
		"COPY entrypoint /usr/local/bin/repo2docker-entrypoint\n" +
		`ENTRYPOINT ["/usr/local/bin/repo2docker-entrypoint"]` + "\n" +
		`CMD ["jupyter-repo2docker", "--help"]` + "\n"
	// The real image's entrypoint execs its arguments too.
	entrypoint := "#!/bin/sh\nexec \"$@\"\n"
	files := []tarFile{
		{"Dockerfile", []byte(dockerfile), 0o644},
		{"docker", cli, 0o755},
		{"jupyter-repo2docker", fakeRepo2docker, 0o755},
		{"entrypoint", []byte(entrypoint), 0o755},
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s %d\n", f.name, len(f.data))
		h.Write(f.data)
	}
	image := Repo2dockerName + ":" + Version + "-" + hex.EncodeToString(h.Sum(nil))[:12]

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := e.Client.ImageInspect(ctx, image); err == nil {
		return image
	}
	buildCtx, err := tarOf(files)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Client.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
		Tags: []string{image}, Version: build.BuilderV1, Remove: true, ForceRemove: true,
	})
	if err != nil {
		t.Fatalf("testdocker: build %s: %v", image, err)
	}
	defer resp.Body.Close()
	if out, err := jsonStream(resp.Body); err != nil {
		t.Fatalf("testdocker: build %s: %v\n%s", image, err, out)
	}
	return image
}

// Build builds an image tagged tag from a Dockerfile and files (name →
// content; mode 0755, so scripts run) with the legacy builder.
func (e *Engine) Build(t testing.TB, tag, dockerfile string, files map[string]string) {
	t.Helper()
	tf := []tarFile{{"Dockerfile", []byte(dockerfile), 0o644}}
	for name, data := range files {
		tf = append(tf, tarFile{name, []byte(data), 0o755})
	}
	buildCtx, err := tarOf(tf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	resp, err := e.Client.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
		Tags: []string{tag}, Version: build.BuilderV1, Remove: true, ForceRemove: true,
	})
	if err != nil {
		t.Fatalf("testdocker: build %s: %v", tag, err)
	}
	defer resp.Body.Close()
	if out, err := jsonStream(resp.Body); err != nil {
		t.Fatalf("testdocker: build %s: %v\n%s", tag, err, out)
	}
}

// dockerCLIPath is the docker CLI copied into the builder image: Debian's
// (docker.io), else the first on PATH.
func dockerCLIPath() (string, error) {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker", nil
	}
	p, err := exec.LookPath("docker")
	if err != nil {
		return "", fmt.Errorf("docker CLI not found: %s", installHint)
	}
	return p, nil
}

type tarFile struct {
	name string
	data []byte
	mode int64
}

func tarOf(files []tarFile) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}

// rootfsTarball returns the cached debootstrap root file system tarball,
// making it when missing. A lock file serialises test processes making it at
// the same time.
func rootfsTarball(ctx context.Context) (string, error) {
	root, err := cacheRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "testdocker")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	key := sha256.Sum256([]byte(Version + " " + Suite + " " + strings.Join(basePackages, ",")))
	tarball := filepath.Join(dir, fmt.Sprintf("debian-%s-%s.tar", Suite, hex.EncodeToString(key[:])[:12]))
	lock, err := os.OpenFile(tarball+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if _, err := os.Stat(tarball); err == nil {
		return tarball, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("debootstrap not found: %s", installHint)
	}
	mirror, err := debianMirror()
	if err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(dir, "rootfs-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	rootfs := filepath.Join(work, "rootfs")
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(basePackages, ","), Suite, rootfs, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("debootstrap %s %s: %v\n%s", Suite, mirror, err, tail(string(out), 30))
	}
	// What an image needs no copy of.
	for _, p := range []string{"var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info"} {
		_ = os.RemoveAll(filepath.Join(rootfs, p))
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "var/cache/apt/archives/partial"), 0o755); err != nil {
		return "", err
	}
	tmp := filepath.Join(work, "rootfs.tar")
	if out, err := exec.CommandContext(ctx, "tar", "--numeric-owner", "-C", rootfs, "-cf", tmp, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("tar the root file system: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, tarball); err != nil {
		return "", err
	}
	return tarball, nil
}

// debianMirror is the Debian mirror apt uses, from the one-line
// sources.list format or deb822 .sources files: the first "deb" source of a
// release suite that is not the security archive.
func debianMirror() (string, error) {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	files = append(append([]string{"/etc/apt/sources.list"}, lists...), files...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var m string
		if strings.HasSuffix(f, ".sources") {
			m = mirrorFromDeb822(data)
		} else {
			m = mirrorFromList(data)
		}
		if m != "" {
			return m, nil
		}
	}
	return "", fmt.Errorf("no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d")
}

func usableMirror(uri string, suites []string) bool {
	if strings.Contains(uri, "security") {
		return false
	}
	for _, s := range suites {
		if s != "" && !strings.ContainsAny(s, "-/") {
			return true
		}
	}
	return false
}

// mirrorFromList reads "deb [options] URI suite components..." lines.
func mirrorFromList(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && usableMirror(f[0], f[1:2]) {
			return f[0]
		}
	}
	return ""
}

// mirrorFromDeb822 reads stanzas of Types, URIs and Suites fields.
func mirrorFromDeb822(data []byte) string {
	for _, stanza := range strings.Split(string(data), "\n\n") {
		fields := map[string][]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if ok && !strings.HasPrefix(k, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.Fields(v)
			}
		}
		if !contains(fields["types"], "deb") || len(fields["uris"]) == 0 {
			continue
		}
		if usableMirror(fields["uris"][0], fields["suites"]) {
			return fields["uris"][0]
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
