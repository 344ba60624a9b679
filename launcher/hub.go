package launcher

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/binderbuild/binderbuild/internal/wait"
)

// hubError is an answer of the Hub API with an error status. body is
// logged, never shown to users.
type hubError struct {
	method, path string
	status       int
	body         string
}

func (e *hubError) Error() string {
	return fmt.Sprintf("hub API %s %s: %d %s", e.method, e.path, e.status, e.body)
}

// maxErrorBody bounds what is kept of an error answer for the log.
const maxErrorBody = 4 << 10

// request makes one Hub API request with upstream's retries: an answer of
// 500 or more, or no answer at all, is retried after RetryDelay, doubling
// each time, up to Retries attempts; a 409 on a retry means the first
// attempt went through. The caller closes the body of the response.
func (l *Launcher) request(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	delay := l.cfg.RetryDelay
	var err error
	for i := 1; i <= l.cfg.Retries; i++ {
		var resp *http.Response
		resp, err = l.do(ctx, method, path, body)
		switch {
		case err == nil && resp.StatusCode < 400:
			return resp, nil
		case err == nil && i > 1 && resp.StatusCode == http.StatusConflict:
			l.log.WarnContext(ctx, "treating 409 conflict on retry as success", "path", path)
			return resp, nil
		case err == nil:
			err = readError(method, path, resp)
			if resp.StatusCode < 500 {
				return nil, err
			}
		}
		if ctx.Err() != nil {
			return nil, err
		}
		l.log.ErrorContext(ctx, "error accessing Hub API", "url", l.api+path, "attempt", i, "error", err)
		if i == l.cfg.Retries {
			break
		}
		if serr := wait.Sleep(ctx, delay); serr != nil {
			return nil, err
		}
		delay *= 2
	}
	return nil, err
}

// do sends one request with the service's token.
func (l *Launcher) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.api+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "token "+l.cfg.HubAPIToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return l.client.Do(req)
}

func readError(method, path string, resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &hubError{method: method, path: path, status: resp.StatusCode, body: strings.TrimSpace(string(b))}
}

// call makes a request and reads its answer, at most limit bytes.
func (l *Launcher) call(ctx context.Context, method, path string, body []byte, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
	defer cancel()
	resp, err := l.request(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("hub API %s %s: answer larger than %d bytes", method, path, limit)
	}
	return b, nil
}

// quote escapes a path segment as Python's quote(s, safe="@~") does, the
// escaping JupyterHub uses for user names in URLs.
func quote(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '_', c == '.', c == '-', c == '~', c == '@':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// Check is the hub's health check, as upstream's "JupyterHub API" check:
// GET <api>health answers 200.
func (l *Launcher) Check(ctx context.Context) error {
	status, err := l.once(ctx, http.MethodGet, "health")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %shealth: %d", l.api, status)
	}
	return nil
}
