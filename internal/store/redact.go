package store

import (
	"net/http"
	"net/url"
	"strings"
)

// redactedMask replaces a secret in anything shown to an operator.
const redactedMask = "********"

// SensitiveHeader reports whether a header, by its name, is likely to carry
// a credential (Authorization, Cookie, or a name containing token, secret,
// key, password, auth, signature or session), and so is masked whenever it
// is shown.
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

// RedactHeaders returns a copy of h in which the values of every
// [SensitiveHeader] are masked. A nil h gives nil.
func RedactHeaders(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		c := make([]string, len(vs))
		for i, v := range vs {
			if SensitiveHeader(k) && v != "" {
				v = redactedMask
			}
			c[i] = v
		}
		out[k] = c
	}
	return out
}

// Redacted returns a copy of d for display: its signing secret, the values
// of its sensitive headers and any password in its URL are masked.
func (d Destination) Redacted() Destination {
	if d.Sign.Secret != "" {
		d.Sign.Secret = redactedMask
	}
	if len(d.Headers) > 0 {
		hs := make(map[string]string, len(d.Headers))
		for k, v := range d.Headers {
			if SensitiveHeader(k) && v != "" {
				v = redactedMask
			}
			hs[k] = v
		}
		d.Headers = hs
	}
	if u, err := url.Parse(d.URL); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			// url.URL escapes '*' in userinfo, so swap the mask into the
			// standard redaction's placeholder instead.
			d.URL = strings.Replace(u.Redacted(), ":xxxxx@", ":"+redactedMask+"@", 1)
		}
	}
	return d
}
