package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Paddle verifies Paddle Billing's Paddle-Signature header,
// "ts=<unix>;h1=<hex>[;h1=<hex>...]": an HMAC-SHA256 of "<ts>:<body>" keyed
// with the notification destination's secret. Build one with [New].
type Paddle struct {
	keys      [][]byte
	tolerance time.Duration
}

// PaddleHeader carries Paddle's signature.
const PaddleHeader = "Paddle-Signature"

// Verify checks r's Paddle-Signature header.
func (p *Paddle) Verify(r *Request) error {
	h := r.Header.Get(PaddleHeader)
	if h == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, PaddleHeader)
	}
	ts, sigs, err := parsePaddleHeader(h)
	if err != nil {
		return err
	}
	if err := checkTimestamp(ts, r.now(), p.tolerance); err != nil {
		return err
	}
	if anyMAC(p.keys, sigs, func(key []byte) []byte { return paddleMAC(key, ts, r.Body) }) {
		return nil
	}
	return fmt.Errorf("%w: no h1 signature in %s matches", ErrSignatureMismatch, PaddleHeader)
}

// parsePaddleHeader reads "ts=...;h1=...": one ts, one or more h1 (hex),
// other keys ignored.
func parsePaddleHeader(h string) (ts int64, sigs [][]byte, err error) {
	haveTS := false
	for part := range strings.SplitSeq(h, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return 0, nil, fmt.Errorf("%w: %s element %.40q is not key=value", ErrMalformedSignature, PaddleHeader, part)
		}
		switch k {
		case "ts":
			if haveTS {
				return 0, nil, fmt.Errorf("%w: %s has more than one ts", ErrMalformedSignature, PaddleHeader)
			}
			if ts, err = parseUnix(v); err != nil {
				return 0, nil, err
			}
			haveTS = true
		case "h1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				return 0, nil, fmt.Errorf("%w: %s h1 is not hex", ErrMalformedSignature, PaddleHeader)
			}
			sigs = append(sigs, sig)
		}
	}
	if !haveTS {
		return 0, nil, fmt.Errorf("%w: %s has no ts", ErrMalformedSignature, PaddleHeader)
	}
	if len(sigs) == 0 {
		return 0, nil, fmt.Errorf("%w: %s has no h1 signature", ErrMissingSignature, PaddleHeader)
	}
	return ts, sigs, nil
}

func paddleMAC(key []byte, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{':'})
	m.Write(body)
	return m.Sum(nil)
}

func paddleProvider() *Provider {
	return &Provider{
		Name: "paddle", Title: "Paddle Billing",
		Scheme:    "Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256 of \"ts:body\">",
		Fields:    []string{"secret*", "tolerance"},
		DedupKey:  `body.event_id`,
		EventType: `body.event_type`,
		Headers:   []string{PaddleHeader},
		build: func(c Config, _ *Options) (Verifier, error) {
			keys, err := requireSecrets(c)
			if err != nil {
				return nil, err
			}
			return &Paddle{keys: keys, tolerance: tolerance(c)}, nil
		},
		sign: func(c Config, m *Message) error {
			ts := m.Now.Unix()
			m.Header.Set(PaddleHeader, "ts="+strconv.FormatInt(ts, 10)+";h1="+hex.EncodeToString(paddleMAC([]byte(firstSecret(c)), ts, m.Body)))
			return nil
		},
	}
}

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

// calendlyProvider signs like Stripe ("t=<unix>,v1=<hex HMAC-SHA256 of
// t.body>") in Calendly-Webhook-Signature.
func calendlyProvider() *Provider {
	const header = "Calendly-Webhook-Signature"
	return &Provider{
		Name: "calendly", Title: "Calendly",
		Scheme:    "Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"t.body\">",
		Fields:    []string{"secret*", "tolerance"},
		DedupKey:  `body.event + ":" + body.payload.uri`,
		EventType: `body.event`,
		Headers:   []string{header},
		build: func(c Config, _ *Options) (Verifier, error) {
			secrets, err := requireSecrets(c)
			if err != nil {
				return nil, err
			}
			return &Stripe{header: header, secrets: secrets, tolerance: tolerance(c)}, nil
		},
		sign: func(c Config, m *Message) error {
			m.Header.Set(header, SignStripe(firstSecret(c), m.Now, m.Body))
			return nil
		},
	}
}

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
