// Package trigger builds sample webhooks for `mailroom trigger`: realistic
// payloads in the shapes each provider of the verify table documents, with
// fresh ids and timestamps, signed the way each provider signs them
// ([verify.Sign]), so that a local mailroom (or any receiver that uses the
// provider's own library) accepts them.
//
// Payloads are text/template files embedded from templates/<provider>/,
// one per event, named after the event: a "-" stands for the first "/"
// (Shopify's orders/create) and "~" for ":" (Bitbucket's repo:push), which
// file names cannot hold. A .json template is compacted JSON, a .form one a
// form-encoded body; event.json takes any type. The package builds
// requests; it does not send them.
package trigger

import (
	"bytes"
	"cmp"
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
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/mailroomhq/mailroom/internal/verify"
)

//go:embed all:templates
var templates embed.FS

// Provider is a webhook sender mailroom can imitate: a named row of the
// verify provider table that has sample templates.
type Provider struct {
	// Name is what `mailroom trigger` takes, the verify type (stripe,
	// github, slack ...).
	Name string
	// Title is the provider's own name.
	Title string
	// Source is the source name the example config gives this provider,
	// the default target /e/{Source}: the name itself, except "app" for
	// standard-webhooks.
	Source string
	// VerifyType is the verify scheme that checks its signature.
	VerifyType string
	// DefaultSecret is the demo signing secret (for the providers of
	// examples/mailroom.yaml, its value there), and SecretEnv the variable
	// that overrides it: NAME_WEBHOOK_SECRET.
	DefaultSecret string
	SecretEnv     string
	// Verify is the config of a source that accepts the samples signed
	// with DefaultSecret (for providers that sign with a private key, it
	// holds the public key).
	Verify verify.Config
	// Events are the event names it has templates for, sorted.
	Events []string
	// AnyType says the provider takes any event type (--type), from one
	// template: the Standard Webhooks family.
	AnyType bool

	row   *verify.Provider
	files map[string]string // event name to template file
}

// exampleSources are the demo sources of examples/mailroom.yaml whose name
// or secret is not the default one.
var exampleSources = map[string]struct{ source, secret string }{
	verify.TypeStripe:           {"stripe", "whsec_demo_stripe_secret"},
	verify.TypeGitHub:           {"github", "c72ec9b909b677f81dec673aebfaeab6"},
	verify.TypeShopify:          {"shopify", "shpss_04e68f24e0d141aadd737c3a"},
	verify.TypeStandardWebhooks: {"app", "whsec_j+sq9gpAIIedLBRcjsMaUvx8uaMEIL+K"},
}

// Providers returns the providers with sample templates, sorted by name.
func Providers() []Provider {
	var out []Provider
	for _, row := range verify.Providers() {
		if row.Generic || !row.CanSign() {
			continue
		}
		entries, err := fs.ReadDir(templates, "templates/"+row.Name)
		if err != nil {
			continue // a test requires every named provider to have templates
		}
		ex, ok := exampleSources[row.Name]
		if !ok {
			ex.source, ex.secret = row.Name, row.SampleSecret
		}
		p := Provider{Name: row.Name, Title: row.Title, Source: ex.source, VerifyType: row.Name, DefaultSecret: ex.secret,
			SecretEnv: strings.ToUpper(strings.ReplaceAll(row.Name, "-", "_")) + "_WEBHOOK_SECRET", row: row}
		if p.Name == verify.TypeStandardWebhooks {
			p.SecretEnv = "APP_WEBHOOK_SECRET"
		}
		p.Verify = row.SampleConfig(p.DefaultSecret)
		p.files = map[string]string{}
		for _, e := range entries {
			name := strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".json"), ".form")
			if name == e.Name() {
				continue
			}
			if name == anyTypeTemplate {
				p.AnyType = true
				p.files[""] = e.Name()
				continue
			}
			ev := strings.ReplaceAll(strings.Replace(name, "-", "/", 1), "~", ":")
			p.Events = append(p.Events, ev)
			p.files[ev] = e.Name()
		}
		slices.Sort(p.Events)
		out = append(out, p)
	}
	return out
}

// anyTypeTemplate is the template file (without .json) of a provider that
// takes any event type.
const anyTypeTemplate = "event"

