package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// ShopifyHeader carries Shopify's signature.
const ShopifyHeader = "X-Shopify-Hmac-Sha256"

// Shopify verifies Shopify's X-Shopify-Hmac-Sha256 header: the standard
// base64 of an HMAC-SHA256 of the body keyed with the app's client secret.
// Build one with [New].
type Shopify struct {
	secrets [][]byte
}

// Verify checks r's X-Shopify-Hmac-Sha256 header.
func (s *Shopify) Verify(r *Request) error {
	h := r.Header.Get(ShopifyHeader)
	if h == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, ShopifyHeader)
	}
	sig, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return fmt.Errorf("%w: %s is not base64", ErrMalformedSignature, ShopifyHeader)
	}
	for _, key := range s.secrets {
		if hmac.Equal(bodyMAC(sha256.New, key, r.Body), sig) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s matches no secret", ErrSignatureMismatch, ShopifyHeader)
}

// SignShopify returns an X-Shopify-Hmac-Sha256 header value for body signed
// with secret.
func SignShopify(secret string, body []byte) string {
	return base64.StdEncoding.EncodeToString(bodyMAC(sha256.New, []byte(secret), body))
}

func shopifyProvider() *Provider {
	return &Provider{
		Name: TypeShopify, Title: "Shopify",
		Scheme:      "X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>",
		Fields:      []string{"secret*"},
		IDHeader:    "X-Shopify-Webhook-Id",
		EventHeader: "X-Shopify-Topic",
		DedupKey:    `headers["x-shopify-webhook-id"]`,
		EventType:   `headers["x-shopify-topic"]`,
		Headers:     []string{ShopifyHeader, "X-Shopify-Webhook-Id", "X-Shopify-Topic"},
		build: func(c Config, _ *Options) (Verifier, error) {
			secrets, err := requireSecrets(c)
			if err != nil {
				return nil, err
			}
			return &Shopify{secrets: secrets}, nil
		},
		sign: func(c Config, m *Message) error {
			m.Header.Set(ShopifyHeader, SignShopify(firstSecret(c), m.Body))
			return nil
		},
	}
}
