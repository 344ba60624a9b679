// Package web is binderbuild's build page: hand-written HTML, CSS and
// JavaScript embedded in the binary. The page lists the providers of
// /api/repoproviders, streams /build with fetch() and shows the phases, the
// log, push progress and the image name. It needs no Node.js to build.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// csp allows only the page's own scripts, styles and requests: server data
// that slipped into markup could not run.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type asset struct {
	body []byte
	typ  string
	etag string
}

// handler serves the page and its assets under one base URL.
type handler struct {
	base   string
	launch bool // the service launches servers: /v2/ pages and badges
	// banner and about are the operator's HTML at the top and the foot of
	// the page.
	banner, about string
	index         asset
	assets        map[string]asset // by name under {base}ui/
}

// Option changes what Handler serves.
type Option func(*handler)

// WithLaunch serves the pages of launch mode: {base}v2/<provider>/<spec>,
// which builds if needed, launches and then opens the server, the launch
// link and badge of the form, and the badges {base}badge.svg and
// {base}badge_logo.svg.
func WithLaunch() Option { return func(h *handler) { h.launch = true } }

// WithMessages shows banner at the top of the page and about at its foot
// (upstream's banner_message and about_message). Both are HTML inserted as
// they are: they come from the operator, never from requests. The page's
// Content-Security-Policy still keeps scripts, styles and images in them
// from running or loading from elsewhere.
func WithMessages(banner, about string) Option {
	return func(h *handler) { h.banner, h.about = banner, about }
}

// Handler returns the page's handler for the service mounted at base (a
// path that starts and ends with "/", as server.NormalizeBaseURL returns).
// It answers GET and HEAD of:
//   - {base} and {base}ui/: the page;
//   - with WithLaunch, {base}v2/...: the page, launching; {base}badge.svg
//     and {base}badge_logo.svg;
//   - {base}ui: a redirect to {base}ui/;
//   - {base}ui/app.js, {base}ui/app.css: the assets;
//
// and 404 for any other path. The page finds the API at {base}, so one
// handler serves both mount points.
func Handler(base string, opts ...Option) http.Handler {
	h := &handler{base: base, assets: make(map[string]asset)}
	for _, o := range opts {
		o(h)
	}
	err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(path)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path, "static/")
		if name == "index.html" {
			body = bytes.ReplaceAll(body, []byte("{{BASE}}"), []byte(html.EscapeString(base)))
			body = bytes.ReplaceAll(body, []byte("{{LAUNCH}}"), []byte(strconv.FormatBool(h.launch)))
			// The foot first: the banner's placeholder comes before it, so
			// neither message can stand in for the other's.
			body = bytes.Replace(body, []byte("{{ABOUT}}"), []byte(h.about), 1)
			body = bytes.Replace(body, []byte("{{BANNER}}"), []byte(h.banner), 1)
			h.index = newAsset(body, "text/html; charset=utf-8")
			return nil
		}
		h.assets[name] = newAsset(body, contentType(name))
		return nil
	})
	if err != nil {
		panic("web: embedded files unreadable: " + err.Error()) // cannot happen with embed
	}
	return h
}

func newAsset(body []byte, typ string) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, typ: typ, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".js"):
		return "text/javascript; charset=utf-8"
	case strings.HasSuffix(name, ".css"):
		return "text/css; charset=utf-8"
	case strings.HasSuffix(name, ".html"):
		return "text/html; charset=utf-8"
	case strings.HasSuffix(name, ".png"):
		return "image/png"
	case strings.HasSuffix(name, ".svg"):
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	ui := h.base + "ui/"
	var a asset
	switch {
	case p == h.base || p == ui:
		a = h.index
	case h.launch && strings.HasPrefix(p, h.base+"v2/"):
		a = h.index
	case h.launch && (p == h.base+"badge.svg" || p == h.base+"badge_logo.svg"):
		a = h.assets[strings.TrimPrefix(p, h.base)]
	case p == h.base+"ui":
		target := ui
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	case strings.HasPrefix(p, ui):
		var ok bool
		if a, ok = h.assets[strings.TrimPrefix(p, ui)]; !ok {
			http.NotFound(w, r)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.typ)
	hd.Set("ETag", a.etag)
	// Revalidate every time: the files change with the binary, and the
	// ETag turns a revalidation into a 304.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", csp)
	hd.Set("Referrer-Policy", "same-origin")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