// Lookup returns the provider called name.
func Lookup(name string) (Provider, error) {
	ps := Providers()
	names := make([]string, len(ps))
	for i, p := range ps {
		if p.Name == name {
			return p, nil
		}
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
	// URL is where the webhook will be sent, signed by the providers that
	// sign the URL (Twilio, Square, HubSpot).
	URL string
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
	file := p.files[event]
	switch {
	case p.AnyType && (event == "" || !slices.Contains(p.Events, event)):
		if o.Type == "" {
			o.Type = cmp.Or(event, "test.event")
		}
		event, file = o.Type, p.files[""]
	case !slices.Contains(p.Events, event):
		return nil, fmt.Errorf("no %s template for event %q (known: %s)", p.Name, event, strings.Join(p.Events, ", "))
	default:
		o.Type = event
	}
	body, err := render(p.Name, file, o)
	if err != nil {
		return nil, fmt.Errorf("render %s %s: %w", p.Name, event, err)
	}
	if len(o.Set) > 0 {
		if strings.HasSuffix(file, ".form") {
			return nil, fmt.Errorf("--set: %s samples are forms, not JSON", p.Name)
		}
		if body, err = applySet(body, o.Set); err != nil {
			return nil, err
		}
	}
	cfg := p.Verify
	if o.Secret != "" {
		cfg = p.row.SampleConfig(o.Secret)
	}
	wh := &Webhook{Provider: p.Name, Event: event, Header: http.Header{}}
	wh.Header.Set("Content-Type", "application/json")
	if strings.HasSuffix(file, ".form") {
		wh.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	decorate(p.Name, event, wh.Header, o.Now)
	var id string
	if p.row.IDHeader != "" {
		id = uuid()
		if p.row.Alias == verify.TypeStandardWebhooks || p.Name == verify.TypeStandardWebhooks {
			id = "msg_" + strings.ToLower(rand.Text())
		}
	}
	m := &verify.Message{URL: o.URL, Header: wh.Header, Body: body, ID: id, Event: event, Now: o.Now}
	if err := verify.Sign(cfg, m); err != nil {
		return nil, fmt.Errorf("sign %s %s: %w", p.Name, event, err)
	}
	wh.Body = m.Body
	wh.ID = id
	if p.row.IDHeader != "" {
		wh.ID = m.Header.Get(p.row.IDHeader) // the signer may have set the provider's own
	}
	if wh.ID == "" {
		var head struct {
			ID json.RawMessage `json:"id"` // a string or a number, kept exact
		}
		_ = json.Unmarshal(wh.Body, &head) // a form or an array has no id
		wh.ID = strings.Trim(string(head.ID), `"`)
	}
	return wh, nil
}

// decorate sets the headers a provider sends besides its signature, id and
// event, so that a sample looks like the real thing.
func decorate(provider, event string, h http.Header, now time.Time) {
	switch provider {
	case "twitch":
		h.Set("Twitch-Eventsub-Message-Type", "notification")
		h.Set("Twitch-Eventsub-Subscription-Version", "2")
	case "sentry":
		resource, _, _ := strings.Cut(event, ".")
		h.Set("Sentry-Hook-Resource", resource)
		h.Set("Sentry-Hook-Timestamp", strconv.FormatInt(now.Unix(), 10))
	case "slack":
		h.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	case verify.TypeStripe:
		h.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	case verify.TypeGitHub:
		h.Set("User-Agent", "GitHub-Hookshot/mailroom")
		h.Set("X-GitHub-Hook-ID", "123456789")
		h.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
		h.Set("X-GitHub-Hook-Installation-Target-ID", "1296269")
	case verify.TypeShopify:
		h.Set("User-Agent", "Shopify-Captain-Hook")
		h.Set("X-Shopify-Event-Id", uuid())
		h.Set("X-Shopify-Shop-Domain", "example.myshopify.com")
		h.Set("X-Shopify-API-Version", "2025-04")
		h.Set("X-Shopify-Triggered-At", now.UTC().Format(time.RFC3339Nano))
	}
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
	t := template.New(file).Funcs(funcs).Option("missingkey=error")
	dir := path.Join("templates", provider)
	if partials, _ := fs.Glob(templates, dir+"/_*.tmpl"); len(partials) > 0 {
		if _, err := t.ParseFS(templates, partials...); err != nil {
			return nil, err
		}
	}
	if _, err := t.ParseFS(templates, path.Join(dir, file)); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, struct{ Type string }{o.Type}); err != nil {
		return nil, err
	}
	if strings.HasSuffix(file, ".form") {
		return bytes.TrimSpace(buf.Bytes()), nil
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
	var b strings.Builder
	if p.AnyType {
		b.WriteString("  (any type: --type invoice.paid, or give it as EVENT)\n")
	}
	for _, e := range p.Events {
		b.WriteString("  " + e + "\n")
	}
	return b.String()
}
