package verify

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Discord headers: the Ed25519 signature and the timestamp it covers.
const (
	DiscordSignatureHeader = "X-Signature-Ed25519"
	DiscordTimestampHeader = "X-Signature-Timestamp"
)

// Discord verifies Discord's interactions and webhook events: the hex
// Ed25519 signature, by the application's public key, of the timestamp
// header followed by the body. It answers Discord's PING. Build one with
// [New].
type Discord struct {
	key       ed25519.PublicKey
	tolerance time.Duration
}

// Verify checks r's X-Signature-Ed25519 and its timestamp.
func (d *Discord) Verify(r *Request) error {
	h, ts, err := signedAt(r, DiscordSignatureHeader, DiscordTimestampHeader, d.tolerance)
	if err != nil {
		return err
	}
	sig, err := hex.DecodeString(h)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: %s is not a hex Ed25519 signature", ErrMalformedSignature, DiscordSignatureHeader)
	}
	msg := make([]byte, 0, len(ts)+len(r.Body))
	msg = append(append(msg, ts...), r.Body...)
	if len(d.key) != ed25519.PublicKeySize || !ed25519.Verify(d.key, msg, sig) {
		return fmt.Errorf("%w: %s does not verify with public_key", ErrSignatureMismatch, DiscordSignatureHeader)
	}
	return nil
}

// Handshake answers Discord's PINGs after checking their signature: an
// interaction PING ({"type":1} with no event) gets {"type":1}, a webhook
// events PING ({"type":0}) gets 204.
func (d *Discord) Handshake(r *Request) (*Handshake, error) {
	var b struct {
		Type  *int            `json:"type"`
		Event json.RawMessage `json:"event"`
	}
	if json.Unmarshal(r.Body, &b) != nil || b.Type == nil || (*b.Type != 0 && *b.Type != 1) || (*b.Type == 1 && b.Event != nil) {
		return nil, nil
	}
	if err := d.Verify(r); err != nil {
		return nil, err
	}
	if *b.Type == 0 {
		return &Handshake{Status: 204, Note: "discord webhook events PING answered"}, nil
	}
	return jsonAnswer(map[string]int{"type": 1}, "discord interactions PING answered"), nil
}

func discordProvider() *Provider {
	seed := sha256.Sum256([]byte("mailroom-demo-discord"))
	return &Provider{
		Name: "discord", Title: "Discord (interactions, webhook events)",
		Scheme:    "X-Signature-Ed25519: <hex Ed25519 signature of timestamp + body>, X-Signature-Timestamp; key = the application's public key (hex)",
		Fields:    []string{"public_key*", "tolerance"},
		DedupKey:  `has(body.id) ? body.id : (has(body.event) ? body.event.type + ":" + body.event.timestamp : "")`,
		EventType: `has(body.event) ? body.event.type : "interaction." + string(int(body.type))`,
		Headers:   []string{DiscordSignatureHeader, DiscordTimestampHeader},
		Handshake: "PING (`type` 1): answers `{\"type\":1}`; webhook events PING (`type` 0): 204",
		// A demo Ed25519 seed (hex): the secret that signs samples.
		SampleSecret: hex.EncodeToString(seed[:]),
		build: func(c Config, _ *Options) (Verifier, error) {
			if c.PublicKey == "" {
				return nil, configErr("public_key", "required for type %q (the application's public key, hex)", c.Type)
			}
			key, err := hex.DecodeString(strings.TrimSpace(c.PublicKey))
			if err != nil || len(key) != ed25519.PublicKeySize {
				return nil, configErr("public_key", "must be %d bytes of hex (the application's public key)", ed25519.PublicKeySize)
			}
			return &Discord{key: key, tolerance: tolerance(c)}, nil
		},
		sign: func(c Config, m *Message) error {
			priv, err := discordPrivateKey(firstSecret(c))
			if err != nil {
				return err
			}
			ts := fmt.Sprint(m.Now.Unix())
			m.Header.Set(DiscordTimestampHeader, ts)
			m.Header.Set(DiscordSignatureHeader, hex.EncodeToString(ed25519.Sign(priv, append([]byte(ts), m.Body...))))
			return nil
		},
		sample: func(secret string) Config {
			cfg := Config{Type: "discord", Secret: secret}
			if priv, err := discordPrivateKey(secret); err == nil {
				cfg.PublicKey = hex.EncodeToString(priv.Public().(ed25519.PublicKey))
			}
			return cfg
		},
	}
}

// discordPrivateKey reads a hex Ed25519 seed, the signing secret of samples.
func discordPrivateKey(secret string) (ed25519.PrivateKey, error) {
	seed, err := hex.DecodeString(secret)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("sign as discord: the secret must be a hex Ed25519 seed of 32 bytes")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
