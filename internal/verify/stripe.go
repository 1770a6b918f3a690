package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// StripeHeader carries Stripe's signature.
const StripeHeader = "Stripe-Signature"

// Stripe verifies Stripe's Stripe-Signature header,
// "t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]": an HMAC-SHA256, keyed with
// the endpoint secret as is (whsec_ prefix included), over "<t>.<body>".
// Any v1 value matching any secret passes; other schemes are ignored. The
// timestamp must be within the tolerance of the request time, both ways.
// Build one with [New].
type Stripe struct {
	header    string // "" means StripeHeader; Calendly uses the same format
	secrets   [][]byte
	tolerance time.Duration
}

// Verify checks r's Stripe-Signature header.
func (s *Stripe) Verify(r *Request) error {
	name := s.header
	if name == "" {
		name = StripeHeader
	}
	h := r.Header.Get(name)
	if h == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, name)
	}
	ts, sigs, err := parseStripeHeader(h)
	if err != nil {
		return err
	}
	if err := checkTimestamp(ts, r.now(), s.tolerance); err != nil {
		return err
	}
	if anyMAC(s.secrets, sigs, func(key []byte) []byte { return stripeMAC(key, ts, r.Body) }) {
		return nil
	}
	return fmt.Errorf("%w: no v1 signature in %s matches", ErrSignatureMismatch, name)
}

// parseStripeHeader reads "t=...,v1=...". It is as strict as stripe-go
// (every element must be key=value), and stricter in refusing a repeated t,
// so a header it accepts is one stripe-go accepts too.
func parseStripeHeader(h string) (ts int64, sigs [][]byte, err error) {
	haveTS := false
	for pair := range strings.SplitSeq(h, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || strings.Contains(v, "=") {
			return 0, nil, fmt.Errorf("%w: %s element %.40q is not key=value", ErrMalformedSignature, StripeHeader, pair)
		}
		switch k {
		case "t":
			if haveTS {
				return 0, nil, fmt.Errorf("%w: %s has more than one timestamp", ErrMalformedSignature, StripeHeader)
			}
			if ts, err = parseUnix(v); err != nil {
				return 0, nil, err
			}
			haveTS = true
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				continue // as stripe-go: skip what cannot be a signature
			}
			sigs = append(sigs, sig)
		}
	}
	if !haveTS {
		return 0, nil, fmt.Errorf("%w: %s has no timestamp", ErrMalformedSignature, StripeHeader)
	}
	if len(sigs) == 0 {
		return 0, nil, fmt.Errorf("%w: %s has no v1 signature", ErrMissingSignature, StripeHeader)
	}
	return ts, sigs, nil
}

func stripeMAC(key []byte, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SignStripe returns a Stripe-Signature header value for body signed with
// secret at ts: "t=<unix>,v1=<hex>".
func SignStripe(secret string, ts time.Time, body []byte) string {
	t := ts.Unix()
	return "t=" + strconv.FormatInt(t, 10) + ",v1=" + hex.EncodeToString(stripeMAC([]byte(secret), t, body))
}

func stripeProvider() *Provider {
	return &Provider{
		Name: TypeStripe, Title: "Stripe",
		Scheme:    "Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"t.body\">",
		Fields:    []string{"secret*", "tolerance"},
		DedupKey:  `body.id`,
		EventType: `body.type`,
		Headers:   []string{StripeHeader},
		build: func(c Config, _ *Options) (Verifier, error) {
			secrets, err := requireSecrets(c)
			if err != nil {
				return nil, err
			}
			return &Stripe{secrets: secrets, tolerance: tolerance(c)}, nil
		},
		sign: func(c Config, m *Message) error {
			m.Header.Set(StripeHeader, SignStripe(firstSecret(c), m.Now, m.Body))
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
