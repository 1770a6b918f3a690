package bench

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// Provider says how the generator signs and identifies the webhooks of one
// signature scheme, and how a source that accepts them is configured.
type Provider struct {
	// Name is the scheme: stripe, github, shopify, standard-webhooks or
	// hmac.
	Name string
	// Verify is the source's verification config, secret included.
	Verify store.VerifyConfig
	// DedupKey is the source's dedup key expression, or "" for the
	// scheme's default.
	DedupKey string
	// sign sets the signature (and id) headers of one request.
	sign func(h http.Header, id string, body []byte, now time.Time) error
}

// DefaultSecret is the signing secret of the generated sources, unless
// the caller sets another.
const DefaultSecret = "mailroom-bench-secret"

// Providers returns the names [NewProvider] accepts, sorted.
func Providers() []string {
	names := []string{verify.TypeStripe, verify.TypeGitHub, verify.TypeShopify, verify.TypeStandardWebhooks, verify.TypeHMAC}
	sort.Strings(names)
	return names
}

// NewProvider returns the provider called name, signing with secret (for
// standard-webhooks, secret is base64-encoded behind "whsec_" unless it
// already has that prefix). Each request carries a unique provider id where
// the scheme's default dedup key looks for it (body.id for stripe and hmac,
// X-GitHub-Delivery, X-Shopify-Webhook-Id, webhook-id), so no generated
// request is a duplicate.
func NewProvider(name, secret string) (*Provider, error) {
	if secret == "" {
		secret = DefaultSecret
	}
	p := &Provider{Name: name, Verify: store.VerifyConfig{Type: name, Secret: secret}}
	switch name {
	case verify.TypeStripe:
		p.sign = func(h http.Header, _ string, body []byte, now time.Time) error {
			h.Set(verify.StripeHeader, verify.SignStripe(secret, now, body))
			return nil
		}
	case verify.TypeGitHub:
		p.sign = func(h http.Header, id string, body []byte, _ time.Time) error {
			h.Set("X-GitHub-Delivery", id)
			h.Set("X-GitHub-Event", "bench")
			h.Set(verify.GitHubHeader, verify.SignGitHub(secret, body))
			return nil
		}
	case verify.TypeShopify:
		p.sign = func(h http.Header, id string, body []byte, _ time.Time) error {
			h.Set("X-Shopify-Webhook-Id", id)
			h.Set("X-Shopify-Topic", "bench/event")
			h.Set(verify.ShopifyHeader, verify.SignShopify(secret, body))
			return nil
		}
	case verify.TypeStandardWebhooks:
		if len(secret) < 6 || secret[:6] != "whsec_" {
			secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte(secret))
		}
		p.Verify.Secret = secret
		p.sign = func(h http.Header, id string, body []byte, now time.Time) error {
			sig, err := verify.SignStandardWebhooks(secret, id, now, body)
			if err != nil {
				return err
			}
			h.Set(verify.StandardWebhooksIDHeader, id)
			h.Set(verify.StandardWebhooksTimestampHeader, fmt.Sprint(now.Unix()))
			h.Set(verify.StandardWebhooksSignatureHeader, sig)
			return nil
		}
	case verify.TypeHMAC:
		p.Verify.Header, p.Verify.Algorithm, p.Verify.Encoding = "X-Signature", "sha256", "hex"
		p.DedupKey = "body.id"
		cfg := p.Verify
		if _, err := verify.New(cfg); err != nil {
			return nil, fmt.Errorf("provider hmac: %w", err)
		}
		p.sign = func(h http.Header, _ string, body []byte, _ time.Time) error {
			sig, err := verify.SignHMAC(cfg, body)
			if err != nil {
				return err
			}
			h.Set(cfg.Header, sig)
			return nil
		}
	default:
		return nil, fmt.Errorf("unknown provider %q (want one of %v)", name, Providers())
	}
	if _, err := verify.New(p.Verify); err != nil {
		return nil, fmt.Errorf("provider %s: %w", name, err)
	}
	return p, nil
}
