package verify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strings"
)

// TwilioHeader carries Twilio's signature.
const TwilioHeader = "X-Twilio-Signature"

// Twilio verifies Twilio's X-Twilio-Signature: the base64 HMAC-SHA1, keyed
// with the account's auth token, of the full URL Twilio called followed,
// for a form-encoded POST, by every form parameter name and value sorted by
// name. A JSON body is covered instead by the bodySHA256 query parameter
// (the hex SHA-256 of the body), which is part of the signed URL. Because
// the URL is signed, the source must know its public URL: [Config.URL], or
// the URL rebuilt from the request. As Twilio's own libraries do, the URL is
// tried with the default port and without a port. Build one with [New].
type Twilio struct {
	keys [][]byte
	url  string
}

// Verify checks r's X-Twilio-Signature.
func (t *Twilio) Verify(r *Request) error {
	h := r.Header.Get(TwilioHeader)
	if h == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, TwilioHeader)
	}
	sig, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return fmt.Errorf("%w: %s is not base64", ErrMalformedSignature, TwilioHeader)
	}
	raw := t.url
	if raw == "" {
		raw = r.URL
	} else if q := queryOf(r.URL); q != "" && !strings.Contains(raw, "?") {
		raw += "?" + q // the configured URL names the endpoint; the query is the request's
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: url %.80q: %w", ErrMalformedSignature, raw, err)
	}
	var params url.Values
	if bodyHash := u.Query().Get("bodySHA256"); bodyHash != "" {
		sum := sha256.Sum256(r.Body)
		if !hmac.Equal([]byte(strings.ToLower(bodyHash)), []byte(hex.EncodeToString(sum[:]))) {
			return fmt.Errorf("%w: bodySHA256 does not match the body", ErrSignatureMismatch)
		}
	} else if isForm(r) {
		if params, err = url.ParseQuery(string(r.Body)); err != nil {
			return fmt.Errorf("%w: form body: %w", ErrMalformedSignature, err)
		}
	} else if len(r.Body) > 0 {
		// Twilio covers any other body with bodySHA256; without it the
		// signature would say nothing of the body.
		return fmt.Errorf("%w: a body that is not a form needs bodySHA256 in the URL", ErrMalformedSignature)
	}
	byName, byPair := twilioParams(params, false), twilioParams(params, true)
	for _, key := range t.keys {
		for _, candidate := range twilioURLVariants(u) {
			if hmac.Equal(twilioMAC(key, candidate, byName), sig) || hmac.Equal(twilioMAC(key, candidate, byPair), sig) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %s matches no auth token for %s", ErrSignatureMismatch, TwilioHeader, u.Redacted())
}

// queryOf returns the raw query of a URL string, or "".
func queryOf(s string) string {
	_, q, _ := strings.Cut(s, "?")
	return q
}

// isForm reports whether r's body is form-encoded (a POST without a
// Content-Type counts, as Twilio always sends one).
func isForm(r *Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded"
}

// twilioURLVariants returns u with the scheme's default port added (or
// as given, when it has a port) and u with any port removed: Twilio signs
// either form, and its libraries accept both.
func twilioURLVariants(u *url.URL) []string {
	with, without := *u, *u
	if u.Port() == "" {
		if port := map[string]string{"https": "443", "http": "80"}[u.Scheme]; port != "" {
			with.Host = u.Host + ":" + port
		}
	} else {
		without.Host = u.Hostname()
	}
	return []string{with.String(), without.String()}
}

// twilioParams returns the "name+value" strings Twilio appends to the URL:
// sorted by name, then by value, as Twilio's docs and its Python and Node
// libraries do. byPair sorts the concatenated strings instead, as its Go
// library does; the two differ only when one name is a prefix of another
// ("From", "FromCity"), so a verifier tries both.
func twilioParams(params url.Values, byPair bool) []string {
	var out []string
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		vs := slices.Clone(params[k])
		slices.Sort(vs)
		for _, v := range vs {
			out = append(out, k+v)
		}
	}
	if byPair {
		slices.Sort(out)
	}
	return out
}

// twilioMAC is the HMAC-SHA1 of url followed by the params.
func twilioMAC(key []byte, u string, params []string) []byte {
	m := hmac.New(sha1.New, key)
	m.Write([]byte(u))
	for _, p := range params {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func twilioProvider() *Provider {
	return &Provider{
		Name: "twilio", Title: "Twilio",
		Scheme:    "X-Twilio-Signature: <base64 HMAC-SHA1 of the public URL + sorted form parameters> (JSON bodies: bodySHA256 in the URL); needs the public URL",
		Fields:    []string{"secret*", "url"},
		IDHeader:  "I-Twilio-Idempotency-Token",
		DedupKey:  `"i-twilio-idempotency-token" in headers ? headers["i-twilio-idempotency-token"] : ""`,
		EventType: `"MessageStatus" in body ? "message." + body.MessageStatus : ("CallStatus" in body ? "call." + body.CallStatus : ("SmsStatus" in body ? "message." + body.SmsStatus : ""))`,
		Headers:   []string{TwilioHeader, "I-Twilio-Idempotency-Token"},
		build: func(c Config, _ *Options) (Verifier, error) {
			keys, err := requireSecrets(c)
			if err != nil {
				return nil, err
			}
			return &Twilio{keys: keys, url: c.URL}, nil
		},
		sign: func(c Config, m *Message) error {
			raw := c.URL
			if raw == "" {
				raw = m.URL
			}
			u, err := url.Parse(raw)
			if err != nil || raw == "" {
				return fmt.Errorf("sign as twilio: the URL %q is needed and must parse", raw)
			}
			var params url.Values
			if mt, _, _ := mime.ParseMediaType(m.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
				if params, err = url.ParseQuery(string(m.Body)); err != nil {
					return fmt.Errorf("sign as twilio: form body: %w", err)
				}
			} else if len(m.Body) > 0 && u.Query().Get("bodySHA256") == "" {
				// As Twilio does for JSON: the body's hash joins the URL.
				sum := sha256.Sum256(m.Body)
				q := u.Query()
				q.Set("bodySHA256", hex.EncodeToString(sum[:]))
				u.RawQuery = q.Encode()
				if c.URL == "" {
					m.URL = u.String()
				}
			}
			m.Header.Set(TwilioHeader, base64.StdEncoding.EncodeToString(twilioMAC([]byte(firstSecret(c)), u.String(), twilioParams(params, false))))
			return nil
		},
	}
}
