package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/binderbuild/binderbuild/server"
	"github.com/binderbuild/binderbuild/web"
)

func TestHandler(t *testing.T) {
	h := web.Handler("/services/binder/")
	tests := []struct {
		name, method, path string
		status             int
		typ                string // Content-Type prefix
		body               string // substring of the body
		location           string
	}{
		{"page at base", "GET", "/services/binder/", 200, "text/html", `<meta name="binderbuild-base" content="/services/binder/">`, ""},
		{"page under ui", "GET", "/services/binder/ui/", 200, "text/html", `src="/services/binder/ui/app.js"`, ""},
		{"head", "HEAD", "/services/binder/ui/", 200, "text/html", "", ""},
		{"script", "GET", "/services/binder/ui/app.js", 200, "text/javascript", "readEvents", ""},
		{"style", "GET", "/services/binder/ui/app.css", 200, "text/css", ".ansi-fg-1", ""},
		{"ui without slash", "GET", "/services/binder/ui?repo=a", 301, "", "", "/services/binder/ui/?repo=a"},
		{"unknown asset", "GET", "/services/binder/ui/nope.js", 404, "", "", ""},
		{"index by name", "GET", "/services/binder/ui/index.html", 404, "", "", ""},
		{"outside base", "GET", "/other/", 404, "", "", ""},
		{"post", "POST", "/services/binder/ui/", 405, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("%s %s: status = %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
			}
			if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, tc.typ) {
				t.Errorf("%s %s: Content-Type = %q, want prefix %q", tc.method, tc.path, got, tc.typ)
			}
			if !strings.Contains(string(body), tc.body) {
				t.Errorf("%s %s: body does not contain %q", tc.method, tc.path, tc.body)
			}
			if got := res.Header.Get("Location"); got != tc.location {
				t.Errorf("%s %s: Location = %q, want %q", tc.method, tc.path, got, tc.location)
			}
			if tc.status == 200 {
				if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
					t.Errorf("%s %s: Content-Security-Policy = %q, want script-src 'self'", tc.method, tc.path, csp)
				}
				if res.Header.Get("ETag") == "" {
					t.Errorf("%s %s: no ETag", tc.method, tc.path)
				}
			}
		})
	}
}

func TestHandlerLaunch(t *testing.T) {
	for _, launch := range []bool{false, true} {
		var opts []web.Option
		if launch {
			opts = append(opts, web.WithLaunch())
		}
		h := web.Handler("/b/", opts...)
		pageStatus := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[launch]
		for _, tc := range []struct {
			path, typ, body string
			status          int
		}{
			{"/b/", "text/html", `<meta name="binderbuild-launch" content="` + strconv.FormatBool(launch) + `">`, http.StatusOK},
			{"/b/v2/gh/org/repo/HEAD?urlpath=lab", "text/html", `<meta name="binderbuild-launch" content="true">`, pageStatus},
			{"/b/badge.svg", "image/svg+xml", "launch", pageStatus},
			{"/b/badge_logo.svg", "image/svg+xml", "launch", pageStatus},
		} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			if rec.Code != tc.status {
				t.Errorf("launch %v: GET %s = %d, want %d", launch, tc.path, rec.Code, tc.status)
				continue
			}
			if tc.status == http.StatusOK && (!strings.HasPrefix(rec.Header().Get("Content-Type"), tc.typ) || !strings.Contains(rec.Body.String(), tc.body)) {
				t.Errorf("launch %v: GET %s = %s, want %s containing %q", launch, tc.path, rec.Header().Get("Content-Type"), tc.typ, tc.body)
			}
		}
	}
}

// TestHandlerMessages: the operator's banner and about messages are on the
// page where they belong, even when each names the other's placeholder.
func TestHandlerMessages(t *testing.T) {
	for _, tc := range []struct {
		name, banner, about string
		want                []string
	}{
		{"none", "", "", []string{`<div id="banner" class="banner"></div>`, `<footer id="about" class="about"></footer>`}},
		{"both", `Run by <a href="https://example.org/">us</a>`, "<p>About {{BANNER}}</p>", []string{
			`<div id="banner" class="banner">Run by <a href="https://example.org/">us</a></div>`,
			`<footer id="about" class="about"><p>About {{BANNER}}</p></footer>`}},
		{"banner naming the foot's placeholder", "{{ABOUT}}", "foot", []string{
			`<div id="banner" class="banner">{{ABOUT}}</div>`, `<footer id="about" class="about">foot</footer>`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			web.Handler("/", web.WithMessages(tc.banner, tc.about)).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			for _, want := range tc.want {
				if !strings.Contains(rec.Body.String(), want) {
					t.Errorf("page lacks %s:\n%s", want, rec.Body.String())
				}
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	h := web.Handler("/")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/app.js", nil))
	etag := rec.Result().Header.Get("ETag")
	req := httptest.NewRequest("GET", "/ui/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("GET with If-None-Match %s: status = %d, want 304", etag, rec.Code)
	}
}

func TestHandlerEscapesBase(t *testing.T) {
	h := web.Handler(`/a"><script>x</script>/`)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", `/a"><script>x</script>/ui/`, nil))
	body := rec.Body.String()
	if strings.Contains(body, "<script>x") {
		t.Errorf("base URL reached the page unescaped:\n%s", body)
	}
	if !strings.Contains(body, `content="/a&#34;&gt;&lt;script&gt;x&lt;/script&gt;/"`) {
		t.Errorf("page does not carry the escaped base URL:\n%s", body)
	}
}

// TestPageHasNoThirdPartyCode keeps the page self-contained: no CDN links,
// no inline scripts or styles (the Content-Security-Policy forbids them).
func TestPageHasNoThirdPartyCode(t *testing.T) {
	h := web.Handler("/")
	for _, p := range []string{"/ui/", "/ui/app.js", "/ui/app.css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		body := rec.Body.String()
		for _, bad := range []string{`src="http`, `href="http`, "url(http", "@import", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", " style=\"", "<script>"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
	}
}

// TestServerMountsPage checks the routes server.New gives the page: always
// under {base}ui/, at {base} only outside API-only mode.
func TestServerMountsPage(t *testing.T) {
	for _, apiOnly := range []bool{true, false} {
		srv := server.New(t.Context(), server.Config{BaseURL: "/binder", APIOnly: apiOnly}, server.Deps{UI: web.Handler("/binder/")})
		// The page at the root in API-only mode too; launch pages only
		// with a launcher.
		for path, want := range map[string]int{
			"/binder/ui/":                 http.StatusOK,
			"/binder/ui/app.js":           http.StatusOK,
			"/binder/ui":                  http.StatusMovedPermanently,
			"/binder/":                    http.StatusOK,
			"/binder/v2/gh/org/repo/HEAD": http.StatusNotFound,
			"/binder/badge_logo.svg":      http.StatusNotFound,
		} {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if rec.Code != want {
				t.Errorf("APIOnly %v: GET %s = %d, want %d", apiOnly, path, rec.Code, want)
			}
		}
	}
}
