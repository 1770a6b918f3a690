// Package trigger builds sample webhooks for `mailroom trigger`: realistic
// payloads in the shapes Stripe, GitHub, Shopify and Standard Webhooks
// senders document, with fresh ids and timestamps, signed the way each
// provider signs them, so that a local mailroom (or any receiver that uses
// the provider's own library) accepts them.
//
// Payloads are text/template files embedded from templates/<provider>/,
// one per event. The package builds requests; it does not send them.
package trigger

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"path"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

//go:embed all:templates
var templates embed.FS

// Provider is a webhook sender mailroom can imitate.
type Provider struct {
	// Name is what `mailroom trigger` takes: stripe, github, shopify or
	// standard-webhooks.
	Name string
	// Source is the source name the example config gives this provider,
	// the default target /e/{Source}.
	Source string
	// VerifyType is the verify scheme that checks its signature.
	VerifyType string
	// DefaultSecret is the demo secret of examples/mailroom.yaml, and
	// SecretEnv the variable that overrides it there.
	DefaultSecret string
	SecretEnv     string
	// Events are the event names it has templates for, sorted.
	Events []string
}

// providers are the known senders, their example-config sources and demo
// secrets (public values from examples/mailroom.yaml).
var providers = []Provider{
	{Name: "stripe", Source: "stripe", VerifyType: verify.TypeStripe, DefaultSecret: "whsec_demo_stripe_secret", SecretEnv: "STRIPE_WEBHOOK_SECRET"},
	{Name: "github", Source: "github", VerifyType: verify.TypeGitHub, DefaultSecret: "c72ec9b909b677f81dec673aebfaeab6", SecretEnv: "GITHUB_WEBHOOK_SECRET"},
	{Name: "shopify", Source: "shopify", VerifyType: verify.TypeShopify, DefaultSecret: "shpss_04e68f24e0d141aadd737c3a", SecretEnv: "SHOPIFY_WEBHOOK_SECRET"},
	{Name: "standard-webhooks", Source: "app", VerifyType: verify.TypeStandardWebhooks, DefaultSecret: "whsec_j+sq9gpAIIedLBRcjsMaUvx8uaMEIL+K", SecretEnv: "APP_WEBHOOK_SECRET"},
}

// Providers returns the known providers with their events.
func Providers() []Provider {
	out := make([]Provider, len(providers))
	for i, p := range providers {
		entries, _ := fs.ReadDir(templates, "templates/"+p.Name) // embedded: cannot fail
		for _, e := range entries {
			if p.Name == "standard-webhooks" {
				break // one template for every --type
			}
			name, ok := strings.CutSuffix(e.Name(), ".json")
			if !ok {
				continue
			}
			if p.Name == "shopify" {
				name = strings.Replace(name, "-", "/", 1)
			}
			p.Events = append(p.Events, name)
		}
		slices.Sort(p.Events)
		out[i] = p
	}
	return out
}

// Lookup returns the provider called name.
func Lookup(name string) (Provider, error) {
	for _, p := range Providers() {
		if p.Name == name {
			return p, nil
		}
	}
	names := make([]string, len(providers))
	for i, p := range providers {
		names[i] = p.Name
	}
	return Provider{}, fmt.Errorf("unknown provider %q (known: %s)", name, strings.Join(names, ", "))
}

// Options tunes [Build].
type Options struct {
	// Secret signs the webhook. Empty means the provider's DefaultSecret.
	Secret string
	// Set overrides body fields: "path=value" with a dotted path
	// ("data.object.payment_link=plink_123"). A value that parses as JSON
	// (a number, true, null, an object) is used as that JSON; anything
	// else is a string. Missing objects along the path are created.
	Set []string
	// Type is the event type of a standard-webhooks event. Empty means
	// the event name given to Build, or "test.event".
	Type string
	// Now stamps ids, timestamps and the signature. Zero means time.Now.
	Now time.Time
}

// Webhook is a signed sample request, ready to POST.
type Webhook struct {
	Provider string
	// Event is the provider's event type (Stripe type, GitHub event,
	// Shopify topic, Standard Webhooks type).
	Event string
	// ID is the provider's id of this delivery: the Stripe event id, the
	// X-GitHub-Delivery, X-Shopify-Webhook-Id or webhook-id.
	ID     string
	Header http.Header
	Body   []byte
}

