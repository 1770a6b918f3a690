package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// PagerDuty verifies PagerDuty's v3 webhook signature header,
// X-PagerDuty-Signature: "v1=<hex>[,v1=<hex>...]", each an HMAC-SHA256 of
// the body (several while a secret is rotated). Build one with [New].
type PagerDuty struct{ keys [][]byte }

// PagerDutyHeader carries PagerDuty's signatures.
const PagerDutyHeader = "X-PagerDuty-Signature"

// Verify checks r's X-PagerDuty-Signature header.
func (p *PagerDuty) Verify(r *Request) error {
	h := r.Header.Get(PagerDutyHeader)
	if h == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, PagerDutyHeader)
	}
	sigs, err := parsePagerDutyHeader(h)
	if err != nil {
		return err
	}
	if anyMAC(p.keys, sigs, func(key []byte) []byte { return bodyMAC(sha256.New, key, r.Body) }) {
		return nil
	}
	return fmt.Errorf("%w: no v1 signature in %s matches", ErrSignatureMismatch, PagerDutyHeader)
}

// parsePagerDutyHeader reads "v1=<hex>,v1=<hex>": signatures of other
// versions are skipped, a v1 that is not hex is an error.
func parsePagerDutyHeader(h string) ([][]byte, error) {
	var sigs [][]byte
	for part := range strings.SplitSeq(h, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		sig, err := hex.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s v1 is not hex", ErrMalformedSignature, PagerDutyHeader)
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: %s has no v1 signature", ErrMissingSignature, PagerDutyHeader)
	}
	return sigs, nil
}

func pagerDutyProvider() *Provider {
	return &Provider{
		Name: "pagerduty", Title: "PagerDuty (v3 webhooks)",
		Scheme:    "X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>[,v1=...]",
		Fields:    []string{"secret*"},
		DedupKey:  `body.event.id`,
		EventType: `body.event.event_type`,
		Headers:   []string{PagerDutyHeader, "X-Webhook-Id"},
		build: func(c Config, _ *Options) (Verifier, error) {
			keys, err := requireSecrets(c)
			if err != nil {
				return nil, err
			}
			return &PagerDuty{keys: keys}, nil
		},
		sign: func(c Config, m *Message) error {
			m.Header.Set(PagerDutyHeader, "v1="+hex.EncodeToString(bodyMAC(sha256.New, []byte(firstSecret(c)), m.Body)))
			return nil
		},
	}
}
