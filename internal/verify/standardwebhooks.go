package verify

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers, and the Svix names that the same scheme was
// first published under.
const (
	StandardWebhooksIDHeader        = "Webhook-Id"
	StandardWebhooksTimestampHeader = "Webhook-Timestamp"
	StandardWebhooksSignatureHeader = "Webhook-Signature"
	SvixIDHeader                    = "Svix-Id"
	SvixTimestampHeader             = "Svix-Timestamp"
	SvixSignatureHeader             = "Svix-Signature"
)

// standardWebhooksSecretPrefix marks a Standard Webhooks secret; the rest is
// the key in base64.
const standardWebhooksSecretPrefix = "whsec_"

// StandardWebhooks verifies the Standard Webhooks scheme
// (https://www.standardwebhooks.com): webhook-signature holds
// space-separated "v1,<base64>" values, each an HMAC-SHA256 over
// "<webhook-id>.<webhook-timestamp>.<body>" keyed with the secret's
// base64-decoded bytes. Any v1 value matching any secret passes; other
// versions are ignored. The timestamp must be within the tolerance of the
// request time, both ways. The svix-* header names are accepted when no
// webhook-* header is present. Build one with [New].
type StandardWebhooks struct {
	keys      [][]byte
	tolerance time.Duration
}

func newStandardWebhooks(cfg Config) (*StandardWebhooks, error) {
	all := cfg.AllSecrets()
	if len(all) == 0 {
		return nil, configErr("secret", "required for type %q", cfg.Type)
	}
	keys := make([][]byte, len(all))
	for i, s := range all {
		key, err := decodeStandardWebhooksSecret(s)
		if err != nil {
			return nil, &ConfigError{Field: "secret", Err: err}
		}
		keys[i] = key
	}
	return &StandardWebhooks{keys: keys, tolerance: tolerance(cfg)}, nil
}

