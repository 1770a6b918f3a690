package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Linear verifies Linear's Linear-Signature header (the hex HMAC-SHA256 of
// the body) and the webhookTimestamp (Unix milliseconds) the body carries,
// which must be within the tolerance. Build one with [New].
type Linear struct {
	keys      [][]byte
	tolerance time.Duration
}

// LinearHeader carries Linear's signature.
const LinearHeader = "Linear-Signature"

// Verify checks r's signature, then the signed timestamp in its body.
func (l *Linear) Verify(r *Request) error {
	h := r.Header.Get(LinearHeader)
	if h == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, LinearHeader)
	}
	sig, err := hex.DecodeString(h)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrMalformedSignature, LinearHeader)
	}
	if !anyMAC(l.keys, [][]byte{sig}, func(key []byte) []byte { return bodyMAC(sha256.New, key, r.Body) }) {
		return fmt.Errorf("%w: %s matches no secret", ErrSignatureMismatch, LinearHeader)
	}
	var b struct {
		WebhookTimestamp json.Number `json:"webhookTimestamp"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil || b.WebhookTimestamp == "" {
		return fmt.Errorf("%w: body has no webhookTimestamp", ErrMalformedSignature)
	}
	ms, err := b.WebhookTimestamp.Int64()
	if err != nil {
		return fmt.Errorf("%w: webhookTimestamp %.40q is not Unix milliseconds", ErrMalformedSignature, b.WebhookTimestamp)
	}
	return checkTimestamp(time.UnixMilli(ms).Unix(), r.now(), l.tolerance)
}

func linearProvider() *Provider {
	return &Provider{
		Name: "linear", Title: "Linear",
		Scheme:           "Linear-Signature: <hex HMAC-SHA256 of the body>; webhookTimestamp (ms) in the body within the tolerance",
		Fields:           []string{"secret*", "tolerance"},
		IDHeader:         "Linear-Delivery",
		DedupKey:         `headers["linear-delivery"]`,
		EventType:        `body.type + (has(body.action) ? "." + body.action : "")`,
		Headers:          []string{LinearHeader, "Linear-Delivery", "Linear-Event"},
		SignRewritesBody: true,
		build: func(c Config, _ *Options) (Verifier, error) {
			keys, err := requireSecrets(c)
			if err != nil {
				return nil, err
			}
			return &Linear{keys: keys, tolerance: tolerance(c)}, nil
		},
		sign: func(c Config, m *Message) error {
			var body map[string]any
			if err := json.Unmarshal(m.Body, &body); err != nil {
				return fmt.Errorf("sign as linear: body is not a JSON object: %w", err)
			}
			if _, ok := body["webhookTimestamp"]; !ok {
				body["webhookTimestamp"] = m.Now.UnixMilli()
				b, err := json.Marshal(body)
				if err != nil {
					return err
				}
				m.Body = b
			}
			m.Header.Set(LinearHeader, hex.EncodeToString(bodyMAC(sha256.New, []byte(firstSecret(c)), m.Body)))
			return nil
		},
	}
}
