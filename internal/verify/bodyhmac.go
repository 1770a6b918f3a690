package verify

import (
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"hash"
)

// bodyHMACScheme is a provider's signature that is one header holding an
// HMAC of the raw body keyed with the secret as is: the [HMAC] verifier
// with the provider's header, prefix, hash and encoding fixed.
type bodyHMACScheme struct {
	header, prefix string
	hash           func() hash.Hash
	hashName       string
	base64         bool
}

// row fills p's verifier and signer with the scheme.
func (s bodyHMACScheme) row(p *Provider) *Provider {
	p.Fields = []string{"secret*"}
	p.Headers = append([]string{s.header}, p.Headers...)
	p.build = func(c Config, _ *Options) (Verifier, error) {
		secrets, err := requireSecrets(c)
		if err != nil {
			return nil, err
		}
		return &HMAC{header: s.header, prefix: s.prefix, hash: s.hash, hashName: s.hashName, base64: s.base64, secrets: secrets}, nil
	}
	p.sign = func(c Config, m *Message) error {
		v := &HMAC{header: s.header, prefix: s.prefix, hash: s.hash, base64: s.base64, secrets: [][]byte{[]byte(firstSecret(c))}}
		m.Header.Set(s.header, v.sign(m.Body))
		return nil
	}
	return p
}

// sha256Hex is the hex HMAC-SHA256 of the body in header, after prefix.
func sha256Hex(header, prefix string) bodyHMACScheme {
	return bodyHMACScheme{header: header, prefix: prefix, hash: sha256.New, hashName: "sha256"}
}

// sha1Hex is the hex HMAC-SHA1 of the body in header, after prefix.
func sha1Hex(header, prefix string) bodyHMACScheme {
	return bodyHMACScheme{header: header, prefix: prefix, hash: sha1.New, hashName: "sha1"}
}

// bodyHMACProviders are the providers that sign the raw body with an HMAC
// in one header, and nothing else.
func bodyHMACProviders() []*Provider {
	metaLike := func(name, title, eventType string) *Provider {
		p := sha256Hex("X-Hub-Signature-256", "sha256=").row(&Provider{
			Name: name, Title: title,
			Scheme:    "X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body, keyed with the app secret>; GET hub.challenge checked against verify_token",
			EventType: eventType,
			Handshake: "GET `hub.mode=subscribe` with `hub.verify_token` equal to `verify_token`: answers `hub.challenge`",
		})
		p.Fields = []string{"secret*", "verify_token"}
		return p.wrapHMAC(func(v *HMAC, c Config) Verifier { return &metaVerifier{HMAC: v, token: c.VerifyToken} })
	}
	return []*Provider{
		metaLike("meta", "Meta (Facebook, Messenger)", `has(body.object) ? body.object : ""`),
		metaLike("whatsapp", "WhatsApp Cloud API", `has(body.entry) && size(body.entry) > 0 && size(body.entry[0].changes) > 0 ? body.entry[0].changes[0].field : ""`),
		metaLike("instagram", "Instagram", `has(body.entry) && size(body.entry) > 0 && has(body.entry[0].changes) && size(body.entry[0].changes) > 0 ? body.entry[0].changes[0].field : "instagram"`),
		sha1Hex("X-Hub-Signature", "sha1=").row(&Provider{
			Name: "intercom", Title: "Intercom",
			Scheme:   "X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body, keyed with the app's client secret>",
			DedupKey: `body.id`, EventType: `body.topic`,
		}),
		sha256Hex("X-Hub-Signature", "sha256=").row(&Provider{
			Name: "bitbucket", Title: "Bitbucket Cloud",
			Scheme:   "X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>",
			IDHeader: "X-Request-UUID", EventHeader: "X-Event-Key",
			DedupKey: `headers["x-request-uuid"]`, EventType: `headers["x-event-key"]`,
			Headers: []string{"X-Request-UUID", "X-Event-Key", "X-Hook-UUID"},
		}),
		withBase64(sha256Hex("Typeform-Signature", "sha256=")).row(&Provider{
			Name: "typeform", Title: "Typeform",
			Scheme:   "Typeform-Signature: sha256=<base64 HMAC-SHA256 of the body>",
			DedupKey: `body.event_id`, EventType: `body.event_type`,
		}),
		sha256Hex("Sentry-Hook-Signature", "").row(&Provider{
			Name: "sentry", Title: "Sentry",
			Scheme:    "Sentry-Hook-Signature: <hex HMAC-SHA256 of the body, keyed with the integration's client secret>",
			IDHeader:  "Request-ID",
			DedupKey:  `headers["request-id"]`,
			EventType: `headers["sentry-hook-resource"] + (has(body.action) ? "." + body.action : "")`,
			Headers:   []string{"Request-ID", "Sentry-Hook-Resource", "Sentry-Hook-Timestamp"},
		}),
		sha1Hex("X-Vercel-Signature", "").row(&Provider{
			Name: "vercel", Title: "Vercel",
			Scheme:   "x-vercel-signature: <hex HMAC-SHA1 of the body>",
			DedupKey: `body.id`, EventType: `body.type`,
		}),
		sha256Hex("X-Dropbox-Signature", "").row(&Provider{
			Name: "dropbox", Title: "Dropbox",
			Scheme:    "X-Dropbox-Signature: <hex HMAC-SHA256 of the body, keyed with the app secret>",
			EventType: `has(body.list_folder) ? "list_folder" : ""`,
			Handshake: "GET `?challenge=`: echoes the challenge (text/plain, nosniff)",
		}).wrapHMAC(func(v *HMAC, _ Config) Verifier { return &dropboxVerifier{HMAC: v} }),
		withBase64(sha256Hex("X-WC-Webhook-Signature", "")).row(&Provider{
			Name: "woocommerce", Title: "WooCommerce",
			Scheme:   "X-WC-Webhook-Signature: <base64 HMAC-SHA256 of the body>",
			IDHeader: "X-WC-Webhook-Delivery-ID", EventHeader: "X-WC-Webhook-Topic",
			DedupKey: `headers["x-wc-webhook-delivery-id"]`, EventType: `headers["x-wc-webhook-topic"]`,
			Headers: []string{"X-WC-Webhook-Delivery-ID", "X-WC-Webhook-Topic"},
		}),
		sha256Hex("X-Signature", "").row(&Provider{
			Name: "lemonsqueezy", Title: "Lemon Squeezy",
			Scheme:      "X-Signature: <hex HMAC-SHA256 of the body>",
			EventHeader: "X-Event-Name",
			EventType:   `headers["x-event-name"]`,
			Headers:     []string{"X-Event-Name"},
		}),
	}
}

