package upgrades

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// logTailLines is how many log lines of a failing canary build the pull
// request shows.
const logTailLines = 20

// DefaultVerifyTimeout bounds one canary build.
const DefaultVerifyTimeout = 30 * time.Minute

// Verifier builds canary repositories with a binderbuild service, once
// with the deployed build image and once with the candidate, through the
// service's canary route (GET {URL}canary/git/<repo>/<ref>?build_image=…),
// which only the service's canary token may use.
type Verifier struct {
	// URL is the service's base URL, ending in "/".
	URL string
	// Token is the service's BINDERBUILD_CANARY_TOKEN.
	Token string
	// HTTP carries the requests. Default: a client without timeout (builds
	// take minutes); Timeout bounds each build.
	HTTP *http.Client
	// Timeout bounds one build. Default DefaultVerifyTimeout.
	Timeout time.Duration
	// Sources reads the sizes of built images from their registry.
	Sources Sources
}

// Canary is the outcome of one canary build.
type Canary struct {
	Repository string `json:"repository"`
	BuildImage string `json:"build_image"`
	Passed     bool   `json:"passed"`
	// Duration is the build's wall time, request to last event.
	Duration time.Duration `json:"duration_ns"`
	// Image is the built image; Size its compressed size in bytes, -1 when
	// unknown.
	Image string `json:"image,omitempty"`
	Size  int64  `json:"size"`
	// LogTail is the end of a failing build's log.
	LogTail []string `json:"log_tail,omitempty"`
}

// Verify builds every canary with the old, then the new build image.
func (v *Verifier) Verify(ctx context.Context, canaries []string, oldImage, newImage string) []Canary {
	var out []Canary
	for _, c := range canaries {
		out = append(out, v.build(ctx, c, oldImage), v.build(ctx, c, newImage))
	}
	return out
}

func anyFailed(cs []Canary) bool {
	for i := 1; i < len(cs); i += 2 { // the new build image's builds
		if !cs[i].Passed {
			return true
		}
	}
	return false
}

// build builds one canary ("URL" or "URL@ref") with buildImage.
func (v *Verifier) build(ctx context.Context, canary, buildImage string) Canary {
	repo, ref, ok := strings.Cut(canary, "@")
	if !ok {
		ref = "HEAD"
	}
	c := Canary{Repository: canary, BuildImage: buildImage, Size: -1}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(v.Timeout, DefaultVerifyTimeout))
	defer cancel()
	start := time.Now()
	image, tail, err := v.stream(ctx, repo, ref, buildImage)
	c.Duration = time.Since(start)
	if err != nil {
		c.LogTail = append(tail, err.Error())
		return c
	}
	c.Passed, c.Image = true, image
	c.Size = v.size(ctx, image)
	return c
}

// stream requests the build and reads its events until ready or failed.
func (v *Verifier) stream(ctx context.Context, repo, ref, buildImage string) (image string, tail []string, err error) {
	u := v.URL + "canary/git/" + url.PathEscape(repo) + "/" + url.PathEscape(ref) + "?build_image=" + url.QueryEscape(buildImage)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+v.Token)
	client := v.HTTP
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("canary build: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("canary build: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct{ Phase, Message, ImageName string }
		if json.Unmarshal([]byte(data), &ev) != nil {
			continue
		}
		if ev.Message != "" {
			tail = appendTail(tail, strings.TrimRight(ev.Message, "\n"))
		}
		switch strings.ToLower(ev.Phase) {
		case "ready":
			return ev.ImageName, nil, nil
		case "failed", "failure":
			return "", tail, errors.New("the build failed")
		}
	}
	if err := sc.Err(); err != nil {
		return "", tail, fmt.Errorf("canary build: %w", err)
	}
	return "", tail, errors.New("canary build: the event stream ended without a result")
}

func appendTail(tail []string, line string) []string {
	tail = append(tail, line)
	if len(tail) > logTailLines {
		tail = tail[len(tail)-logTailLines:]
	}
	return tail
}

// size is the compressed size of image (config and layers), -1 when the
// registry does not answer.
func (v *Verifier) size(ctx context.Context, image string) int64 {
	i := strings.LastIndex(image, ":")
	if i < 0 {
		return -1
	}
	repo, err := v.Sources.repository(image[:i])
	if err != nil {
		return -1
	}
	img, err := remote.Image(repo.Tag(image[i+1:]), v.Sources.options(ctx)...)
	if err != nil {
		return -1
	}
	m, err := img.Manifest()
	if err != nil {
		return -1
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// canaryTable is the pull request's section on canary builds.
func canaryTable(cs []Canary) string {
	var b strings.Builder
	b.WriteString("Canary builds (old, then new build image):\n\n| repository | build image | result | build time | image size |\n|---|---|---|---|---|\n")
	for _, c := range cs {
		result := "pass"
		if !c.Passed {
			result = "**fail**"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", c.Repository, c.BuildImage, result, c.Duration.Round(time.Second), size(c.Size))
	}
	for _, c := range cs {
		if c.Passed {
			continue
		}
		fmt.Fprintf(&b, "\nLog tail of %s with `%s`:\n\n```\n%s\n```\n", c.Repository, c.BuildImage, strings.Join(c.LogTail, "\n"))
	}
	return b.String()
}

// size writes a byte count in MiB with one decimal.
func size(n int64) string {
	if n < 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
