// Package verify checks that an inbound webhook was sent by the provider it
// claims to come from, one [Verifier] per signature scheme, and holds the
// provider table ([Providers]): for each named provider (Stripe, GitHub,
// Slack, Twilio, AWS SNS ...) and generic scheme (HMAC, HTTP Basic, API key)
// its verifier, its signer, where its delivery id and event type are, and
// the handshake it expects an endpoint to answer.
//
// Verification works on the raw body bytes exactly as received: callers
// must not re-encode or trim the body first. All secret comparisons are
// constant-time, and no input, however hostile, makes a verifier panic.
//
// The package also holds the signing side of the schemes, used to sign
// outbound deliveries (Standard Webhooks) and to make sample requests
// (mailroom trigger, tests). It does not read requests off the wire, map
// errors to HTTP statuses or log: that is the ingest handler's job.
package verify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance bounds the age, and the future skew, of a signed
// timestamp when a source sets no tolerance.
const DefaultTolerance = 5 * time.Minute

// Names of the schemes other packages refer to, as accepted in
// [Config.Type]. Every name is in [Providers].
const (
	TypeStripe           = "stripe"
	TypeGitHub           = "github"
	TypeShopify          = "shopify"
	TypeStandardWebhooks = "standard-webhooks"
	TypeHMAC             = "hmac"
	TypeBasic            = "basic"
	TypeAPIKey           = "api-key"
	TypeNone             = "none"
)

// Errors a verifier returns, always wrapped with detail. Callers branch on
// them with errors.Is.
var (
	// ErrMissingSignature means the request carries no signature or
	// credentials where the scheme expects them.
	ErrMissingSignature = errors.New("missing signature")
	// ErrMalformedSignature means the signature headers are present but
	// cannot be parsed (bad timestamp, bad encoding, missing parts).
	ErrMalformedSignature = errors.New("malformed signature")
	// ErrSignatureMismatch means no signature matched any configured secret.
	ErrSignatureMismatch = errors.New("signature mismatch")
	// ErrTimestampOutOfTolerance means the signed timestamp is too old or
	// too far in the future.
	ErrTimestampOutOfTolerance = errors.New("timestamp out of tolerance")
	// ErrBadCredentials means Basic credentials or an API key were given
	// but are wrong.
	ErrBadCredentials = errors.New("bad credentials")
)

// Request is what a verifier sees of an inbound webhook.
type Request struct {
	// Header holds the request headers, canonicalised as net/http does.
	Header http.Header
	// Body is the raw body exactly as received.
	Body []byte
	// Query is the parsed query string.
	Query url.Values
	// Method is the HTTP method; empty means POST.
	Method string
	// URL is the full URL the request was sent to, as the provider saw it
	// (scheme, host, path and query), for the schemes that sign the URL;
	// [Config.URL] overrides it.
	URL string
	// Ctx bounds what a verifier fetches (AWS SNS certificates). If nil,
	// context.Background().
	Ctx context.Context
	// Now is when the request was received, the reference for timestamp
	// tolerance. If zero, time.Now() is used.
	Now time.Time
}

// NewRequest returns what a verifier sees of r, whose body (already read)
// is body, received at now. Its URL is rebuilt from r: https when r came
// over TLS or with X-Forwarded-Proto: https, else http; then r's Host and
// request URI.
func NewRequest(r *http.Request, body []byte, now time.Time) *Request {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return &Request{Header: r.Header, Body: body, Query: r.URL.Query(), Method: r.Method,
		URL: scheme + "://" + r.Host + r.URL.RequestURI(), Ctx: r.Context(), Now: now}
}

func (r *Request) ctx() context.Context {
	if r.Ctx == nil {
		return context.Background()
	}
	return r.Ctx
}

func (r *Request) method() string {
	if r.Method == "" {
		return http.MethodPost
	}
	return r.Method
}

func (r *Request) now() time.Time {
	if r.Now.IsZero() {
		return time.Now()
	}
	return r.Now
}

// Verifier checks one request. Implementations are safe for concurrent use
// and never modify the request.
type Verifier interface {
	// Verify returns nil if the request is genuine, or an error wrapping
	// one of the package's sentinel errors.
	Verify(r *Request) error
}

