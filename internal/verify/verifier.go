// Package verify checks that an inbound webhook was sent by the provider it
// claims to come from, one [Verifier] per signature scheme (Stripe, GitHub,
// Shopify, Standard Webhooks, generic HMAC, HTTP Basic, API key).
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
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// DefaultTolerance bounds the age, and the future skew, of a signed
// timestamp when a source sets no tolerance.
const DefaultTolerance = 5 * time.Minute

// Scheme names accepted in [store.VerifyConfig.Type].
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
	// Now is when the request was received, the reference for timestamp
	// tolerance. If zero, time.Now() is used.
	Now time.Time
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

// ConfigError reports an invalid [store.VerifyConfig] field. Field is the
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

// Types returns the supported scheme names, sorted.
func Types() []string {
	return []string{TypeAPIKey, TypeBasic, TypeGitHub, TypeHMAC, TypeNone, TypeShopify, TypeStandardWebhooks, TypeStripe}
}

// New validates cfg and builds its verifier. An empty Type means "none".
// The error is a [*ConfigError] naming the field at fault.
func New(cfg store.VerifyConfig) (Verifier, error) {
	if cfg.Tolerance < 0 {
		return nil, configErr("tolerance", "must not be negative")
	}
	switch cfg.Type {
	case TypeStripe:
		secrets, err := requireSecrets(cfg)
		if err != nil {
			return nil, err
		}
		return &Stripe{secrets: secrets, tolerance: tolerance(cfg)}, nil
	case TypeGitHub:
		secrets, err := requireSecrets(cfg)
		if err != nil {
			return nil, err
		}
		return &GitHub{secrets: secrets}, nil
	case TypeShopify:
		secrets, err := requireSecrets(cfg)
		if err != nil {
			return nil, err
		}
		return &Shopify{secrets: secrets}, nil
	case TypeStandardWebhooks:
		return newStandardWebhooks(cfg)
	case TypeHMAC:
		return newHMAC(cfg)
	case TypeBasic:
		return newBasic(cfg)
	case TypeAPIKey:
		return newAPIKey(cfg)
	case TypeNone, "":
		return None{}, nil
	}
	return nil, configErr("type", "unknown type %q (valid: %s)", cfg.Type, strings.Join(Types(), ", "))
}

// None accepts every request. It is the verifier of a source with no
// verify config.
type None struct{}

// Verify always returns nil.
func (None) Verify(*Request) error { return nil }

// requireSecrets returns cfg's secrets as keys, or an error if there are none.
func requireSecrets(cfg store.VerifyConfig) ([][]byte, error) {
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

func tolerance(cfg store.VerifyConfig) time.Duration {
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

// equalSecret compares two secrets in constant time, without leaking their
// lengths (subtle.ConstantTimeCompare returns early on a length mismatch).
func equalSecret(given, want string) bool {
	a := sha256.Sum256([]byte(given))
	b := sha256.Sum256([]byte(want))
	return hmac.Equal(a[:], b[:])
}

// Sign sets on h the headers that make a request with body pass cfg's
// verifier at now, using cfg's first secret: a sample signer for
// `mailroom trigger` and tests. For standard-webhooks it keeps a
// Webhook-Id already in h, or sets a random one. For "none" it sets
// nothing. It fails on the same config errors as [New].
func Sign(cfg store.VerifyConfig, h http.Header, body []byte, now time.Time) error {
	if _, err := New(cfg); err != nil {
		return err
	}
	var first string
	if all := cfg.AllSecrets(); len(all) > 0 {
		first = all[0]
	}
	switch cfg.Type {
	case TypeStripe:
		h.Set(StripeHeader, SignStripe(first, now, body))
	case TypeGitHub:
		h.Set(GitHubHeader, SignGitHub(first, body))
	case TypeShopify:
		h.Set(ShopifyHeader, SignShopify(first, body))
	case TypeStandardWebhooks:
		id := h.Get(StandardWebhooksIDHeader)
		if id == "" {
			id = "msg_" + rand.Text()
		}
		sig, err := SignStandardWebhooks(first, id, now, body)
		if err != nil {
			return err
		}
		h.Set(StandardWebhooksIDHeader, id)
		h.Set(StandardWebhooksTimestampHeader, strconv.FormatInt(now.Unix(), 10))
		h.Set(StandardWebhooksSignatureHeader, sig)
	case TypeHMAC:
		sig, err := SignHMAC(cfg, body)
		if err != nil {
			return err
		}
		h.Set(cfg.Header, sig)
	case TypeBasic:
		h.Set("Authorization", basicAuthHeader(cfg.Username, cfg.Password))
	case TypeAPIKey:
		h.Set(cmp.Or(cfg.Header, DefaultAPIKeyHeader), first)
	}
	return nil
}
