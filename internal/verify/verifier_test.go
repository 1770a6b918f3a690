package verify_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/verify"
)

// mustNew builds cfg's verifier or fails the test.
func mustNew(tb testing.TB, cfg verify.Config) verify.Verifier {
	tb.Helper()
	v, err := verify.New(cfg, nil)
	if err != nil {
		tb.Fatalf("New(%+v): %v", cfg, err)
	}
	return v
}

// checkErr fails unless err wraps want, or is nil when want is nil.
func checkErr(tb testing.TB, err, want error) {
	tb.Helper()
	switch {
	case want == nil && err != nil:
		tb.Fatalf("Verify: unexpected error %v", err)
	case want != nil && !errors.Is(err, want):
		tb.Fatalf("Verify error = %v, want one wrapping %v", err, want)
	}
}

func TestNewConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   verify.Config
		field string
		want  string
	}{
		{"stripe without secret", verify.Config{Type: "stripe"}, "secret", `verify.secret: required for type "stripe"`},
		{"github without secret", verify.Config{Type: "github", Secrets: []string{""}}, "secret", `verify.secret: required for type "github"`},
		{"shopify without secret", verify.Config{Type: "shopify"}, "secret", `verify.secret: required for type "shopify"`},
		{"standard-webhooks without secret", verify.Config{Type: "standard-webhooks"}, "secret", `verify.secret: required for type "standard-webhooks"`},
		{"standard-webhooks secret not base64", verify.Config{Type: "standard-webhooks", Secret: "whsec_not*base64!"}, "secret", "verify.secret: standard-webhooks secret must be whsec_ followed by base64"},
		{"standard-webhooks empty key", verify.Config{Type: "standard-webhooks", Secret: "whsec_"}, "secret", "verify.secret: standard-webhooks secret is empty"},
		{"standard-webhooks bad rotated secret", verify.Config{Type: "standard-webhooks", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Secrets: []string{"%%%"}}, "secret", "verify.secret: standard-webhooks secret must be"},
		{"hmac without header", verify.Config{Type: "hmac", Secret: "s"}, "header", `verify.header: required for type "hmac"`},
		{"hmac without secret", verify.Config{Type: "hmac", Header: "X-Sig"}, "secret", `verify.secret: required for type "hmac"`},
		{"hmac bad algorithm", verify.Config{Type: "hmac", Header: "X-Sig", Secret: "s", Algorithm: "md5"}, "algorithm", `verify.algorithm: "md5" is not supported (want sha256 or sha512)`},
		{"hmac bad encoding", verify.Config{Type: "hmac", Header: "X-Sig", Secret: "s", Encoding: "base32"}, "encoding", `verify.encoding: "base32" is not supported (want hex or base64)`},
		{"basic without username", verify.Config{Type: "basic", Password: "p"}, "username", `verify.username: required for type "basic"`},
		{"basic username with colon", verify.Config{Type: "basic", Username: "a:b", Password: "p"}, "username", "verify.username: must not contain a colon"},
		{"basic without password", verify.Config{Type: "basic", Username: "u"}, "password", `verify.password: required for type "basic"`},
		{"api-key without secret", verify.Config{Type: "api-key", Header: "X-Key"}, "secret", `verify.secret: required for type "api-key"`},
		{"negative tolerance", verify.Config{Type: "stripe", Secret: "s", Tolerance: -1}, "tolerance", "verify.tolerance: must not be negative"},
		{"unknown type", verify.Config{Type: "paypal"}, "type", `verify.type: unknown type "paypal" (valid: api-key, `},
		{"type is case-sensitive", verify.Config{Type: "Stripe", Secret: "s"}, "type", `verify.type: unknown type "Stripe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := verify.New(tt.cfg, nil)
			if err == nil {
				t.Fatalf("New(%+v) = %T, want an error", tt.cfg, v)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
			var ce *verify.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			if ce.Field != tt.field {
				t.Errorf("Field = %q, want %q", ce.Field, tt.field)
			}
		})
	}
}

func TestNewValidConfigs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  verify.Config
	}{
		{"empty type", verify.Config{}},
		{"none", verify.Config{Type: "none"}},
		{"stripe rotation only", verify.Config{Type: "stripe", Secrets: []string{"a", "b"}}},
		{"standard-webhooks without prefix", verify.Config{Type: "standard-webhooks", Secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		{"hmac upper-case names", verify.Config{Type: "hmac", Header: "X-Sig", Secret: "s", Algorithm: "SHA512", Encoding: "Base64"}},
		{"api-key default header", verify.Config{Type: "api-key", Secret: "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mustNew(t, tt.cfg)
		})
	}
}

func TestTypes(t *testing.T) {
	t.Parallel()
	types := verify.Types()
	if !slices.IsSorted(types) {
		t.Errorf("Types() = %v, not sorted", types)
	}
	for _, typ := range types {
		cfg := sampleConfig(typ)
		if _, err := verify.New(cfg, nil); err != nil {
			t.Errorf("New for listed type %q: %v", typ, err)
		}
	}
	for _, want := range []string{"api-key", "basic", "github", "hmac", "none", "shopify", "standard-webhooks", "stripe"} {
		if !slices.Contains(types, want) {
			t.Errorf("Types() = %v, want it to hold %q", types, want)
		}
	}
}

// sampleConfig returns a valid config of type typ: its row's sample.
func sampleConfig(typ string) verify.Config {
	p, err := verify.Lookup(typ)
	if err != nil {
		panic(err)
	}
	return p.SampleConfig(p.SampleSecret)
}

func TestNoneAcceptsAnything(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"", "none"} {
		v := mustNew(t, verify.Config{Type: typ})
		checkErr(t, v.Verify(&verify.Request{Header: http.Header{}}), nil)
		checkErr(t, v.Verify(&verify.Request{}), nil)
	}
}

// TestSignRoundTrip checks, for every row of the provider table, that
// what Sign sets passes New's verifier, and that the same headers fail with
// another body unless the scheme does not sign the body. Rows that carry
// the signature in the body are covered with their own samples in
// internal/trigger.
func TestSignRoundTrip(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"evt_1","object":"event","webhookTimestamp":1700000000000,"value":[{"changeType":"created"}]}`)
	now := time.Unix(1_700_000_000, 0)
	for _, p := range verify.Providers() {
		if p.SignRewritesBody {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			cfg := p.SampleConfig(p.SampleSecret)
			m := &verify.Message{URL: "https://hooks.example/e/src?a=1", Body: body, ID: "id_1", Event: "test.event", Now: now}
			if err := verify.Sign(cfg, m); err != nil {
				t.Fatalf("Sign: %v", err)
			}
			v := mustNew(t, cfg)
			req := &verify.Request{Header: m.Header, Body: m.Body, URL: m.URL, Now: now.Add(time.Minute)}
			checkErr(t, v.Verify(req), nil)
			req.Body = []byte(`{"id":"evt_2","object":"event","webhookTimestamp":1700000000000}`)
			if p.Unsigned {
				checkErr(t, v.Verify(req), nil)
			} else {
				checkErr(t, v.Verify(req), verify.ErrSignatureMismatch)
			}
		})
	}
}

