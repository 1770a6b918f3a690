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

// PaddleHeader carries Paddle's signature.
const PaddleHeader = "Paddle-Signature"

// pairFormat is a signature header made of key=value elements: one Unix
// timestamp and one or more hex HMAC-SHA256 signatures of the timestamp,
// a separator and the body. Stripe writes "t=<unix>,v1=<hex>" over
// "<t>.<body>" (and Calendly the same in its own header); Paddle writes
// "ts=<unix>;h1=<hex>" over "<ts>:<body>".
type pairFormat struct {
	header  string
	elemSep string // between elements
	tsKey   string
	sigKey  string
	macSep  string // between the timestamp and the body in what is signed
}

var (
	stripeFormat   = pairFormat{header: StripeHeader, elemSep: ",", tsKey: "t", sigKey: "v1", macSep: "."}
	calendlyFormat = pairFormat{header: "Calendly-Webhook-Signature", elemSep: ",", tsKey: "t", sigKey: "v1", macSep: "."}
	paddleFormat   = pairFormat{header: PaddleHeader, elemSep: ";", tsKey: "ts", sigKey: "h1", macSep: ":"}
)

// parse reads the header. It is as strict as stripe-go (every element must
// be key=value, with no second "="), and stricter in refusing a repeated
// timestamp, so a Stripe header it accepts is one stripe-go accepts too.
// A signature that is not hex is skipped, as stripe-go does; other keys
// (Stripe's v0) are ignored.
func (f pairFormat) parse(h string) (ts int64, sigs [][]byte, err error) {
	haveTS := false
	for pair := range strings.SplitSeq(h, f.elemSep) {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || strings.Contains(v, "=") {
			return 0, nil, fmt.Errorf("%w: %s element %.40q is not key=value", ErrMalformedSignature, f.header, pair)
		}
		switch k {
		case f.tsKey:
			if haveTS {
				return 0, nil, fmt.Errorf("%w: %s has more than one timestamp", ErrMalformedSignature, f.header)
			}
			if ts, err = parseUnix(v); err != nil {
				return 0, nil, err
			}
			haveTS = true
		case f.sigKey:
			sig, err := hex.DecodeString(v)
			if err != nil {
				continue // as stripe-go: skip what cannot be a signature
			}
			sigs = append(sigs, sig)
		}
	}
	if !haveTS {
		return 0, nil, fmt.Errorf("%w: %s has no timestamp", ErrMalformedSignature, f.header)
	}
	if len(sigs) == 0 {
		return 0, nil, fmt.Errorf("%w: %s has no %s signature", ErrMissingSignature, f.header, f.sigKey)
	}
	return ts, sigs, nil
}

// mac is the HMAC-SHA256 of "<ts><macSep><body>" under key.
func (f pairFormat) mac(key []byte, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte(f.macSep))
	m.Write(body)
	return m.Sum(nil)
}

// sign returns the header value for body signed with secret at ts.
func (f pairFormat) sign(secret string, ts time.Time, body []byte) string {
	t := ts.Unix()
	return f.tsKey + "=" + strconv.FormatInt(t, 10) + f.elemSep + f.sigKey + "=" + hex.EncodeToString(f.mac([]byte(secret), t, body))
}

// Stripe verifies Stripe's Stripe-Signature header,
// "t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]": an HMAC-SHA256, keyed with
// the endpoint secret as is (whsec_ prefix included), over "<t>.<body>".
// Any v1 value matching any secret passes; other schemes are ignored. The
// timestamp must be within the tolerance of the request time, both ways.
// The same verifier serves the providers that copied the format (Calendly,
// and Paddle with "ts=<unix>;h1=<hex>" over "<ts>:<body>"). Build one with
// [New].
type Stripe struct {
	format    pairFormat // the zero value means Stripe's
	secrets   [][]byte
	tolerance time.Duration
}

// Verify checks r's signature header.
func (s *Stripe) Verify(r *Request) error {
	f := s.format
	if f.header == "" {
		f = stripeFormat
	}
	h := r.Header.Get(f.header)
	if h == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, f.header)
	}
	ts, sigs, err := f.parse(h)
	if err != nil {
		return err
	}
	if err := checkTimestamp(ts, r.now(), s.tolerance); err != nil {
		return err
	}
	if anyMAC(s.secrets, sigs, func(key []byte) []byte { return f.mac(key, ts, r.Body) }) {
		return nil
	}
	return fmt.Errorf("%w: no %s signature in %s matches", ErrSignatureMismatch, f.sigKey, f.header)
}

// SignStripe returns a Stripe-Signature header value for body signed with
// secret at ts: "t=<unix>,v1=<hex>".
func SignStripe(secret string, ts time.Time, body []byte) string {
	return stripeFormat.sign(secret, ts, body)
}

// pairRow fills p as a provider that signs in format f.
func pairRow(p *Provider, f pairFormat) *Provider {
	p.Fields = []string{"secret*", "tolerance"}
	p.Headers = []string{f.header}
	p.build = func(c Config, _ *Options) (Verifier, error) {
		secrets, err := requireSecrets(c)
		if err != nil {
			return nil, err
		}
		return &Stripe{format: f, secrets: secrets, tolerance: tolerance(c)}, nil
	}
	p.sign = func(c Config, m *Message) error {
		m.Header.Set(f.header, f.sign(firstSecret(c), m.Now, m.Body))
		return nil
	}
	return p
}

// pairProviders are Stripe, Calendly and Paddle.
func pairProviders() []*Provider {
	return []*Provider{
		pairRow(&Provider{
			Name: TypeStripe, Title: "Stripe",
			Scheme:    "Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"t.body\">",
			DedupKey:  `body.id`,
			EventType: `body.type`,
		}, stripeFormat),
		pairRow(&Provider{
			Name: "calendly", Title: "Calendly",
			Scheme:    "Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"t.body\">",
			DedupKey:  `body.event + ":" + body.payload.uri`,
			EventType: `body.event`,
		}, calendlyFormat),
		pairRow(&Provider{
			Name: "paddle", Title: "Paddle Billing",
			Scheme:    "Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256 of \"ts:body\">",
			DedupKey:  `body.event_id`,
			EventType: `body.event_type`,
		}, paddleFormat),
	}
}
