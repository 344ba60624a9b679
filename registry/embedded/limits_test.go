package embedded_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild/internal/testlog"
	"github.com/binderbuild/binderbuild/registry/embedded"
)

// send sends a request with body (streamed without a length when
// unsized) and returns the response's status and error code.
func send(t *testing.T, method, url string, body []byte, unsized bool) (int, string, string) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if unsized {
		r = io.MultiReader(r) // hides the length: chunked encoding
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Errors []struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&e)
	code := ""
	if len(e.Errors) > 0 {
		code = e.Errors[0].Code
	}
	return resp.StatusCode, code, resp.Header.Get("Location")
}

func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestUploadLimit refuses blobs over MaxUploadSize, however they are sent,
// and deletes what was written of them.
func TestUploadLimit(t *testing.T) {
	dir := t.TempDir()
	host, _ := start(t, dir, embedded.Config{MaxUploadSize: 1000})
	base := "http://" + host
	full, over := bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 1001)

	if code, _, _ := send(t, "POST", base+"/v2/r/blobs/uploads/?digest="+sha(full), full, false); code != http.StatusCreated {
		t.Errorf("monolithic upload at the limit = %d, want 201", code)
	}
	for _, unsized := range []bool{false, true} {
		code, ecode, _ := send(t, "POST", base+"/v2/r/blobs/uploads/?digest="+sha(over), over, unsized)
		if code != http.StatusRequestEntityTooLarge || ecode != "SIZE_INVALID" {
			t.Errorf("monolithic upload over the limit (unsized %v) = %d %s, want 413 SIZE_INVALID", unsized, code, ecode)
		}
		_, _, loc := send(t, "POST", base+"/v2/r/blobs/uploads/", nil, false)
		if code, _, _ := send(t, "PATCH", base+loc, over[:600], unsized); code != http.StatusAccepted {
			t.Fatalf("first chunk = %d, want 202", code)
		}
		if code, ecode, _ := send(t, "PATCH", base+loc, over[600:], unsized); code != http.StatusRequestEntityTooLarge || ecode != "SIZE_INVALID" {
			t.Errorf("chunk past the limit (unsized %v) = %d %s, want 413 SIZE_INVALID", unsized, code, ecode)
		}
		if code, ecode, _ := send(t, "PUT", base+loc+"?digest="+sha(over), nil, false); code != http.StatusNotFound || ecode != "BLOB_UPLOAD_UNKNOWN" {
			t.Errorf("PUT after the refused chunk = %d %s, want 404 BLOB_UPLOAD_UNKNOWN", code, ecode)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(entries) != 0 {
		t.Errorf("%d upload files left, want none", len(entries))
	}
}

// TestUploadsExpireWhileServing: Serve runs the expiry of abandoned uploads.
func TestUploadsExpireWhileServing(t *testing.T) {
	dir := t.TempDir()
	host, _ := start(t, dir, embedded.Config{UploadTTL: 50 * time.Millisecond})
	_, _, loc := send(t, "POST", "http://"+host+"/v2/r/blobs/uploads/", nil, false)
	eventually(t, "the abandoned upload's removal", func() bool {
		entries, _ := os.ReadDir(filepath.Join(dir, "uploads"))
		return len(entries) == 0
	})
	if code, ecode, _ := send(t, "PATCH", "http://"+host+loc, []byte("late"), false); code != http.StatusNotFound || ecode != "BLOB_UPLOAD_UNKNOWN" {
		t.Errorf("PATCH of the expired upload = %d %s, want 404 BLOB_UPLOAD_UNKNOWN", code, ecode)
	}
}

// TestServeTimeouts: Serve closes connections that send headers too slowly
// or stay idle.
func TestServeTimeouts(t *testing.T) {
	host, _ := start(t, t.TempDir(), embedded.Config{ReadHeaderTimeout: 100 * time.Millisecond, IdleTimeout: 100 * time.Millisecond})
	closed := func(conn net.Conn, r io.Reader) bool {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, r)
		return err == nil // EOF: the server closed it
	}

	slow := dial(t, host)
	if _, err := io.WriteString(slow, "GET /v2/ HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	if !closed(slow, slow) {
		t.Error("connection with unfinished headers still open after 5s, want closed after ReadHeaderTimeout")
	}

	idle := dial(t, host)
	if _, err := io.WriteString(idle, "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ = %d, want 200", resp.StatusCode)
	}
	if !closed(idle, br) {
		t.Error("idle keep-alive connection still open after 5s, want closed after IdleTimeout")
	}
}

func dial(t *testing.T, host string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// addrListener is a loopback listener that reports another address, so
// that the warning for addresses beyond loopback is tested without
// listening on one.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

// TestServeWarnsBeyondLoopback logs one warning for an address other
// hosts can reach, none for loopback.
func TestServeWarnsBeyondLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		warns int
	}{
		{"127.0.0.1:5000", 0},
		{"[::1]:5000", 0},
		{"0.0.0.0:5000", 1},
		{"[::]:5000", 1},
		{"192.168.1.20:5000", 1},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			var logs testlog.Buffer
			reg, err := embedded.Open(t.TempDir(), embedded.Config{}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr, err := net.ResolveTCPAddr("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- reg.Serve(ctx, addrListener{ln, addr}) }()
			resp, err := http.Get("http://" + ln.Addr().String() + "/v2/") // Serve has started
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
			got := strings.Count(logs.String(), "level=WARN msg=\"the embedded registry listens beyond loopback")
			if got != tc.warns {
				t.Errorf("Serve on %s logged %d warnings, want %d:\n%s", tc.addr, got, tc.warns, logs.String())
			}
		})
	}
}
