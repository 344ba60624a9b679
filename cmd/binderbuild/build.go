package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tmaxmax/go-sse"
	"golang.org/x/term"
)

const buildUsage = `Usage: binderbuild build <provider>/<spec> [flags]

Builds the image of a repository with a binderbuild (or BinderHub API-only)
service and prints the image name. The argument is the path after /build/,
for example:

  binderbuild build gh/binder-examples/requirements/HEAD
  binderbuild build gl/gitlab-org%2Fgitlab-foss/v10.0.6
  binderbuild build git/https%3A%2F%2Fcodeberg.org%2Forg%2Frepo/main
  binderbuild build gist/mariusvniekerk/8a658f7f63b13768d1e75fa2464f5092
  binderbuild build zenodo/10.5281/zenodo.3242074
  binderbuild build figshare/10.6084/m9.figshare.9782777.v1
  binderbuild build hydroshare/8f7c2f0341ef4180b0dbe97f59130756
  binderbuild build dataverse/10.7910/DVN/TJCLKP
  binderbuild build ckan/https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fmy-sample-dataset-001
  binderbuild build swh/swh:1:dir:d198bc9d7a6bcf6db04f476d29314f157507d505

A link works too: a GitHub, GitLab or gist URL, a Zenodo record, Figshare
article, HydroShare resource or https://doi.org/ link, a bare DOI or a
SWHID picks its provider; any other http(s) URL is built with git:

  binderbuild build https://zenodo.org/records/3242074
  binderbuild build https://github.com/binder-examples/requirements/tree/main

Exit status: 0 when the image is ready, 1 when the build failed or the
connection was lost, 2 on usage errors.

Flags:
`

// defaultServer is used when neither --server nor BINDERBUILD_SERVER is set.
const defaultServer = "http://localhost:8585"

// buildFailed is a build that ended with a failed event (exit status 1).
type buildFailed struct {
	// Message is the failed event's message without its final newline.
	Message string
	// StatusCode is the event's status_code: 0 for failed builds, an HTTP
	// status for refused requests (403: authentication required).
	StatusCode int
	// TokenSent tells whether the request carried a token.
	TokenSent bool
}

func (e buildFailed) Error() string {
	msg := strings.TrimSpace(e.Message)
	switch {
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		hint := "pass a token with --token or BINDERBUILD_TOKEN"
		if e.TokenSent {
			hint = "the token was not accepted"
		}
		return fmt.Sprintf("authentication required: the server refused the build (%d %s): %s", e.StatusCode, orText(msg, http.StatusText(e.StatusCode)), hint)
	case e.StatusCode != 0:
		return fmt.Sprintf("the server refused the build (%d): %s", e.StatusCode, orText(msg, http.StatusText(e.StatusCode)))
	case msg == "":
		return "build failed"
	}
	if len(msg) > len("build failed: ") && strings.EqualFold(msg[:len("build failed: ")], "build failed: ") {
		msg = msg[len("build failed: "):]
	}
	return "build failed: " + msg
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// streamLost is a stream that ended before the build did (exit status 1).
type streamLost struct {
	server string
	phase  string // the last phase seen, "" before the first event
	err    error  // the read error, nil when the server closed the stream
}

func (e streamLost) Error() string {
	msg := "the connection to " + e.server + " ended before the build finished"
	if e.phase != "" {
		msg += " (last phase: " + e.phase + ")"
	}
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg + "; the build may still be running: run the same command again to follow it"
}

func (e streamLost) Unwrap() error { return e.err }

// buildOptions are the parsed command line of `binderbuild build`.
type buildOptions struct {
	server string // base URL, ending in "/"
	token  string
	spec   string // <provider>/<spec>, still percent-encoded
	json   bool
	quiet  bool
	// tty enables the spinner and progress bar; width is the terminal's.
	tty   bool
	width int
	// tick is the spinner interval; 0 redraws on events only.
	tick time.Duration
	now  func() time.Time
}

// buildCommand runs `binderbuild build`. It returns a usageError for a bad
// command line, buildFailed for a failed build and streamLost when the
// stream ends early.
func buildCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "binderbuild URL, with its base URL (default $BINDERBUILD_SERVER, else "+defaultServer+")")
	token := fs.String("token", "", "token sent as Authorization: Bearer (default $BINDERBUILD_TOKEN)")
	jsonOut := fs.Bool("json", false, "print each event as one JSON line, nothing else")
	quiet := fs.Bool("quiet", false, "print no log, only the image name (and progress on a terminal)")
	fs.Usage = func() {
		fmt.Fprint(stdout, buildUsage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	// Flags may come before or after the argument.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usageError{"binderbuild build: " + err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		return usageError{fmt.Sprintf("binderbuild build: want one <provider>/<spec> argument, e.g. gh/binder-examples/requirements/HEAD; got %d (see binderbuild build --help)", len(positional))}
	}
	opts := buildOptions{token: *token, json: *jsonOut, quiet: *quiet, tick: 100 * time.Millisecond, now: time.Now}
	if opts.token == "" {
		opts.token = getenv("BINDERBUILD_TOKEN")
	}
	var err error
	if opts.server, err = serverURL(*server, getenv("BINDERBUILD_SERVER")); err != nil {
		return err
	}
	if opts.spec, err = buildSpec(positional[0]); err != nil {
		return err
	}
	opts.tty, opts.width = terminal(stdout)
	_, err = runBuild(ctx, opts, stdout)
	return err
}

