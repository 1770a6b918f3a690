package trigger_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/google/go-github/v84/github"
	"github.com/slack-go/slack"
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

// snsCert serves the certificate of the SNS samples' demo key on loopback,
// and returns the options that let the SNS verifier fetch it there (the
// AWS host check is injected) and the --set that points the samples at it.
func snsCert(t testing.TB) (*verify.Options, []string) {
	t.Helper()
	row, err := verify.Lookup("aws-sns")
	if err != nil {
		t.Fatal(err)
	}
	pemCert, err := verify.SNSSampleCertificate(row.SampleSecret)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pemCert) }))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	opts := &verify.Options{CertHostAllowed: func(scheme, h string) bool { return scheme == "http" && h == host }}
	return opts, []string{"SigningCertURL=" + srv.URL + "/SimpleNotificationService-test.pem"}
}

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
				opts, set := snsCert(t)
				if p.Name != "aws-sns" {
					set = nil
				}
				wh, err := trigger.Build(p.Name, ev, &trigger.Options{URL: sampleURL, Set: set})
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				if ct := wh.Header.Get("Content-Type"); ct == "application/json" && !json.Valid(wh.Body) {
					t.Fatalf("body is not JSON: %s", wh.Body)
				}
				checkProviderLibrary(t, p, wh)
				v, err := verify.New(p.Verify, opts)
				if err != nil {
					t.Fatal(err)
				}
				if err := v.Verify(&verify.Request{Header: wh.Header, Body: wh.Body, URL: sampleURL, Now: time.Now()}); err != nil {
					t.Fatalf("mailroom verifier: %v", err)
				}
				src := compileSource(t, p, opts)
				in := route.NewInput(p.Source, "/e/"+p.Source, nil, wh.Header, wh.Body)
				if got, _ := src.EventType.EvalString(in); got != wh.Event {
					t.Fatalf("mailroom reads event type %q, want %q", got, wh.Event)
				}
				if src.DedupKey != nil {
					if key, err := src.DedupKey.EvalString(in); err != nil || key == "" || (wh.ID != "" && key != wh.ID && !strings.Contains(key, wh.ID)) {
						t.Fatalf("default dedup key = %q (%v), want the delivery id %q", key, err, wh.ID)
					}
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
	case "slack":
		sv, err := slack.NewSecretsVerifier(wh.Header, p.DefaultSecret)
		if err != nil {
			t.Fatalf("slack-go NewSecretsVerifier: %v", err)
		}
		sv.Write(wh.Body)
		if err := sv.Ensure(); err != nil {
			t.Fatalf("slack-go Ensure: %v", err)
		}
	case "discord":
		key, err := hex.DecodeString(p.Verify.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/e/discord", bytes.NewReader(wh.Body))
		r.Header = wh.Header.Clone()
		if !discordgo.VerifyInteraction(r, ed25519.PublicKey(key)) {
			t.Fatal("discordgo VerifyInteraction refused the sample")
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

// compileSource compiles the source the example config would have for p.
func compileSource(t *testing.T, p trigger.Provider, opts *verify.Options) *catalog.Source {
	t.Helper()
	c, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	src, err := catalog.CompileSource(c, &store.Source{Name: p.Source, Verify: p.Verify}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return src
}
