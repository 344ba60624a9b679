package auth

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
)

// TokenAuth accepts a fixed set of bearer tokens, each with a name used for
// rate limiting and logs. Tokens are compared by SHA-256 digest in constant
// time, every configured token each time.
type TokenAuth struct {
	tokens []namedToken
}

type namedToken struct {
	name   string
	digest [sha256.Size]byte
}

// LoadTokenAuth reads a tokens file: one token per line, optionally
// preceded by a name and whitespace; blank lines and # comments are skipped.
// Unnamed tokens are named "token-<line>".
func LoadTokenAuth(path string) (*TokenAuth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ta := &TokenAuth{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		var name, token string
		switch len(fields) {
		case 1:
			name, token = fmt.Sprintf("token-%d", n), fields[0]
		case 2:
			name, token = fields[0], fields[1]
		default:
			return nil, fmt.Errorf("%s line %d: want a token, or a name and a token", path, n)
		}
		ta.tokens = append(ta.tokens, namedToken{name: name, digest: sha256.Sum256([]byte(token))})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ta.tokens) == 0 {
		return nil, fmt.Errorf("%s holds no tokens", path)
	}
	return ta, nil
}

// Authenticate implements Authenticator.
func (a *TokenAuth) Authenticate(_ context.Context, token string) (*User, error) {
	d := sha256.Sum256([]byte(token))
	found := -1
	for i, t := range a.tokens {
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return nil, nil
	}
	return &User{Name: a.tokens[found].name, Kind: "token"}, nil
}
