package trigger_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-github/v84/github"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/trigger"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// sampleURL is where the samples of the tests are sent, for the providers
// that sign the URL.
const sampleURL = "https://mailroom.example/e/sample"

// verifyOptions are the verifier options of the tests: none yet.
func verifyOptions(testing.TB) *verify.Options { return nil }

// TestEveryNamedProviderHasSamples checks that `mailroom trigger` offers
// every named provider of the verify table.
func TestEveryNamedProviderHasSamples(t *testing.T) {
	t.Parallel()
	have := map[string]bool{}
	for _, p := range trigger.Providers() {
		have[p.Name] = true
	}
	for _, row := range verify.Providers() {
		if !row.Generic && !have[row.Name] {
			t.Errorf("provider %s has no templates in internal/trigger/templates/%s", row.Name, row.Name)
		}
	}
}

// TestEveryTemplateVerifies builds every template and checks its
// signature with the provider's own library and with mailroom's verifier.
func TestEveryTemplateVerifies(t *testing.T) {
	t.Parallel()
	for _, p := range trigger.Providers() {
		events := p.Events
		if p.AnyType {
			events = append(events, "invoice.paid")
		}
		if len(events) == 0 {
			t.Fatalf("provider %s has no templates", p.Name)
		}
		for _, ev := range events {
			t.Run(p.Name+"/"+ev, func(t *testing.T) {
				t.Parallel()
				wh, err := trigger.Build(p.Name, ev, &trigger.Options{URL: sampleURL})
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				if !json.Valid(wh.Body) {
					t.Fatalf("body is not JSON: %s", wh.Body)
				}
				checkProviderLibrary(t, p, wh)
				v, err := verify.New(p.Verify, verifyOptions(t))
				if err != nil {
					t.Fatal(err)
				}
				if err := v.Verify(&verify.Request{Header: wh.Header, Body: wh.Body, URL: sampleURL, Now: time.Now()}); err != nil {
					t.Fatalf("mailroom verifier: %v", err)
				}
				if got := eventType(t, p, wh); got != wh.Event {
					t.Fatalf("mailroom reads event type %q, want %q", got, wh.Event)
				}
			})
		}
	}
}

// checkProviderLibrary verifies wh with the provider's official library.
func checkProviderLibrary(t *testing.T, p trigger.Provider, wh *trigger.Webhook) {
	t.Helper()
	switch p.Name {
	case "stripe":
		ev, err := webhook.ConstructEventWithOptions(wh.Body, wh.Header.Get("Stripe-Signature"), p.DefaultSecret,
			webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
		if err != nil {
			t.Fatalf("stripe-go ConstructEvent: %v", err)
		}
		if string(ev.Type) != wh.Event || ev.ID != wh.ID {
			t.Fatalf("stripe-go reads %s %s, want %s %s", ev.Type, ev.ID, wh.Event, wh.ID)
		}
	case "github":
		r := httptest.NewRequest(http.MethodPost, "/e/github", bytes.NewReader(wh.Body))
		r.Header = wh.Header.Clone()
		payload, err := github.ValidatePayload(r, []byte(p.DefaultSecret))
		if err != nil {
			t.Fatalf("go-github ValidatePayload: %v", err)
		}
		if _, err := github.ParseWebHook(github.WebHookType(r), payload); err != nil {
			t.Fatalf("go-github ParseWebHook: %v", err)
		}
		if github.DeliveryID(r) != wh.ID {
			t.Fatalf("delivery id %q, want %q", github.DeliveryID(r), wh.ID)
		}
	case "shopify":
		// Shopify has no official Go library; its documented check is
		// base64(HMAC-SHA256(secret, body)), which verify.SignShopify and
		// the verifier below implement and verify's tests cover.
		if wh.Header.Get("X-Shopify-Topic") != wh.Event || wh.Header.Get("X-Shopify-Webhook-Id") == "" {
			t.Fatalf("shopify headers: %v", wh.Header)
		}
	case "standard-webhooks", "clerk", "resend", "svix", "openai", "replicate":
		lib, err := standardwebhooks.NewWebhook(p.DefaultSecret)
		if err != nil {
			t.Fatal(err)
		}
		h := wh.Header.Clone()
		for _, k := range []string{"Id", "Timestamp", "Signature"} { // the library reads webhook-* only
			if v := h.Get("Svix-" + k); v != "" {
				h.Set("Webhook-"+k, v)
			}
		}
		if err := lib.Verify(wh.Body, h); err != nil {
			t.Fatalf("standard-webhooks Verify: %v", err)
		}
	}
}

// eventType runs the catalog's event type expression for the provider.
func eventType(t *testing.T, p trigger.Provider, wh *trigger.Webhook) string {
	t.Helper()
	c, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	src, err := catalog.CompileSource(c, &store.Source{Name: p.Source, Verify: p.Verify}, verifyOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if src.EventType == nil {
		return wh.Event
	}
	got, _ := src.EventType.EvalString(route.NewInput(p.Source, "/e/"+p.Source, nil, wh.Header, wh.Body))
	return got
}

func TestSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  []string
		path []string
		want any
	}{
		{"string", []string{"data.object.payment_link=plink_123"}, []string{"data", "object", "payment_link"}, "plink_123"},
		{"number", []string{"data.object.amount_total=4200"}, []string{"data", "object", "amount_total"}, float64(4200)},
		{"object", []string{`data.object.metadata={"order":"A1"}`}, []string{"data", "object", "metadata", "order"}, "A1"},
		{"new path", []string{"data.object.extra.flag=true"}, []string{"data", "object", "extra", "flag"}, true},
		{"null", []string{"data.object.customer=null"}, []string{"data", "object", "customer"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wh, err := trigger.Build("stripe", "checkout.session.completed", &trigger.Options{Set: tt.set})
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(wh.Body, &v); err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.path {
				v = v.(map[string]any)[p]
			}
			if v != tt.want {
				t.Fatalf("got %#v, want %#v", v, tt.want)
			}
			if err := webhook.ValidatePayloadWithTolerance(wh.Body, wh.Header.Get("Stripe-Signature"), "whsec_demo_stripe_secret", time.Minute); err != nil {
				t.Fatalf("signature after --set: %v", err)
			}
		})
	}
	if _, err := trigger.Build("stripe", "checkout.session.completed", &trigger.Options{Set: []string{"type.x=1"}}); err == nil {
		t.Fatal("setting below a string: want an error")
	}
	if _, err := trigger.Build("stripe", "checkout.session.completed", &trigger.Options{Set: []string{"novalue"}}); err == nil {
		t.Fatal("--set without =: want an error")
	}
}

func TestFreshIDs(t *testing.T) {
	t.Parallel()
	a, err := trigger.Build("stripe", "payment_intent.succeeded", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := trigger.Build("stripe", "payment_intent.succeeded", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID || bytes.Equal(a.Body, b.Body) {
		t.Fatalf("two builds share an id: %s", a.ID)
	}
}

func TestUnknown(t *testing.T) {
	t.Parallel()
	if _, err := trigger.Build("paypal", "x", nil); err == nil {
		t.Fatal("unknown provider: want an error")
	}
	if _, err := trigger.Build("stripe", "nope.event", nil); err == nil {
		t.Fatal("unknown event: want an error")
	}
}
