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
