package verify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Mailgun verifies Mailgun's webhooks, which carry their signature in the
// JSON body: {"signature": {"timestamp", "token", "signature"}}, the
// signature being the hex HMAC-SHA256 of timestamp + token keyed with the
// HTTP webhook signing key. The timestamp must be within the tolerance. The
// signature covers the timestamp and token only, not the event data. Build
// one with [New].
type Mailgun struct {
	keys      [][]byte
	tolerance time.Duration
}

// mailgunBody is the part of a Mailgun webhook body the signature is in.
type mailgunBody struct {
	Signature struct {
		Timestamp string `json:"timestamp"`
		Token     string `json:"token"`
		Signature string `json:"signature"`
	} `json:"signature"`
}

// Verify checks the signature block of r's body.
func (v *Mailgun) Verify(r *Request) error {
	var b mailgunBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		return fmt.Errorf("%w: body is not Mailgun's JSON", ErrMissingSignature)
	}
	s := b.Signature
	if s.Signature == "" {
		return fmt.Errorf("%w: body has no signature.signature", ErrMissingSignature)
	}
	if s.Token == "" {
		return fmt.Errorf("%w: body has no signature.token", ErrMalformedSignature)
	}
	ts, err := parseUnix(s.Timestamp)
	if err != nil {
		return err
	}
	if err := checkTimestamp(ts, r.now(), v.tolerance); err != nil {
		return err
	}
	sig, err := hex.DecodeString(s.Signature)
	if err != nil {
		return fmt.Errorf("%w: signature.signature is not hex", ErrMalformedSignature)
	}
	for _, key := range v.keys {
		if hmac.Equal(mailgunMAC(key, s.Timestamp, s.Token), sig) {
			return nil
		}
	}
	return fmt.Errorf("%w: signature.signature matches no signing key", ErrSignatureMismatch)
}

func mailgunMAC(key []byte, ts, token string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte(token))
	return m.Sum(nil)
}

func mailgunProvider() *Provider {
	return &Provider{
		Name: "mailgun", Title: "Mailgun",
		Scheme:           "signature.signature in the JSON body: hex HMAC-SHA256 of signature.timestamp + signature.token, keyed with the webhook signing key",
		Fields:           []string{"secret*", "tolerance"},
		DedupKey:         `body["event-data"].id`,
		EventType:        `body["event-data"].event`,
		SignRewritesBody: true,
		build: func(c Config, _ *Options) (Verifier, error) {
			keys, err := requireSecrets(c)
			if err != nil {
				return nil, err
			}
			return &Mailgun{keys: keys, tolerance: tolerance(c)}, nil
		},
		sign: func(c Config, m *Message) error {
			var body map[string]any
			if err := json.Unmarshal(m.Body, &body); err != nil {
				return fmt.Errorf("sign as mailgun: body is not a JSON object: %w", err)
			}
			ts := strconv.FormatInt(m.Now.Unix(), 10)
			token := hex.EncodeToString([]byte(rand.Text()))[:50]
			body["signature"] = map[string]string{"timestamp": ts, "token": token,
				"signature": hex.EncodeToString(mailgunMAC([]byte(firstSecret(c)), ts, token))}
			b, err := json.Marshal(body)
			if err != nil {
				return err
			}
			m.Body = b
			return nil
		},
	}
}
