package server

import (
	"context"
	"net/http"
	"regexp"
	"strings"

	"github.com/binderbuild/binderbuild/auth"
)

// Authenticator identifies the caller holding token (auth.New). It returns
// (nil, nil) for a token it does not accept; an error is a failure to
// check (its text, if an *auth.Error, is shown to the client).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*auth.User, error)
}

// authHeader matches JupyterHub's token header: "token <t>" or
// "bearer <t>", case-insensitively.
var authHeader = regexp.MustCompile(`(?i)^(?:token|bearer)\s+(.+)$`)

// requestToken returns the token of the Authorization header, if any.
func requestToken(r *http.Request) string {
	m := authHeader.FindStringSubmatch(strings.TrimSpace(r.Header.Get("Authorization")))
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

// authenticate runs §2 step 3. With authentication off it returns nil.
func (s *Server) authenticate(r *http.Request) (*auth.User, error) {
	if s.deps.Auth == nil {
		return nil, nil
	}
	token := requestToken(r)
	if token == "" {
		return nil, userError(http.StatusForbidden, "Forbidden")
	}
	u, err := s.deps.Auth.Authenticate(r.Context(), token)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, userError(http.StatusForbidden, "Forbidden")
	}
	return u, nil
}
