package store

import "github.com/mailroomhq/mailroom/internal/redact"

// Redacted returns a copy of d for display: its signing secret, the values
// of its sensitive headers and any password in its URL masked with
// [redact.Mask].
func (d Destination) Redacted() Destination {
	d.Sign.Secret = redact.Secret(d.Sign.Secret)
	if len(d.Headers) > 0 {
		hs := make(map[string]string, len(d.Headers))
		for k, v := range d.Headers {
			if redact.SensitiveHeader(k) {
				v = redact.Secret(v)
			}
			hs[k] = v
		}
		d.Headers = hs
	}
	d.URL = redact.URL(d.URL)
	d.Proxy = redact.URL(d.Proxy)
	d.Auth.ClientSecret = redact.Secret(d.Auth.ClientSecret)
	return d
}

// Redacted returns a copy of s for display, its verify secrets masked.
func (s Source) Redacted() Source {
	s.Verify = redact.Verify(s.Verify)
	return s
}
