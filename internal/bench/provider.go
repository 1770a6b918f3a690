package bench

import (
	"encoding/base64"
	"fmt"
	"net/http"
	neturl "net/url"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/verify"
)

// Provider says how the generator signs and identifies the webhooks of one
// row of the verify provider table, and how a source that accepts them is
// configured.
type Provider struct {
	// Name is the verify type: stripe, github, slack, hmac ...
	Name string
	// Verify is the source's verification config, secret included.
	Verify verify.Config
	// DedupKey is the source's dedup key expression, or "" for the
	// scheme's default.
	DedupKey string
	row      *verify.Provider
}

// DefaultSecret is the signing secret of the generated sources, unless
// the caller sets another.
const DefaultSecret = "mailroom-bench-secret"

// Providers returns the names [NewProvider] accepts, sorted: every row of
// the provider table mailroom can sign as, except "none" and those that
// carry the signature in the body (the generator's body is its own).
func Providers() []string {
	var names []string
	for _, p := range verify.Providers() {
		if p.CanSign() && p.Name != verify.TypeNone && !p.SignRewritesBody {
			names = append(names, p.Name)
		}
	}
	return names
}

// NewProvider returns the provider called name, signing with secret (for
// the Standard Webhooks family, secret is base64-encoded behind "whsec_"
// unless it already has that prefix). Each request carries a unique
// provider id where the scheme's default dedup key looks for it (the row's
// id header, else body.id, which the generated body carries), so no
// generated request is a duplicate.
func NewProvider(name, secret string) (*Provider, error) {
	row, err := verify.Lookup(name)
	if err != nil || !row.CanSign() || name == verify.TypeNone || row.SignRewritesBody {
		return nil, fmt.Errorf("unknown provider %q (want one of %v)", name, Providers())
	}
	if secret == "" {
		secret = DefaultSecret
		if _, err := verify.New(row.SampleConfig(secret), nil); err != nil {
			secret = row.SampleSecret // a scheme whose secret is a key
		}
	}
	if (row.Name == verify.TypeStandardWebhooks || row.Alias == verify.TypeStandardWebhooks) && !strings.HasPrefix(secret, "whsec_") {
		secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte(secret))
	}
	p := &Provider{Name: name, Verify: row.SampleConfig(secret), row: row}
	if row.DedupKey == "" {
		p.DedupKey = "body.id"
	}
	if _, err := verify.New(p.Verify, nil); err != nil {
		return nil, fmt.Errorf("provider %s: %w", name, err)
	}
	return p, nil
}

// sign sets the signature, id and event headers of one request to url,
// and returns the request URI to send it to: url's, which a scheme that
// signs the URL may have extended (Twilio's bodySHA256).
func (p *Provider) sign(h http.Header, url, id string, body []byte, now time.Time) (string, error) {
	m := &verify.Message{URL: url, Header: h, Body: body, ID: id, Event: "bench.event", Now: now}
	if err := verify.Sign(p.Verify, m); err != nil {
		return "", err
	}
	u, err := neturl.Parse(m.URL)
	if err != nil {
		return "", fmt.Errorf("sign as %s: %w", p.Name, err)
	}
	return u.RequestURI(), nil
}
