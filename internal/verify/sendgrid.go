package verify

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SendGrid headers: the ECDSA signature and the timestamp it covers.
const (
	SendGridSignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	SendGridTimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// SendGrid verifies SendGrid's signed Event Webhook: the base64 ASN.1 ECDSA
// signature, by the verification key SendGrid shows (P-256, base64 DER), of
// the SHA-256 of the timestamp header followed by the body. Build one with
// [New].
type SendGrid struct {
	key       *ecdsa.PublicKey
	tolerance time.Duration
}

// Verify checks r's signature header and its timestamp.
func (s *SendGrid) Verify(r *Request) error {
	h, ts, err := signedAt(r, SendGridSignatureHeader, SendGridTimestampHeader, s.tolerance)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return fmt.Errorf("%w: %s is not base64", ErrMalformedSignature, SendGridSignatureHeader)
	}
	d := sha256.New()
	d.Write([]byte(ts))
	d.Write(r.Body)
	if s.key == nil || !ecdsa.VerifyASN1(s.key, d.Sum(nil), sig) {
		return fmt.Errorf("%w: %s does not verify with public_key", ErrSignatureMismatch, SendGridSignatureHeader)
	}
	return nil
}

// parseECDSAPublicKey reads a base64 DER (PKIX) ECDSA public key, with or
// without PEM armour lines.
func parseECDSAPublicKey(s string) (*ecdsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "-----BEGIN PUBLIC KEY-----")
	s = strings.TrimSuffix(s, "-----END PUBLIC KEY-----")
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, errors.New("must be the base64 verification key SendGrid shows")
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("not a public key: %w", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an ECDSA key", pub)
	}
	return key, nil
}

func sendGridProvider() *Provider {
	return &Provider{
		Name: "sendgrid", Title: "SendGrid (Event Webhook)",
		Scheme:    "X-Twilio-Email-Event-Webhook-Signature: <base64 ECDSA P-256 signature of SHA-256(timestamp + body)>; key = the verification key (base64 DER)",
		Fields:    []string{"public_key*", "tolerance"},
		DedupKey:  `size(body) > 0 ? body[0].sg_event_id : ""`,
		EventType: `size(body) > 0 ? body[0].event : ""`,
		Headers:   []string{SendGridSignatureHeader, SendGridTimestampHeader},
		// A demo P-256 private key (base64 PKCS#8 DER): the secret that signs samples.
		SampleSecret: sendGridDemoKey,
		build: func(c Config, _ *Options) (Verifier, error) {
			if c.PublicKey == "" {
				return nil, configErr("public_key", "required for type %q (the verification key SendGrid shows)", c.Type)
			}
			key, err := parseECDSAPublicKey(c.PublicKey)
			if err != nil {
				return nil, configErr("public_key", "%v", err)
			}
			return &SendGrid{key: key, tolerance: tolerance(c)}, nil
		},
		sign: func(c Config, m *Message) error {
			priv, err := parsePKCS8[*ecdsa.PrivateKey](firstSecret(c))
			if err != nil {
				return fmt.Errorf("sign as sendgrid: %w", err)
			}
			ts := fmt.Sprint(m.Now.Unix())
			d := sha256.Sum256(append([]byte(ts), m.Body...))
			sig, err := ecdsa.SignASN1(rand.Reader, priv, d[:])
			if err != nil {
				return fmt.Errorf("sign as sendgrid: %w", err)
			}
			m.Header.Set(SendGridTimestampHeader, ts)
			m.Header.Set(SendGridSignatureHeader, base64.StdEncoding.EncodeToString(sig))
			return nil
		},
		sample: func(secret string) Config {
			cfg := Config{Type: "sendgrid", Secret: secret}
			if priv, err := parsePKCS8[*ecdsa.PrivateKey](secret); err == nil {
				der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
				cfg.PublicKey = base64.StdEncoding.EncodeToString(der)
			}
			return cfg
		},
	}
}