// decodeStandardWebhooksSecret returns the key of "whsec_<base64>"; the
// prefix is optional.
func decodeStandardWebhooksSecret(secret string) ([]byte, error) {
	b64 := strings.TrimPrefix(secret, standardWebhooksSecretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil {
		return nil, errors.New("standard-webhooks secret must be whsec_ followed by base64")
	}
	if len(key) == 0 {
		return nil, errors.New("standard-webhooks secret is empty after whsec_")
	}
	return key, nil
}

// Verify checks r's webhook-id, webhook-timestamp and webhook-signature
// headers (or their svix-* aliases).
func (s *StandardWebhooks) Verify(r *Request) error {
	idH, tsH, sigH := StandardWebhooksIDHeader, StandardWebhooksTimestampHeader, StandardWebhooksSignatureHeader
	if r.Header.Get(idH) == "" && r.Header.Get(tsH) == "" && r.Header.Get(sigH) == "" {
		idH, tsH, sigH = SvixIDHeader, SvixTimestampHeader, SvixSignatureHeader
	}
	id, tsStr, sigs := r.Header.Get(idH), r.Header.Get(tsH), r.Header.Get(sigH)
	switch {
	case sigs == "":
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, sigH)
	case id == "":
		return fmt.Errorf("%w: no %s header", ErrMalformedSignature, idH)
	case tsStr == "":
		return fmt.Errorf("%w: no %s header", ErrMalformedSignature, tsH)
	}
	ts, err := parseUnix(tsStr)
	if err != nil {
		return err
	}
	if err := checkTimestamp(ts, r.now(), s.tolerance); err != nil {
		return err
	}
	// As the reference library: split on single spaces, take "v1,<sig>"
	// entries, and compare the base64 text.
	var given [][]byte
	for entry := range strings.SplitSeq(sigs, " ") {
		version, sig, ok := strings.Cut(entry, ",")
		if ok && version == "v1" {
			given = append(given, []byte(sig))
		}
	}
	if len(given) == 0 {
		return fmt.Errorf("%w: %s has no v1 signature", ErrMissingSignature, sigH)
	}
	for _, key := range s.keys {
		want := standardWebhooksSig(key, id, ts, r.Body)
		for _, sig := range given {
			if hmac.Equal(want, sig) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no v1 signature in %s matches", ErrSignatureMismatch, sigH)
}

// standardWebhooksSig returns the base64 text of the signature.
func standardWebhooksSig(key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.AppendEncode(nil, m.Sum(nil))
}

// SignStandardWebhooks returns a webhook-signature header value,
// "v1,<base64>", for the message msgID sent at ts with body. secret is
// "whsec_<base64>" (prefix optional). It fails if the secret is not
// base64 or msgID is empty.
func SignStandardWebhooks(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := decodeStandardWebhooksSecret(secret)
	if err != nil {
		return "", fmt.Errorf("sign standard webhook: %w", err)
	}
	if msgID == "" {
		return "", errors.New("sign standard webhook: message id is empty")
	}
	return "v1," + string(standardWebhooksSig(key, msgID, ts.Unix(), body)), nil
}

// standardWebhooksDedup is the dedup key of Standard Webhooks senders: the
// message id, under either header name.
const standardWebhooksDedup = `"webhook-id" in headers ? headers["webhook-id"] : headers["svix-id"]`

func standardWebhooksProvider() *Provider {
	return &Provider{
		Name: TypeStandardWebhooks, Title: "Standard Webhooks",
		Scheme: "webhook-signature: v1,<base64 HMAC-SHA256 of \"id.timestamp.body\">, key = base64 after whsec_ (svix-* names accepted)",
		Fields: []string{"secret*", "tolerance"},
		// The secret of the scheme's published test vectors.
		SampleSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		IDHeader:     StandardWebhooksIDHeader,
		DedupKey:     standardWebhooksDedup,
		EventType:    `body.type`,
		Headers: []string{StandardWebhooksIDHeader, StandardWebhooksTimestampHeader, StandardWebhooksSignatureHeader,
			SvixIDHeader, SvixTimestampHeader, SvixSignatureHeader},
		build: func(c Config, _ *Options) (Verifier, error) { return newStandardWebhooks(c) },
		sign:  signStandardWebhooksAs(StandardWebhooksIDHeader, StandardWebhooksTimestampHeader, StandardWebhooksSignatureHeader),
	}
}

// svixAliases are the providers that sign with Svix, or with Standard
// Webhooks under its own name: each is the standard-webhooks scheme, with
// the header names that provider sends.
func svixAliases() []*Provider {
	var rows []*Provider
	for _, a := range []struct {
		name, title string
		svix        bool
		eventType   string
	}{
		{"clerk", "Clerk", true, ""},
		{"resend", "Resend", true, ""},
		{"svix", "Svix", true, ""},
		{"openai", "OpenAI", false, ""},
		{"replicate", "Replicate", false, `has(body.status) ? "prediction." + body.status : ""`},
	} {
		p := standardWebhooksProvider()
		p.Name, p.Title, p.Alias = a.name, a.title, TypeStandardWebhooks
		p.EventType = cmp.Or(a.eventType, p.EventType)
		if a.svix {
			p.Scheme = "Svix (Standard Webhooks with svix-id, svix-timestamp, svix-signature)"
			p.IDHeader = SvixIDHeader
			p.sign = signStandardWebhooksAs(SvixIDHeader, SvixTimestampHeader, SvixSignatureHeader)
		} else {
			p.Scheme = "Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)"
		}
		rows = append(rows, p)
	}
	return rows
}

// signStandardWebhooksAs signs under the given header names, keeping an id
// already set and making a random one otherwise.
func signStandardWebhooksAs(idH, tsH, sigH string) func(Config, *Message) error {
	return func(c Config, m *Message) error {
		id := m.Header.Get(idH)
		if id == "" {
			id = "msg_" + rand.Text()
		}
		sig, err := SignStandardWebhooks(firstSecret(c), id, m.Now, m.Body)
		if err != nil {
			return err
		}
		m.Header.Set(idH, id)
		m.Header.Set(tsH, strconv.FormatInt(m.Now.Unix(), 10))
		m.Header.Set(sigH, sig)
		return nil
	}
}
