// Package redact is the one rule for hiding secrets from what mailroom shows
// or stores: the mask, which headers count as credentials, URL passwords,
// and the secret fields of sources and destinations. Every page, API answer,
// log line and stored request that could carry a secret goes through it, so
// the rule cannot diverge between them. The owners of entries with secrets
// say which fields are secret ([store.Destination.Redacted]) with it.
package redact

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mailroomhq/mailroom/internal/verify"
)

// Mask is what is shown in place of a secret. The admin API takes it back
// on a PUT to mean "keep the stored secret".
const Mask = "********"

// Secret returns [Mask] for a non-empty s, and "" for "".
func Secret(s string) string {
	if s == "" {
		return ""
	}
	return Mask
}

// SensitiveHeader reports whether a header, by its name, is likely to carry
// a credential (Authorization, Cookie, Set-Cookie, or a name containing
// token, secret, key, password, auth, signature or session), and so is
// masked whenever it is shown.
func SensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie", "set-cookie":
		return true
	}
	for _, w := range []string{"token", "secret", "key", "password", "auth", "signature", "session"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Headers returns a copy of h in which the values of every
// [SensitiveHeader] are masked, for display. A nil h gives nil.
func Headers(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		c := make([]string, len(vs))
		for i, v := range vs {
			if SensitiveHeader(k) {
				v = Secret(v)
			}
			c[i] = v
		}
		out[k] = c
	}
	return out
}

// Credentials returns h with the credentials that must not be stored
// masked: Authorization, Proxy-Authorization, Cookie and the named extra
// headers (a source's static key or token). Unlike [Headers] it keeps
// signatures, which are useless without the secret and which `mailroom
// listen` and replays forward so that the receiver can check them.
//
// h is never changed: the result is a copy when there is something to
// mask, and h itself when there is not (most webhooks carry no such
// header; a copy of every request's headers was a measurable share of
// ingest's CPU). So the result must not be changed either.
func Credentials(h http.Header, extra ...string) http.Header {
	if !holdsCredentials(h, extra) {
		return h
	}
	out := h.Clone()
	for _, k := range credentialHeaders {
		maskValues(out, k)
	}
	for _, k := range extra {
		maskValues(out, http.CanonicalHeaderKey(k))
	}
	return out
}

// holdsCredentials reports whether h has a value to mask in one of the
// credential headers or the extra ones.
func holdsCredentials(h http.Header, extra []string) bool {
	for _, k := range credentialHeaders {
		if len(h[k]) > 0 {
			return true
		}
	}
	for _, k := range extra {
		if len(h[http.CanonicalHeaderKey(k)]) > 0 {
			return true
		}
	}
	return false
}

// credentialHeaders are the headers [Credentials] always masks, in
// canonical form.
var credentialHeaders = [...]string{"Authorization", "Proxy-Authorization", "Cookie"}

// maskValues masks the values of h's header k (canonical).
func maskValues(h http.Header, k string) {
	vs := h[k]
	for i := range vs {
		vs[i] = Secret(vs[i])
	}
}

// URL masks the password of a URL that carries one; any other string is
// returned as is.
func URL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	// url.URL escapes '*' in userinfo, so swap the mask into the standard
	// redaction's placeholder instead.
	return strings.Replace(u.Redacted(), ":xxxxx@", ":"+Mask+"@", 1)
}

// Verify returns a copy of v with its secrets masked: secret, secrets,
// password and verify_token. Public keys and header names are kept.
func Verify(v verify.Config) verify.Config {
	v.Secret = Secret(v.Secret)
	if len(v.Secrets) > 0 {
		ss := make([]string, len(v.Secrets))
		for i, s := range v.Secrets {
			ss[i] = Secret(s)
		}
		v.Secrets = ss
	}
	v.Password = Secret(v.Password)
	v.VerifyToken = Secret(v.VerifyToken)
	return v
}

// secretKeys are the JSON object keys whose string values [JSON] masks.
var secretKeys = []string{"token", "secret", "secrets", "password", "client_secret", "signing_secret", "private_key", "api_key"}

// JSON returns b, a JSON document, with the string values of secret-named
// keys (token, secret, secrets, password, client_secret, signing_secret,
// private_key, api_key, and any key ending in _secret, _password or
// _token) masked, and the passwords of URLs in every string masked. It is
// the last line of defence of what mailroom keeps of an answer (the
// audit log): the views it is given are already redacted. Numbers keep
// their exact text. A b that is not JSON gives nil.
func JSON(b []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	out, err := json.Marshal(maskJSON(v, false))
	if err != nil {
		return nil
	}
	return out
}

func secretKey(k string) bool {
	k = strings.ToLower(k)
	if slices.Contains(secretKeys, k) {
		return true
	}
	return strings.HasSuffix(k, "_secret") || strings.HasSuffix(k, "_password") || strings.HasSuffix(k, "_token")
}

func maskJSON(v any, secret bool) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = maskJSON(e, secret || secretKey(k))
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = maskJSON(e, secret)
		}
		return x
	case string:
		if secret {
			return Secret(x)
		}
		return URL(x)
	}
	return v
}