// Build renders provider's template for event, applies opts.Set, and signs
// the result as the provider would.
func Build(provider, event string, opts *Options) (*Webhook, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	p, err := Lookup(provider)
	if err != nil {
		return nil, err
	}
	file := event
	if p.Name == "standard-webhooks" {
		if o.Type == "" {
			o.Type = event
		}
		if o.Type == "" {
			o.Type = "test.event"
		}
		event, file = o.Type, "event"
	} else if !slices.Contains(p.Events, event) {
		return nil, fmt.Errorf("no %s template for event %q (known: %s)", p.Name, event, strings.Join(p.Events, ", "))
	}
	body, err := render(p.Name, strings.ReplaceAll(file, "/", "-"), o)
	if err != nil {
		return nil, fmt.Errorf("render %s %s: %w", p.Name, event, err)
	}
	if len(o.Set) > 0 {
		if body, err = applySet(body, o.Set); err != nil {
			return nil, err
		}
	}
	secret := o.Secret
	if secret == "" {
		secret = p.DefaultSecret
	}
	wh := &Webhook{Provider: p.Name, Event: event, Header: http.Header{}, Body: body}
	wh.Header.Set("Content-Type", "application/json")
	switch p.Name {
	case "stripe":
		var head struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &head) // rendered JSON: cannot fail
		wh.ID = head.ID
		wh.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	case "github":
		wh.ID = uuid()
		wh.Header.Set("User-Agent", "GitHub-Hookshot/mailroom")
		wh.Header.Set("X-GitHub-Event", event)
		wh.Header.Set("X-GitHub-Delivery", wh.ID)
		wh.Header.Set("X-GitHub-Hook-ID", "123456789")
		wh.Header.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
		wh.Header.Set("X-GitHub-Hook-Installation-Target-ID", "1296269")
		// go-github's ValidatePayload also accepts the legacy SHA-1
		// header; GitHub sends both, mailroom checks the SHA-256 one.
	case "shopify":
		wh.ID = uuid()
		wh.Header.Set("User-Agent", "Shopify-Captain-Hook")
		wh.Header.Set("X-Shopify-Topic", event)
		wh.Header.Set("X-Shopify-Webhook-Id", wh.ID)
		wh.Header.Set("X-Shopify-Event-Id", uuid())
		wh.Header.Set("X-Shopify-Shop-Domain", "example.myshopify.com")
		wh.Header.Set("X-Shopify-API-Version", "2025-04")
		wh.Header.Set("X-Shopify-Triggered-At", o.Now.UTC().Format(time.RFC3339Nano))
	case "standard-webhooks":
		wh.ID = "msg_" + strings.ToLower(rand.Text())
		wh.Header.Set(verify.StandardWebhooksIDHeader, wh.ID)
	}
	if err := verify.Sign(store.VerifyConfig{Type: p.VerifyType, Secret: secret}, wh.Header, body, o.Now); err != nil {
		return nil, fmt.Errorf("sign %s %s: %w", p.Name, event, err)
	}
	return wh, nil
}

// render executes a template with fresh ids and o's clock.
func render(provider, file string, o Options) ([]byte, error) {
	funcs := template.FuncMap{
		"id":      func(prefix string) string { return prefix + randomAlnum(24) },
		"uuid":    uuid,
		"sha":     func() string { return randomHex(20) },
		"unix":    func() int64 { return o.Now.Unix() },
		"rfc3339": func() string { return o.Now.UTC().Format(time.RFC3339) },
		"num": func(lo, hi int64) int64 {
			n, _ := rand.Int(rand.Reader, big.NewInt(hi-lo+1))
			return lo + n.Int64()
		},
		"unixIn": func(d string) (int64, error) {
			dur, err := time.ParseDuration(d)
			return o.Now.Add(dur).Unix(), err
		},
	}
	t := template.New(file + ".json").Funcs(funcs).Option("missingkey=error")
	dir := path.Join("templates", provider)
	if partials, _ := fs.Glob(templates, dir+"/_*.tmpl"); len(partials) > 0 {
		if _, err := t.ParseFS(templates, partials...); err != nil {
			return nil, err
		}
	}
	if _, err := t.ParseFS(templates, path.Join(dir, file+".json")); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, struct{ Type string }{o.Type}); err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, buf.Bytes()); err != nil {
		return nil, fmt.Errorf("template is not JSON: %w", err)
	}
	return compact.Bytes(), nil
}

// applySet sets each path=value on the JSON object body.
func applySet(body []byte, sets []string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	for _, s := range sets {
		p, raw, ok := strings.Cut(s, "=")
		if !ok || p == "" {
			return nil, fmt.Errorf("--set %q: want path=value, e.g. data.object.payment_link=plink_123", s)
		}
		var v any = raw
		vdec := json.NewDecoder(strings.NewReader(raw))
		vdec.UseNumber()
		var parsed any
		if err := vdec.Decode(&parsed); err == nil && !vdec.More() && raw != "" {
			v = parsed
		}
		if err := setPath(root, strings.Split(p, "."), v); err != nil {
			return nil, fmt.Errorf("--set %q: %w", s, err)
		}
	}
	out, err := json.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return out, nil
}

func setPath(m map[string]any, parts []string, v any) error {
	for i, part := range parts {
		if part == "" {
			return errors.New("empty path element")
		}
		if i == len(parts)-1 {
			m[part] = v
			return nil
		}
		switch next := m[part].(type) {
		case map[string]any:
			m = next
		case nil:
			child := map[string]any{}
			m[part] = child
			m = child
		default:
			return fmt.Errorf("%s is not an object", strings.Join(parts[:i+1], "."))
		}
	}
	return nil
}

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomAlnum(n int) string {
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alnum))))
		b[i] = alnum[k.Int64()]
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// uuid returns a random (version 4) UUID.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// FormatEvents renders a provider's events for --list, one per line.
func FormatEvents(p Provider) string {
	if p.Name == "standard-webhooks" {
		return "  (any type: --type invoice.paid, or give it as EVENT)\n"
	}
	var b strings.Builder
	for _, e := range p.Events {
		b.WriteString("  " + e + "\n")
	}
	return b.String()
}
