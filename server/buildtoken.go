package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// errInvalidBuildToken is every build-token failure, as upstream (§9.5).
var errInvalidBuildToken = errors.New("invalid build token")

// verifyBuildToken checks a BinderHub build token: an HS256 JWT whose aud is
// "<provider>/<raw spec>", with exp in the future and, when checkOrigin, an
// origin claim equal to origin. Without a secret every token is invalid
// (upstream's default secret is random per process).
func verifyBuildToken(secret []byte, token, aud, origin string, checkOrigin bool, now time.Time) error {
	if len(secret) == 0 {
		return errInvalidBuildToken
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errInvalidBuildToken
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil || header.Alg != "HS256" {
		return errInvalidBuildToken
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return errInvalidBuildToken
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return errInvalidBuildToken
	}
	var claims struct {
		Exp    *float64        `json:"exp"`
		Aud    json.RawMessage `json:"aud"`
		Origin string          `json:"origin"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return errInvalidBuildToken
	}
	if claims.Exp == nil || float64(now.Unix()) >= *claims.Exp {
		return errInvalidBuildToken
	}
	if !audienceMatches(claims.Aud, aud) {
		return errInvalidBuildToken
	}
	if checkOrigin && claims.Origin != origin {
		return errInvalidBuildToken
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// audienceMatches accepts aud as a string or a list of strings (RFC 7519).
func audienceMatches(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, a := range many {
			if a == want {
				return true
			}
		}
	}
	return false
}

// requestOrigin is upstream's origin of a build token: the host of the
// Origin header if present, else the Host header.
func requestOrigin(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return r.Host
}
