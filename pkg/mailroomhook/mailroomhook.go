// Package mailroomhook lets a destination trust what mailroom delivers.
//
// A mailroom destination with `sign: {type: standard-webhooks, secret: ...}`
// signs every delivery with Standard Webhooks (https://www.standardwebhooks.com):
// the webhook-id, webhook-timestamp and webhook-signature headers, an
// HMAC-SHA256 over "id.timestamp.body" keyed with the secret. This package
// checks those headers on the raw body, in constant time, and refuses a
// timestamp older (or further ahead) than the tolerance, so that a captured
// delivery cannot be replayed later.
//
//	secret := os.Getenv("MAILROOM_SIGNING_SECRET") // whsec_...
//	http.Handle("/hooks", mailroomhook.Middleware(secret, nil, handler))
//
// The same secret may be given with or without its whsec_ prefix. Several
// secrets (during a rotation) are accepted with [Options.MoreSecrets].
//
// The webhook-id is mailroom's delivery id; mailroom delivers at least
// once, so a receiver that must act once keeps the ids it has handled.
package mailroomhook

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mailroomhq/mailroom/internal/duration"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// Sentinel errors of [Verifier.Verify], for errors.Is.
var (
	// ErrMissingSignature: the webhook-* headers are absent.
	ErrMissingSignature = verify.ErrMissingSignature
	// ErrMalformedSignature: a header is present but unreadable.
	ErrMalformedSignature = verify.ErrMalformedSignature
	// ErrSignatureMismatch: no signature matches the body and secret.
	ErrSignatureMismatch = verify.ErrSignatureMismatch
	// ErrTimestampOutOfTolerance: the signed timestamp is too old or too
	// far ahead.
	ErrTimestampOutOfTolerance = verify.ErrTimestampOutOfTolerance
)

// DefaultTolerance is how far a signed timestamp may be from now when
// [Options.Tolerance] is zero.
const DefaultTolerance = 5 * time.Minute

// DefaultMaxBodyBytes caps the body [Middleware] reads when
// [Options.MaxBodyBytes] is zero.
const DefaultMaxBodyBytes = 10 << 20

// Options tunes a [Verifier]. The zero value is ready to use.
type Options struct {
	// MoreSecrets are accepted besides the main secret (rotation).
	MoreSecrets []string
	// Tolerance bounds the age and future skew of the signed timestamp.
	// If zero, [DefaultTolerance].
	Tolerance time.Duration
	// MaxBodyBytes caps the body the middleware reads. If zero,
	// [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Verifier checks mailroom's delivery signatures. It is safe for
// concurrent use.
type Verifier struct {
	v    verify.Verifier
	opts Options
}

// New returns a verifier for secret (the destination's sign.secret). It
// fails when a secret is empty or not base64 after its whsec_ prefix.
func New(secret string, opts *Options) (*Verifier, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Tolerance <= 0 {
		o.Tolerance = DefaultTolerance
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	v, err := verify.New(verify.Config{Type: verify.TypeStandardWebhooks, Secret: secret, Secrets: o.MoreSecrets,
		Tolerance: duration.Duration(o.Tolerance)}, nil)
	if err != nil {
		return nil, fmt.Errorf("mailroomhook: %w", err)
	}
	return &Verifier{v: v, opts: o}, nil
}

// Verify checks header's signature of body, the raw bytes as received.
// It returns nil for a genuine delivery, or an error matching one of the
// Err sentinels.
func (v *Verifier) Verify(header http.Header, body []byte) error {
	return v.v.Verify(&verify.Request{Header: header, Body: body, Now: v.opts.Now()})
}

// Verify is a one-shot [Verifier.Verify] with the default options.
func Verify(secret string, header http.Header, body []byte) error {
	v, err := New(secret, nil)
	if err != nil {
		return err
	}
	return v.Verify(header, body)
}

// Middleware returns a handler that answers 401 to requests whose
// signature does not verify and passes the others to next, with the body
// restored for it to read. A body over the limit is a 413.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, v.opts.MaxBodyBytes))
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if err := v.Verify(r.Header, body); err != nil {
			http.Error(w, "mailroom signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// Middleware is [Verifier.Middleware] for secret; it panics if secret is
// unusable, which is a configuration error found at start-up.
func Middleware(secret string, opts *Options, next http.Handler) http.Handler {
	v, err := New(secret, opts)
	if err != nil {
		panic(err)
	}
	return v.Middleware(next)
}
