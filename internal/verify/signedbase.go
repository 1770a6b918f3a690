package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// signedBase is a provider scheme whose signature header holds an HMAC of a
// base string built from the request (timestamp, id, method, URL, body):
// Slack, Zoom, Twitch, HubSpot v3 and Square. Build one with [New].
type signedBase struct {
	name      string
	sigHeader string
	prefix    string // before the encoded MAC, e.g. "v0="
	tsHeader  string // "" when the scheme signs no timestamp
	tsUnit    string // "s", "ms" or "rfc3339"
	hash      func() hash.Hash
	base64    bool
	// base writes the signed string for r, whose timestamp header is ts.
	base      func(w hash.Hash, r *Request, url, ts string)
	url       string // Config.URL
	keys      [][]byte
	tolerance time.Duration
}

// Verify checks r's signature and, where signed, its timestamp.
func (s *signedBase) Verify(r *Request) error {
	h := r.Header.Get(s.sigHeader)
	if h == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, s.sigHeader)
	}
	var ts string
	if s.tsHeader != "" {
		if ts = r.Header.Get(s.tsHeader); ts == "" {
			return fmt.Errorf("%w: no %s header", ErrMalformedSignature, s.tsHeader)
		}
		t, err := parseTime(ts, s.tsUnit)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMalformedSignature, s.tsHeader, err)
		}
		if err := checkTimestamp(t.Unix(), r.now(), s.tolerance); err != nil {
			return err
		}
	}
	enc, ok := strings.CutPrefix(h, s.prefix)
	if !ok {
		return fmt.Errorf("%w: %s does not start with %q", ErrMalformedSignature, s.sigHeader, s.prefix)
	}
	sig, err := decodeMAC(enc, s.base64)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformedSignature, s.sigHeader, err)
	}
	url := s.url
	if url == "" {
		url = r.URL
	}
	for _, key := range s.keys {
		if hmac.Equal(s.mac(key, r, url, ts), sig) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s matches no secret", ErrSignatureMismatch, s.sigHeader)
}

func (s *signedBase) mac(key []byte, r *Request, url, ts string) []byte {
	m := hmac.New(s.hash, key)
	s.base(m, r, url, ts)
	return m.Sum(nil)
}

// sign sets m's timestamp and signature headers.
func (s *signedBase) sign(m *Message) {
	var ts string
	switch s.tsUnit {
	case "s":
		ts = strconv.FormatInt(m.Now.Unix(), 10)
	case "ms":
		ts = strconv.FormatInt(m.Now.UnixMilli(), 10)
	case "rfc3339":
		ts = m.Now.UTC().Format(time.RFC3339Nano)
	}
	if s.tsHeader != "" {
		m.Header.Set(s.tsHeader, ts)
	}
	r := &Request{Header: m.Header, Body: m.Body, Method: m.method(), URL: m.URL}
	mac := s.mac(s.keys[0], r, m.URL, ts)
	if s.base64 {
		m.Header.Set(s.sigHeader, s.prefix+base64.StdEncoding.EncodeToString(mac))
	} else {
		m.Header.Set(s.sigHeader, s.prefix+hex.EncodeToString(mac))
	}
}

// parseTime reads a timestamp in unit: Unix seconds, milliseconds, or
// RFC 3339.
func parseTime(s, unit string) (time.Time, error) {
	if unit == "rfc3339" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%.40q is not an RFC 3339 time", s)
		}
		return t, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%.40q is not a Unix time", s)
	}
	if unit == "ms" {
		return time.UnixMilli(n), nil
	}
	return time.Unix(n, 0), nil
}

// decodeMAC decodes a hex (either case) or standard base64 MAC.
func decodeMAC(s string, b64 bool) ([]byte, error) {
	if b64 {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("not base64")
		}
		return b, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hex")
	}
	return b, nil
}

