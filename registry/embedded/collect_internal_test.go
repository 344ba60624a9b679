package embedded

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// clocked is a registry on a test clock, served on loopback.
type clocked struct {
	t    *testing.T
	reg  *Registry
	base string
	now  time.Time
}

func newClocked(t *testing.T, cfg Config) *clocked {
	t.Helper()
	reg, err := Open(t.TempDir(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &clocked{t: t, reg: reg, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	reg.now = func() time.Time { return c.now }
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	c.base = srv.URL
	return c
}

// do sends a request and returns its status and Location header.
func (c *clocked) do(method, path string, body []byte) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// push uploads data as a blob of repository r and returns its digest.
func (c *clocked) push(data []byte) string {
	c.t.Helper()
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if code, _ := c.do("POST", "/v2/r/blobs/uploads/?digest="+d, data); code != http.StatusCreated {
		c.t.Fatalf("push blob = %d, want 201", code)
	}
	return d
}

func (c *clocked) collect(want int) {
	c.t.Helper()
	got, err := c.reg.Collect()
	if err != nil {
		c.t.Fatal(err)
	}
	if got.Blobs != want {
		c.t.Fatalf("at %s: Collect deleted %d blobs, want %d", c.now.Format(time.Kitchen), got.Blobs, want)
	}
}

// TestCollectSparesBlobsInUse keeps unreferenced blobs that a push may
// still name in its manifest: recently uploaded or found by HEAD, or
// completed while an older upload is still open.
func TestCollectSparesBlobsInUse(t *testing.T) {
	c := newClocked(t, Config{GCGrace: time.Hour})
	t0 := c.now

	_, open := c.do("POST", "/v2/r/blobs/uploads/", nil)
	c.now = t0.Add(time.Minute)
	x := c.push([]byte("blob x"))
	c.now = t0.Add(30 * time.Minute)
	c.collect(0) // within the grace

	c.now = t0.Add(4 * time.Hour)
	if code, _ := c.do("PATCH", open, []byte("more")); code != http.StatusAccepted {
		t.Fatalf("PATCH of the open upload = %d, want 202", code)
	}
	c.now = t0.Add(5 * time.Hour)
	c.collect(0) // completed after the open upload started
	if code, _ := c.do("DELETE", open, nil); code != http.StatusNoContent {
		t.Fatalf("cancel upload = %d, want 204", code)
	}
	c.collect(1)
	if code, _ := c.do("HEAD", "/v2/r/blobs/"+x, nil); code != http.StatusNotFound {
		t.Errorf("HEAD of the collected blob = %d, want 404", code)
	}

	y := c.push([]byte("blob y"))
	c.now = t0.Add(7 * time.Hour)
	if code, _ := c.do("HEAD", "/v2/r/blobs/"+y, nil); code != http.StatusOK {
		t.Fatalf("HEAD y = %d, want 200", code)
	}
	c.now = t0.Add(7*time.Hour + 30*time.Minute)
	c.collect(0) // found by HEAD within the grace
	c.now = t0.Add(9 * time.Hour)
	c.collect(1)
}

// TestExpireUploads drops the uploads without a request for UploadTTL,
// with their data, and keeps the others.
func TestExpireUploads(t *testing.T) {
	c := newClocked(t, Config{UploadTTL: time.Hour})
	t0 := c.now
	_, idle := c.do("POST", "/v2/r/blobs/uploads/", nil)
	_, busy := c.do("POST", "/v2/r/blobs/uploads/", nil)
	c.now = t0.Add(50 * time.Minute)
	if code, _ := c.do("PATCH", busy, []byte("data")); code != http.StatusAccepted {
		t.Fatalf("PATCH = %d, want 202", code)
	}
	c.now = t0.Add(70 * time.Minute)
	if n := c.reg.expireUploads(); n != 1 {
		t.Errorf("expireUploads at 70m = %d, want 1", n)
	}
	if code, _ := c.do("PATCH", idle, []byte("late")); code != http.StatusNotFound {
		t.Errorf("PATCH of the expired upload = %d, want 404", code)
	}
	if code, _ := c.do("PATCH", busy, []byte("data")); code != http.StatusAccepted {
		t.Errorf("PATCH of the live upload = %d, want 202", code)
	}
	c.now = t0.Add(131 * time.Minute)
	if n := c.reg.expireUploads(); n != 1 {
		t.Errorf("expireUploads at 131m = %d, want 1", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(c.reg.dir, "uploads")); len(entries) != 0 {
		t.Errorf("%d upload files left, want none", len(entries))
	}
}