// serverURL validates the server's URL and makes its path end in "/".
func serverURL(flagValue, env string) (string, error) {
	raw, from := flagValue, "--server"
	if raw == "" {
		raw, from = env, "BINDERBUILD_SERVER"
	}
	if raw == "" {
		raw = defaultServer
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", usageError{fmt.Sprintf("binderbuild build: invalid %s %q: want an http(s) URL such as %s", from, raw, defaultServer)}
	}
	return strings.TrimRight(raw, "/") + "/", nil
}

var hexDigits = regexp.MustCompile(`^[0-9A-Fa-f]{2}`)

// buildSpec checks "<provider>/<spec>" (or turns a link, DOI or SWHID into
// one, see specFromLink) and percent-encodes what cannot
// appear in a URL path. Existing escapes (%2F) stay, since the providers
// unescape specs themselves.
func buildSpec(arg string) (string, error) {
	if spec, ok := specFromLink(arg); ok {
		arg = spec
	}
	provider, spec, ok := strings.Cut(strings.TrimPrefix(arg, "/"), "/")
	if !ok || provider == "" || strings.Trim(spec, "/") == "" {
		return "", usageError{fmt.Sprintf("binderbuild build: %q is not <provider>/<spec>, e.g. gh/binder-examples/requirements/HEAD", arg)}
	}
	var b strings.Builder
	s := provider + "/" + spec
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && hexDigits.MatchString(s[i+1:]):
			b.WriteByte(c)
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-._~/!$&'()*+,;=:@", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String(), nil
}

// terminal reports whether w is a terminal, and its width.
func terminal(w io.Writer) (bool, int) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		width = 80
	}
	return true, width
}

// event is the part of a /build event the client reads.
type event struct {
	Phase      string                     `json:"phase"`
	Message    string                     `json:"message"`
	ImageName  string                     `json:"imageName"`
	Image      string                     `json:"image"` // launch-mode ready
	StatusCode int                        `json:"status_code"`
	Progress   map[string]json.RawMessage `json:"progress"`
}

// runBuild streams one build and returns the image name.
func runBuild(ctx context.Context, opts buildOptions, stdout io.Writer) (string, error) {
	target := opts.server + "build/" + opts.spec + "?build_only=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", fmt.Errorf("request %s: %w", target, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", "binderbuild-cli/"+version())
	if opts.token != "" {
		req.Header.Set("Authorization", "Bearer "+opts.token)
	}
	out := newDisplay(stdout, opts)
	defer out.stop()
	out.status("connecting")

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("connect to %s: %w", opts.server, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", buildFailed{StatusCode: resp.StatusCode, TokenSent: opts.token != ""}
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("%s answered %s", target, resp.Status)
	case !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"):
		return "", fmt.Errorf("%s answered with %q, not an event stream: is %s a binderbuild or BinderHub URL?", target, resp.Header.Get("Content-Type"), opts.server)
	}

	phase := ""
	for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: 4 << 20}) {
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", streamLost{server: opts.server, phase: phase, err: err}
		}
		if ev.Data == "" {
			continue
		}
		if opts.json {
			fmt.Fprintln(stdout, ev.Data)
		}
		var e event
		if json.Unmarshal([]byte(ev.Data), &e) != nil {
			out.log(ev.Data)
			continue
		}
		p := strings.ToLower(e.Phase)
		if p != "" && p != "unknown" && p != phase {
			phase = p
			out.phase(p)
		}
		if p == "pushing" && len(e.Progress) > 0 {
			out.progress(e.Progress)
		}
		switch p {
		case "failed", "failure":
			out.stop()
			return "", buildFailed{Message: e.Message, StatusCode: e.StatusCode, TokenSent: opts.token != ""}
		case "ready", "built":
			image := e.ImageName
			if image == "" {
				image = e.Image
			}
			out.log(e.Message)
			out.stop()
			if !opts.json {
				fmt.Fprintln(stdout, image)
			}
			return image, nil
		}
		out.log(e.Message)
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return "", streamLost{server: opts.server, phase: phase}
}

// display writes the log and, on a terminal, a status line under it with a
// spinner and the push progress. Its methods are safe for concurrent use.
type display struct {
	w    io.Writer
	opts buildOptions

	mu        sync.Mutex
	start     time.Time
	cur       string // phase shown in the status line
	frame     int
	drawn     bool // the status line is on screen
	stopped   bool
	lastPush  string
	layers    map[string]layer
	done      chan struct{}
	closeOnce sync.Once
}