// signedBaseRow fills p with the scheme tmpl (keys, url and tolerance come
// from the config).
func signedBaseRow(p *Provider, tmpl signedBase, wrap func(*signedBase, Config) Verifier) *Provider {
	p.Headers = append([]string{tmpl.sigHeader}, p.Headers...)
	if tmpl.tsHeader != "" {
		p.Headers = append(p.Headers, tmpl.tsHeader)
	}
	if p.Fields == nil {
		p.Fields = []string{"secret*", "tolerance"}
	}
	mk := func(c Config) (*signedBase, error) {
		keys, err := requireSecrets(c)
		if err != nil {
			return nil, err
		}
		s := tmpl
		s.keys, s.url, s.tolerance = keys, c.URL, tolerance(c)
		return &s, nil
	}
	p.build = func(c Config, _ *Options) (Verifier, error) {
		s, err := mk(c)
		if err != nil {
			return nil, err
		}
		if wrap != nil {
			return wrap(s, c), nil
		}
		return s, nil
	}
	p.sign = func(c Config, m *Message) error {
		s, err := mk(c)
		if err != nil {
			return err
		}
		s.sign(m)
		return nil
	}
	return p
}

// writeAll writes each part to w.
func writeAll(w hash.Hash, parts ...string) {
	for _, p := range parts {
		w.Write([]byte(p))
	}
}

// v0Base writes the "v0:<timestamp>:<body>" that Slack and Zoom sign.
func v0Base(w hash.Hash, r *Request, _, ts string) {
	writeAll(w, "v0:", ts, ":")
	w.Write(r.Body)
}

// signedBaseProviders are Slack, Zoom, Twitch, HubSpot and Square.
func signedBaseProviders() []*Provider {
	return []*Provider{
		signedBaseRow(&Provider{
			Name: "slack", Title: "Slack",
			Scheme:    "X-Slack-Signature: v0=<hex HMAC-SHA256 of \"v0:timestamp:body\">, X-Slack-Request-Timestamp",
			DedupKey:  `has(body.event_id) ? body.event_id : ""`,
			EventType: `has(body.event) && has(body.event.type) ? body.event.type : (has(body.type) ? body.type : "")`,
			Handshake: "`url_verification`: answers the challenge",
		}, signedBase{name: "slack", sigHeader: "X-Slack-Signature", prefix: "v0=", tsHeader: "X-Slack-Request-Timestamp", tsUnit: "s", hash: sha256.New,
			base: v0Base},
			func(s *signedBase, _ Config) Verifier { return &slackVerifier{s} }),
		signedBaseRow(&Provider{
			Name: "zoom", Title: "Zoom",
			Scheme:    "x-zm-signature: v0=<hex HMAC-SHA256 of \"v0:timestamp:body\">, x-zm-request-timestamp; key = the secret token",
			DedupKey:  `body.event + ":" + string(int(body.event_ts))`,
			EventType: `body.event`,
			Handshake: "`endpoint.url_validation`: answers plainToken and its HMAC (encryptedToken)",
		}, signedBase{name: "zoom", sigHeader: "X-Zm-Signature", prefix: "v0=", tsHeader: "X-Zm-Request-Timestamp", tsUnit: "s", hash: sha256.New,
			base: v0Base},
			func(s *signedBase, _ Config) Verifier { return &zoomVerifier{s} }),
		signedBaseRow(&Provider{
			Name: "twitch", Title: "Twitch EventSub",
			Scheme:      "Twitch-Eventsub-Message-Signature: sha256=<hex HMAC-SHA256 of id + timestamp + body>",
			IDHeader:    twitchIDHeader,
			EventHeader: "Twitch-Eventsub-Subscription-Type",
			DedupKey:    `headers["twitch-eventsub-message-id"]`,
			EventType:   `headers["twitch-eventsub-subscription-type"]`,
			Headers:     []string{twitchIDHeader, twitchTypeHeader, "Twitch-Eventsub-Subscription-Type"},
			Handshake:   "`webhook_callback_verification`: answers the challenge",
		}, signedBase{name: "twitch", sigHeader: "Twitch-Eventsub-Message-Signature", prefix: "sha256=", tsHeader: "Twitch-Eventsub-Message-Timestamp", tsUnit: "rfc3339", hash: sha256.New,
			base: func(w hash.Hash, r *Request, _, ts string) {
				writeAll(w, r.Header.Get(twitchIDHeader), ts)
				w.Write(r.Body)
			}},
			func(s *signedBase, _ Config) Verifier { return &twitchVerifier{s} }),
		signedBaseRow(&Provider{
			Name: "hubspot", Title: "HubSpot",
			Scheme:    "X-HubSpot-Signature-v3: <base64 HMAC-SHA256 of method + URI + body + timestamp>, X-HubSpot-Request-Timestamp (ms); needs the public URL",
			Fields:    []string{"secret*", "url", "tolerance"},
			DedupKey:  `size(body) > 0 ? body[0].eventId : ""`,
			EventType: `size(body) > 0 ? body[0].subscriptionType : ""`,
		}, signedBase{name: "hubspot", sigHeader: "X-Hubspot-Signature-V3", tsHeader: "X-Hubspot-Request-Timestamp", tsUnit: "ms", hash: sha256.New, base64: true,
			base: func(w hash.Hash, r *Request, url, ts string) {
				writeAll(w, r.method(), hubspotURI(url))
				w.Write(r.Body)
				writeAll(w, ts)
			}}, nil),
		signedBaseRow(&Provider{
			Name: "square", Title: "Square",
			Scheme:    "x-square-hmacsha256-signature: <base64 HMAC-SHA256 of notification URL + body>; needs the public URL",
			Fields:    []string{"secret*", "url"},
			DedupKey:  `body.event_id`,
			EventType: `body.type`,
		}, signedBase{name: "square", sigHeader: "X-Square-Hmacsha256-Signature", hash: sha256.New, base64: true,
			base: func(w hash.Hash, r *Request, url, _ string) { writeAll(w, url); w.Write(r.Body) }}, nil),
	}
}

