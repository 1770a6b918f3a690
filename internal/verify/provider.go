package verify

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Provider is one row of the provider table: a webhook sender (or a generic
// scheme) that a source can name as its verify type, with everything the
// rest of mailroom needs to know about it. The catalog takes its default
// dedup key and event type, `mailroom trigger` and `mailroom bench` sign with
// it, `mailroom listen` forwards its headers, ingest answers its handshake,
// and docs/providers.md lists it. A Provider is immutable.
type Provider struct {
	// Name is the verify type: `verify: {type: <Name>}`.
	Name string
	// Title is the provider's own name ("Slack", "Amazon SNS").
	Title string
	// Scheme says in one line how its requests are authenticated.
	Scheme string
	// Fields are the config keys it uses besides type; those [New]
	// requires end with "*".
	Fields []string
	// Alias is the provider whose scheme this one reuses ("standard-webhooks"
	// for Clerk), or "".
	Alias string
	// IDHeader is the header that carries the provider's id of a delivery
	// (a retry keeps it), or "" when the id is in the body.
	IDHeader string
	// EventHeader is the header that carries the event type, or "".
	EventHeader string
	// DedupKey is the CEL expression of the default dedup key, over
	// {body, headers, query, path, source}; "" means none.
	DedupKey string
	// EventType is the CEL expression of the event type; "" means the
	// generic guess (body.type when present).
	EventType string
	// Headers are the request headers the receiver needs to verify a
	// forwarded copy (signature, timestamp, id, event), kept by
	// `mailroom listen`.
	Headers []string
	// CredentialHeader is the header that carries the secret itself
	// (GitLab's token, Telegram's secret token), masked before a request
	// is stored; see [Provider.Credentials].
	CredentialHeader string
	// Handshake describes the endpoint check the source answers itself,
	// or "" when the provider has none.
	Handshake string
	// SampleSecret is a public demo signing secret in the form the scheme
	// needs (for the schemes signed with a private key, that key), used by
	// `mailroom trigger` when none is given and by tests. Never use it for
	// a real source.
	SampleSecret string
	// Unsigned marks the schemes that prove the sender knows a secret (a
	// token, credentials) without signing the body, so they do not show
	// that the body is intact.
	Unsigned bool
	// SignRewritesBody marks the schemes whose signer sets fields of the
	// body (the signature of Mailgun and AWS SNS, Linear's
	// webhookTimestamp, Microsoft Graph's clientState): the body sent is
	// not the one given to [Sign].
	SignRewritesBody bool
	// Generic marks a generic scheme (hmac, basic, api-key, none) rather
	// than a named provider.
	Generic bool

	build func(c Config, o *Options) (Verifier, error)
	// sign sets the signature of m (and may rewrite m.Body, for schemes
	// that sign fields of the body); nil when mailroom cannot sign as the
	// provider.
	sign func(c Config, m *Message) error
	// sample returns the config of a source that accepts what sign makes
	// with secret; nil means {Type: Name, Secret: secret}.
	sample func(secret string) Config
}

// Options tunes the verifiers [New] builds. The zero value is ready to use.
type Options struct {
	// HTTPClient fetches the signing certificates of AWS SNS. If nil, a
	// client with a 10s timeout.
	HTTPClient *http.Client
	// CertHostAllowed reports whether an SNS SigningCertURL host may be
	// fetched. If nil, only sns.<region>.amazonaws.com (and .com.cn) over
	// https, see [SNSCertHost]. Tests inject a loopback server here.
	CertHostAllowed func(scheme, host string) bool
}

// Message is a webhook to sign as its provider would, for `mailroom
// trigger`, `mailroom bench` and tests.
type Message struct {
	// Method is the HTTP method; empty means POST.
	Method string
	// URL is where it is sent: the schemes that sign the URL (Twilio,
	// Square, HubSpot) sign this one.
	URL string
	// Header receives the signature headers, and the id and event headers
	// of the provider's row.
	Header http.Header
	// Body is the raw body. Schemes that carry the signature in the body
	// (Mailgun, AWS SNS) rewrite it.
	Body []byte
	// ID is the provider's delivery id, set in [Provider.IDHeader].
	ID string
	// Event is the event type, set in [Provider.EventHeader].
	Event string
	// Now is the signing time.
	Now time.Time
}

func (m *Message) method() string { return cmp.Or(m.Method, http.MethodPost) }

// table returns the provider table, sorted by name. It is built on each
// call so that no package state exists; callers that look up often keep
// the result.
func table() []*Provider {
	rows := []*Provider{
		githubProvider(), shopifyProvider(), standardWebhooksProvider(),
		hmacProvider(), basicProvider(), apiKeyProvider(), noneProvider(),
	}
	rows = append(rows, svixAliases()...)
	rows = append(rows, bodyHMACProviders()...)
	rows = append(rows, tokenProviders()...)
	rows = append(rows, signedBaseProviders()...)
	rows = append(rows, pairProviders()...)
	rows = append(rows, pagerDutyProvider(), linearProvider(),
		mailgunProvider(), twilioProvider(), discordProvider(), sendGridProvider(), snsProvider())
	for _, p := range rows {
		if p.SampleSecret == "" {
			p.SampleSecret = "mailroom-demo-" + p.Name + "-secret"
		}
	}
	slices.SortFunc(rows, func(a, b *Provider) int { return strings.Compare(a.Name, b.Name) })
	return rows
}

// Providers returns every provider and generic scheme, sorted by name.
func Providers() []*Provider { return table() }

// sharedTable is the table built once for [Lookup] and [Sign], which run
// per request and per delivery (building it costs ~40 closures each
// time: 10% of the CPU of a signed ingest under load). It is constant:
// no row is changed after it is built, and callers get rows they must not
// change.
var sharedTable = sync.OnceValue(table)

// Lookup returns the row called name; "" is "none". The row is shared:
// callers must not change it.
func Lookup(name string) (*Provider, error) {
	name = cmp.Or(name, TypeNone)
	for _, p := range sharedTable() {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, configErr("type", "unknown type %q (valid: %s)", name, strings.Join(Types(), ", "))
}

// Types returns the names of every row, sorted.
func Types() []string {
	var out []string
	for _, p := range table() {
		out = append(out, p.Name)
	}
	return out
}

// Credentials returns the headers of a request to a source verified with
// cfg that carry a credential, to mask before the request is stored:
// [Provider.CredentialHeader], or the configured header of api-key.
func (p *Provider) Credentials(cfg Config) []string {
	if p.Name == TypeAPIKey {
		return []string{cmp.Or(cfg.Header, DefaultAPIKeyHeader)}
	}
	if p.CredentialHeader != "" {
		return []string{p.CredentialHeader}
	}
	return nil
}

// Outbound reports whether deliveries can be signed as p
// (`sign: {type: <Name>, secret: ...}` on a destination): a named provider
// whose signature mailroom makes from the secret alone, over the body as
// it is delivered. Standard Webhooks and its aliases, Stripe, GitHub,
// Slack ... qualify; the schemes that sign with a private key, rewrite the
// body or send the secret itself do not.
func (p *Provider) Outbound() bool {
	return p.sign != nil && p.sample == nil && !p.SignRewritesBody && !p.Unsigned && !p.Generic
}

// OutboundTypes returns the names of the rows deliveries can be signed as,
// sorted.
func OutboundTypes() []string {
	var out []string
	for _, p := range table() {
		if p.Outbound() {
			out = append(out, p.Name)
		}
	}
	return out
}

// CheckOutbound returns nil if deliveries can be signed as typ with
// secret, else a [*ConfigError] on "type" or "secret".
func CheckOutbound(typ, secret string) error {
	p, err := Lookup(typ)
	if err != nil || !p.Outbound() {
		return configErr("type", "%q cannot sign deliveries (want %s or another provider that docs/providers.md marks as signing deliveries, or leave it out for no signature)", typ, TypeStandardWebhooks)
	}
	if secret == "" {
		return configErr("secret", "required for type %q", typ)
	}
	_, err = p.build(Config{Type: typ, Secret: secret}, &Options{})
	return err
}

// CanSign reports whether mailroom can sign requests as p (not so for the
// schemes that need a provider's private key it cannot hold in a sample,
// such as AWS SNS's certificates).
func (p *Provider) CanSign() bool { return p.sign != nil }

// SampleConfig returns the verify config of a source that accepts what
// [Sign] makes with secret (for providers signed with a private key, secret
// is that key and the config holds the public half).
func (p *Provider) SampleConfig(secret string) Config {
	if p.sample != nil {
		return p.sample(secret)
	}
	return Config{Type: p.Name, Secret: secret}
}

// Sign sets on m what makes it pass the verifier of cfg's provider: the
// id and event headers of the row (from m.ID and m.Event, when set), and the
// signature made with cfg's first secret. For "none" it sets only the id
// and event. It fails on the same config errors as [New], and for a
// provider mailroom cannot sign as.
func Sign(cfg Config, m *Message) error {
	p, err := Lookup(cfg.Type)
	if err != nil {
		return err
	}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	if m.Now.IsZero() {
		m.Now = time.Now()
	}
	if p.IDHeader != "" && m.ID != "" {
		m.Header.Set(p.IDHeader, m.ID)
	}
	if p.EventHeader != "" && m.Event != "" {
		m.Header.Set(p.EventHeader, m.Event)
	}
	if p.sign == nil {
		return fmt.Errorf("sign as %s: mailroom cannot sign as this provider", p.Name)
	}
	if _, err := p.build(cfg, &Options{}); err != nil {
		return err
	}
	return p.sign(cfg, m)
}

// firstSecret returns cfg's first secret, or "".
func firstSecret(cfg Config) string {
	if all := cfg.AllSecrets(); len(all) > 0 {
		return all[0]
	}
	return ""
}