func TestSignRefusesBadConfig(t *testing.T) {
	t.Parallel()
	err := verify.Sign(verify.Config{Type: "hmac", Secret: "s"}, &verify.Message{Header: http.Header{}, Now: time.Now()})
	var ce *verify.ConfigError
	if !errors.As(err, &ce) || ce.Field != "header" {
		t.Fatalf("Sign error = %v, want a ConfigError on header", err)
	}
}

func TestRequestZeroNowIsWallClock(t *testing.T) {
	t.Parallel()
	v := mustNew(t, verify.Config{Type: "stripe", Secret: "s"})
	body := []byte("{}")
	fresh := http.Header{"Stripe-Signature": {verify.SignStripe("s", time.Now(), body)}}
	checkErr(t, v.Verify(&verify.Request{Header: fresh, Body: body}), nil)
	stale := http.Header{"Stripe-Signature": {verify.SignStripe("s", time.Now().Add(-time.Hour), body)}}
	checkErr(t, v.Verify(&verify.Request{Header: stale, Body: body}), verify.ErrTimestampOutOfTolerance)
}

// TestZeroVerifiersRefuse checks that verifiers not built by New accept
// nothing, even empty credentials.
func TestZeroVerifiersRefuse(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"Authorization":         {"Basic Og=="},
		"X-Api-Key":             {""},
		"X-Hub-Signature-256":   {verify.SignGitHub("", nil)},
		"X-Shopify-Hmac-Sha256": {verify.SignShopify("", nil)},
	}
	for _, v := range []verify.Verifier{&verify.Basic{}, &verify.APIKey{}, &verify.GitHub{}, &verify.Shopify{}, &verify.Stripe{}, &verify.StandardWebhooks{}, &verify.HMAC{}} {
		if err := v.Verify(&verify.Request{Header: h}); err == nil {
			t.Errorf("zero %T accepted a request", v)
		}
	}
}

// TestCredentialsAreNotForwarded checks that no header a source stores
// masked is among those `mailroom listen` forwards.
func TestCredentialsAreNotForwarded(t *testing.T) {
	t.Parallel()
	for _, p := range verify.Providers() {
		for _, c := range p.Credentials(p.SampleConfig(p.SampleSecret)) {
			if slices.ContainsFunc(p.Headers, func(h string) bool { return strings.EqualFold(h, c) }) {
				t.Errorf("%s forwards its credential header %s", p.Name, c)
			}
		}
	}
}
