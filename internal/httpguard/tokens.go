package httpguard

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Tokens is a set of bearer tokens, each standing for a name (the
// identity that owns, say, an MCP task). It is the one place mailroom
// compares a token a client sent with configured ones: by their SHA-256,
// in constant time, against every token, so that the time taken says
// nothing about which token, or how much of one, matched. A nil or empty
// Tokens matches nothing. It is safe for concurrent use.
type Tokens struct {
	sums  [][sha256.Size]byte
	names []string
}

// NewTokens returns the set of tokens in named, a map from token to
// name. Empty tokens are left out.
func NewTokens(named map[string]string) *Tokens {
	t := &Tokens{}
	for tok, name := range named {
		if tok == "" {
			continue
		}
		t.sums = append(t.sums, sha256.Sum256([]byte(tok)))
		t.names = append(t.names, name)
	}
	return t
}

// Empty reports whether t holds no token, which means no authentication.
func (t *Tokens) Empty() bool { return t == nil || len(t.sums) == 0 }

// Match returns the name of the token equal to token (surrounding spaces
// ignored) and true, or "" and false.
func (t *Tokens) Match(token string) (name string, ok bool) {
	if t.Empty() {
		return "", false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	found := -1
	for i := range t.sums {
		if subtle.ConstantTimeCompare(sum[:], t.sums[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return t.names[found], true
}

// Authenticate returns the name of the token r carries as
// "Authorization: Bearer <token>" and true, or "" and false when it
// carries none or an unknown one.
func (t *Tokens) Authenticate(r *http.Request) (name string, ok bool) {
	token, ok := BearerToken(r)
	if !ok {
		return "", false
	}
	return t.Match(token)
}

// BearerToken returns the token of r's "Authorization: Bearer" header
// (the scheme is case-insensitive) and whether there is one.
func BearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// Challenge answers 401 with a Bearer challenge and msg as the JSON
// error, for a request [Tokens.Authenticate] refused.
func Challenge(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="mailroom"`)
	refuse(w, http.StatusUnauthorized, msg)
}