type layer struct {
	current, total int64
	finished       bool
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newDisplay(w io.Writer, opts buildOptions) *display {
	d := &display{w: w, opts: opts, start: opts.now(), layers: map[string]layer{}, done: make(chan struct{})}
	if opts.tty && !opts.json && opts.tick > 0 {
		go d.spin()
	}
	return d
}

func (d *display) spin() {
	t := time.NewTicker(d.opts.tick)
	defer t.Stop()
	for {
		select {
		case <-d.done:
			return
		case <-t.C:
			d.mu.Lock()
			d.frame++
			d.draw()
			d.mu.Unlock()
		}
	}
}

// stop clears the status line and ends the spinner.
func (d *display) stop() {
	d.closeOnce.Do(func() { close(d.done) })
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clear()
	d.stopped = true
}

// status sets the status line's phase without announcing it.
func (d *display) status(phase string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cur = phase
	d.draw()
}

// phase announces a new phase.
func (d *display) phase(p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cur = p
	if !d.opts.json && !d.opts.quiet {
		d.clear()
		fmt.Fprintf(d.w, "==> %s\n", p)
	}
	d.draw()
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;:?]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?|\x1b[@-Z\\-_]?`)

// log prints a message, without its final newline. Repeated push messages
// ("Pushing image" every 1.5 s) are printed once. Off a terminal, ANSI
// escapes are removed.
func (d *display) log(msg string) {
	if d.opts.json || d.opts.quiet || msg == "" {
		return
	}
	msg = strings.TrimRight(msg, "\n")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == "pushing" {
		if msg == d.lastPush {
			return
		}
		d.lastPush = msg
	}
	if !d.opts.tty {
		msg = ansiEscape.ReplaceAllString(msg, "")
	}
	var b strings.Builder
	for line := range strings.SplitSeq(msg, "\n") {
		line = strings.TrimRight(line, "\r")
		if i := strings.LastIndexByte(line, '\r'); i >= 0 {
			line = line[i+1:]
		}
		b.WriteString(line)
		if d.opts.tty {
			b.WriteString("\x1b[0m") // colours end with the line
		}
		b.WriteByte('\n')
	}
	d.clear()
	io.WriteString(d.w, b.String())
	d.draw()
}

// progress records a pushing event's progress map: layer id → docker
// progressDetail {"current": n, "total": m}, or a status string.
func (d *display) progress(p map[string]json.RawMessage) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, raw := range p {
		l := d.layers[id]
		var detail struct {
			Current *int64 `json:"current"`
			Total   *int64 `json:"total"`
		}
		var status string
		switch {
		case json.Unmarshal(raw, &status) == nil:
			s := strings.ToLower(status)
			if strings.Contains(s, "pushed") || strings.Contains(s, "already exists") || strings.Contains(s, "mounted") {
				l.finished = true
			}
		case json.Unmarshal(raw, &detail) == nil && detail.Current != nil:
			l.current = *detail.Current
			if detail.Total != nil {
				l.total = *detail.Total
			}
		}
		d.layers[id] = l
	}
	d.draw()
}

func (d *display) clear() {
	if d.drawn {
		io.WriteString(d.w, "\r\x1b[2K")
		d.drawn = false
	}
}

// draw redraws the status line; only on a terminal.
func (d *display) draw() {
	if !d.opts.tty || d.opts.json || d.stopped {
		return
	}
	line := d.statusLine()
	if w := d.opts.width - 1; w > 0 {
		if r := []rune(line); len(r) > w {
			line = string(r[:w])
		}
	}
	io.WriteString(d.w, "\r\x1b[2K"+line)
	d.drawn = true
}

func (d *display) statusLine() string {
	elapsed := d.opts.now().Sub(d.start).Round(time.Second)
	s := fmt.Sprintf("%s %s  %d:%02d", spinnerFrames[d.frame%len(spinnerFrames)], d.cur, int(elapsed.Minutes()), int(elapsed.Seconds())%60)
	if d.cur != "pushing" || len(d.layers) == 0 {
		return s
	}
	var cur, total int64
	finished := 0
	ids := make([]string, 0, len(d.layers))
	for id := range d.layers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		l := d.layers[id]
		if l.finished {
			finished++
			cur += l.total
		} else {
			cur += min(l.current, l.total)
		}
		total += l.total
	}
	frac := 0.0
	switch {
	case total > 0:
		frac = float64(cur) / float64(total)
	case len(d.layers) > 0:
		frac = float64(finished) / float64(len(d.layers))
	}
	const width = 24
	filled := int(frac*width + 0.5)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	s += fmt.Sprintf("  %s %3d%%  %d/%d layers", bar, int(frac*100+0.5), finished, len(d.layers))
	if total > 0 {
		s += "  " + bytesText(cur) + " / " + bytesText(total)
	}
	return s
}

func bytesText(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, u := float64(n), 0
	for f >= unit && u < 4 {
		f /= unit
		u++
	}
	return fmt.Sprintf("%.1f %cB", f, "kMGT"[u-1])
}
