// Command fake-repo2docker stands in for jupyter-repo2docker in the build
// pods of the real-node tests (helm/realnode_test.go), as a static binary in
// an image without a base. It takes repo2docker's arguments (--ref=,
// --image=, --push, the repository URL last; others ignored), and instead of
// cloning it builds a one-file image (FROM scratch, the ref in /ref) with
// the engine at /var/run/docker.sock and pushes it there, printing
// repo2docker's JSON log lines and a failed line on error.
//
// The repository's last path element scripts failure tests:
//
//	oom            allocate memory until the container's limit kills it
//	slow           print one line, then wait until killed
//	count-<n>-<ms> print n numbered lines, one every ms milliseconds, then
//	               build as usual
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
)

// api is the Engine API version of Debian bookworm's docker.io (20.10).
const api = "http://docker/v1.41"

func main() {
	ref, image, push, repo := parseArgs(os.Args[1:])
	if image == "" || repo == "" {
		fail("usage: jupyter-repo2docker --ref=<ref> --image=<image> [--push] <repository>")
	}
	say("fetching", "Picked Git content provider.\n")
	say("fetching", "HEAD is now at "+ref+"\n")
	script(path.Base(repo))
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", "/var/run/docker.sock")
	}}}
	say("building", "Using DockerBuildPack builder\n")
	if err := build(client, ref, image); err != nil {
		fail(err.Error())
	}
	if push {
		say("pushing", "Pushing image\n")
		if err := pushImage(client, image); err != nil {
			fail(err.Error())
		}
		say("pushing", "Successfully pushed "+image+"\n")
	}
}

func parseArgs(args []string) (ref, image string, push bool, repo string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "jupyter-repo2docker" && i == 0:
		case strings.HasPrefix(a, "--ref="):
			ref = strings.TrimPrefix(a, "--ref=")
		case strings.HasPrefix(a, "--image="):
			image = strings.TrimPrefix(a, "--image=")
		case a == "--push":
			push = true
		case a == "--appendix":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			repo = a
		}
	}
	return ref, image, push, repo
}

// say prints one repo2docker JSON log line.
func say(phase, message string) {
	line, _ := json.Marshal(map[string]string{"phase": phase, "message": message})
	fmt.Println(string(line))
}

func fail(message string) {
	say("failed", message+"\n")
	os.Exit(1)
}

// script acts out the failure or log the repository name asks for.
func script(name string) {
	var n, ms int
	switch {
	case name == "oom":
		say("building", "Allocating memory until the limit\n")
		allocate()
	case name == "slow":
		say("building", "Waiting until the deadline\n")
		time.Sleep(24 * time.Hour)
	case scanCount(name, &n, &ms):
		for i := 1; i <= n; i++ {
			say("building", fmt.Sprintf("Counting %d of %d\n", i, n))
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
	}
}

// scanCount reads "count-<n>-<ms>".
func scanCount(name string, n, ms *int) bool {
	_, err := fmt.Sscanf(name, "count-%d-%d", n, ms)
	return err == nil
}

// held keeps what allocate touched reachable.
var held [][]byte

// allocate touches memory until the kernel kills the process.
func allocate() {
	for {
		b := make([]byte, 16<<20)
		for i := range b {
			b[i] = 1
		}
		held = append(held, b)
	}
}

// build builds image from a context holding a Dockerfile and /ref.
func build(client *http.Client, ref, image string) error {
	var ctx bytes.Buffer
	tw := tar.NewWriter(&ctx)
	for name, data := range map[string]string{
		"Dockerfile": "FROM scratch\nCOPY ref /ref\n",
		"ref":        ref + "\n",
	} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	q := url.Values{"t": {image}, "labels": {`{"repo2docker.ref":"` + ref + `"}`}}
	resp, err := client.Post(api+"/build?"+q.Encode(), "application/x-tar", &ctx)
	if err != nil {
		return err
	}
	return stream(resp, func(m message) {
		for _, l := range strings.SplitAfter(m.Stream, "\n") {
			if strings.TrimSpace(l) != "" {
				say("building", l)
			}
		}
	})
}

// pushImage pushes image, anonymously.
func pushImage(client *http.Client, image string) error {
	name, tag := image, "latest"
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		name, tag = image[:i], image[i+1:]
	}
	req, err := http.NewRequest(http.MethodPost, api+"/images/"+name+"/push?tag="+url.QueryEscape(tag), nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Registry-Auth", base64.URLEncoding.EncodeToString([]byte("{}")))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	return stream(resp, func(message) {})
}

// message is one line of the engine's JSON stream.
type message struct {
	Stream string `json:"stream"`
	Error  string `json:"error"`
}

// stream reads the engine's JSON lines, returning the first error line.
func stream(resp *http.Response, each func(message)) error {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return fmt.Errorf("engine answered %q: %w", sc.Text(), err)
		}
		if m.Error != "" {
			return fmt.Errorf("%s", m.Error)
		}
		each(m)
	}
	return sc.Err()
}