// ConfigError reports an invalid [Config] field. Field is the
// config key without the "verify." prefix ("secret", "algorithm").
type ConfigError struct {
	Field string
	Err   error // the reason
}

// Error formats the error as "verify.<field>: <reason>".
func (e *ConfigError) Error() string { return "verify." + e.Field + ": " + e.Err.Error() }

// Unwrap returns the underlying reason.
func (e *ConfigError) Unwrap() error { return e.Err }

func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// New validates cfg and builds the verifier of its provider; opts may be
// nil. An empty Type means "none". The error is a [*ConfigError] naming the
// field at fault.
func New(cfg Config, opts *Options) (Verifier, error) {
	if cfg.Tolerance < 0 {
		return nil, configErr("tolerance", "must not be negative")
	}
	p, err := Lookup(cfg.Type)
	if err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	return p.build(cfg, &o)
}

// None accepts every request. It is the verifier of a source with no
// verify config.
type None struct{}

// Verify always returns nil.
func (None) Verify(*Request) error { return nil }

// requireSecrets returns cfg's secrets as keys, or an error if there are none.
func requireSecrets(cfg Config) ([][]byte, error) {
	all := cfg.AllSecrets()
	if len(all) == 0 {
		return nil, configErr("secret", "required for type %q", cfg.Type)
	}
	keys := make([][]byte, len(all))
	for i, s := range all {
		keys[i] = []byte(s)
	}
	return keys, nil
}

func tolerance(cfg Config) time.Duration {
	if d := cfg.Tolerance.D(); d > 0 {
		return d
	}
	return DefaultTolerance
}

// parseUnix reads a decimal Unix timestamp in seconds.
func parseUnix(s string) (int64, error) {
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: timestamp %.40q is not a Unix time", ErrMalformedSignature, s)
	}
	return ts, nil
}

// signedAt reads a signature header and the Unix timestamp header it
// covers, and checks the timestamp against tol: the first step of the
// schemes that sign "timestamp + body" (Discord, SendGrid).
func signedAt(r *Request, sigH, tsH string, tol time.Duration) (sig, ts string, err error) {
	sig, ts = r.Header.Get(sigH), r.Header.Get(tsH)
	switch {
	case sig == "":
		return "", "", fmt.Errorf("%w: no %s header", ErrMissingSignature, sigH)
	case ts == "":
		return "", "", fmt.Errorf("%w: no %s header", ErrMalformedSignature, tsH)
	}
	unix, err := parseUnix(ts)
	if err != nil {
		return "", "", err
	}
	return sig, ts, checkTimestamp(unix, r.now(), tol)
}

// checkTimestamp returns an error wrapping ErrTimestampOutOfTolerance if
// ts is more than tol away from now, in either direction.
func checkTimestamp(ts int64, now time.Time, tol time.Duration) error {
	t := time.Unix(ts, 0)
	if age := now.Sub(t); age > tol {
		return fmt.Errorf("%w: timestamp %d is %s old, tolerance %s", ErrTimestampOutOfTolerance, ts, age.Truncate(time.Second), tol)
	}
	if ahead := t.Sub(now); ahead > tol {
		return fmt.Errorf("%w: timestamp %d is %s in the future, tolerance %s", ErrTimestampOutOfTolerance, ts, ahead.Truncate(time.Second), tol)
	}
	return nil
}

// anySecret reports whether given equals one of keys, comparing every key
// (no early exit) in constant time. No keys match nothing.
func anySecret(given string, keys []string) bool {
	ok := false
	for _, k := range keys {
		if equalSecret(given, k) {
			ok = true
		}
	}
	return ok
}

// anyMAC reports whether one of sigs is the MAC that mac computes under
// one of keys.
func anyMAC(keys, sigs [][]byte, mac func(key []byte) []byte) bool {
	for _, key := range keys {
		want := mac(key)
		for _, sig := range sigs {
			if hmac.Equal(want, sig) {
				return true
			}
		}
	}
	return false
}

// equalSecret compares two secrets in constant time, without leaking their
// lengths (subtle.ConstantTimeCompare returns early on a length mismatch).
func equalSecret(given, want string) bool {
	a := sha256.Sum256([]byte(given))
	b := sha256.Sum256([]byte(want))
	return hmac.Equal(a[:], b[:])
}
