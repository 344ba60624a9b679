package auth

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidBuildToken is every build-token failure, as upstream (§9.5).
var ErrInvalidBuildToken = errors.New("invalid build token")

// BuildTokens checks BinderHub build tokens: HS256 JWTs that upstream's
// /v2/ page mints with exp, aud "<provider>/<raw spec>" and origin claims.
// As PyJWT's decode in upstream's check_build_token, a token must carry
// exp and aud, and exp, nbf and iat are honoured when present.
type BuildTokens struct {
	// Secret signs the tokens. Without it every token is invalid
	// (upstream's default secret is random per process).
	Secret []byte
	// CheckOrigin requires the origin claim to equal the request's origin.
	CheckOrigin bool
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// buildClaims are the claims of a build token.
type buildClaims struct {
	Origin string `json:"origin"`
	jwt.RegisteredClaims
}

// Verify checks token for the audience aud ("<provider>/<raw spec>") and a
// request from origin (Origin). Every failure is ErrInvalidBuildToken.
func (b BuildTokens) Verify(token, aud, origin string) error {
	if len(b.Secret) == 0 {
		return ErrInvalidBuildToken
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if b.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(b.Now))
	}
	var claims buildClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return b.Secret, nil }, opts...)
	if err != nil || (b.CheckOrigin && claims.Origin != origin) {
		return ErrInvalidBuildToken
	}
	return nil
}

// Origin is upstream's origin of a build token: the host of the Origin
// header if present, else the Host header.
func Origin(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return r.Host
}