// hubspotURI decodes the characters HubSpot decodes in the URI it signs
// (v3): the reserved characters that a client may have percent-encoded.
func hubspotURI(u string) string {
	return strings.NewReplacer("%3A", ":", "%2F", "/", "%3F", "?", "%40", "@", "%21", "!", "%24", "$", "%27", "'",
		"%28", "(", "%29", ")", "%2A", "*", "%2C", ",", "%3B", ";").Replace(u)
}

// Twitch EventSub headers read by the signature and the handshake.
const (
	twitchIDHeader   = "Twitch-Eventsub-Message-Id"
	twitchTypeHeader = "Twitch-Eventsub-Message-Type"
)

// slackVerifier answers Slack's url_verification after checking its
// signature.
type slackVerifier struct{ *signedBase }

// Handshake answers {"type":"url_verification","challenge":...}.
func (v *slackVerifier) Handshake(r *Request) (*Handshake, error) {
	var b struct{ Type, Challenge string }
	if json.Unmarshal(r.Body, &b) != nil || b.Type != "url_verification" {
		return nil, nil
	}
	if err := v.Verify(r); err != nil {
		return nil, err
	}
	return textAnswer(b.Challenge, "slack url_verification answered"), nil
}

// zoomVerifier answers Zoom's endpoint.url_validation after checking its
// signature.
type zoomVerifier struct{ *signedBase }

// Handshake answers {"event":"endpoint.url_validation","payload":{"plainToken":...}}
// with the token and its HMAC-SHA256 under the secret token, in hex.
func (v *zoomVerifier) Handshake(r *Request) (*Handshake, error) {
	var b struct {
		Event   string
		Payload struct {
			PlainToken string `json:"plainToken"`
		}
	}
	if json.Unmarshal(r.Body, &b) != nil || b.Event != "endpoint.url_validation" {
		return nil, nil
	}
	if err := v.Verify(r); err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, v.keys[0])
	m.Write([]byte(b.Payload.PlainToken))
	return jsonAnswer(map[string]string{"plainToken": b.Payload.PlainToken, "encryptedToken": hex.EncodeToString(m.Sum(nil))},
		"zoom endpoint.url_validation answered"), nil
}

// twitchVerifier answers Twitch's webhook_callback_verification after
// checking its signature.
type twitchVerifier struct{ *signedBase }

// Handshake answers a Twitch-Eventsub-Message-Type:
// webhook_callback_verification with the body's challenge.
func (v *twitchVerifier) Handshake(r *Request) (*Handshake, error) {
	if r.Header.Get(twitchTypeHeader) != "webhook_callback_verification" {
		return nil, nil
	}
	if err := v.Verify(r); err != nil {
		return nil, err
	}
	var b struct{ Challenge string }
	if err := json.Unmarshal(r.Body, &b); err != nil || b.Challenge == "" {
		return nil, fmt.Errorf("%w: webhook_callback_verification without a challenge", ErrMalformedSignature)
	}
	return textAnswer(b.Challenge, "twitch webhook_callback_verification answered"), nil
}