func withBase64(s bodyHMACScheme) bodyHMACScheme { s.base64 = true; return s }

// wrapHMAC makes p, a row built by [bodyHMACScheme.row], build its HMAC
// verifier wrapped by wrap (which adds the provider's handshake).
func (p *Provider) wrapHMAC(wrap func(*HMAC, Config) Verifier) *Provider {
	build := p.build
	p.build = func(c Config, o *Options) (Verifier, error) {
		v, err := build(c, o)
		if err != nil {
			return nil, err
		}
		return wrap(v.(*HMAC), c), nil
	}
	return p
}

// with applies f to p and returns it.
func (p *Provider) with(f func(*Provider)) *Provider { f(p); return p }

// metaVerifier is Meta's: the HMAC of the body, and the GET subscription
// check answered when hub.verify_token is the configured token.
type metaVerifier struct {
	*HMAC
	token string
}

// Handshake answers Meta's GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...
func (v *metaVerifier) Handshake(r *Request) (*Handshake, error) {
	if r.method() != "GET" || r.Query.Get("hub.mode") == "" {
		return nil, nil
	}
	if r.Query.Get("hub.mode") != "subscribe" {
		return nil, fmt.Errorf("%w: hub.mode %.40q is not subscribe", ErrMalformedSignature, r.Query.Get("hub.mode"))
	}
	if v.token == "" || !equalSecret(r.Query.Get("hub.verify_token"), v.token) {
		return nil, fmt.Errorf("%w: hub.verify_token does not match verify_token", ErrBadCredentials)
	}
	return textAnswer(r.Query.Get("hub.challenge"), "meta hub.challenge answered"), nil
}

// dropboxVerifier is Dropbox's: the HMAC of the body, and the GET
// ?challenge= check, echoed.
type dropboxVerifier struct{ *HMAC }

// Handshake echoes Dropbox's GET ?challenge=.
func (v *dropboxVerifier) Handshake(r *Request) (*Handshake, error) {
	if r.method() != "GET" || !r.Query.Has("challenge") {
		return nil, nil
	}
	return textAnswer(r.Query.Get("challenge"), "dropbox challenge answered"), nil
}
