package redact_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/mailroomhq/mailroom/internal/redact"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

func TestHeaders(t *testing.T) {
	t.Parallel()
	in := http.Header{
		"Authorization": {"Bearer x"}, "Set-Cookie": {"s=1"}, "Cookie": {"c=2"}, "X-Api-Key": {"k"},
		"Stripe-Signature": {"t=1,v1=ab"}, "Content-Type": {"application/json"}, "X-Empty-Token": {""},
	}
	want := http.Header{
		"Authorization": {redact.Mask}, "Set-Cookie": {redact.Mask}, "Cookie": {redact.Mask}, "X-Api-Key": {redact.Mask},
		"Stripe-Signature": {redact.Mask}, "Content-Type": {"application/json"}, "X-Empty-Token": {""},
	}
	if got := redact.Headers(in); !reflect.DeepEqual(got, want) {
		t.Errorf("Headers = %v, want %v", got, want)
	}
	if in.Get("Authorization") != "Bearer x" {
		t.Error("Headers changed its input")
	}
}

// TestCredentials checks what is masked before a request is stored:
// credentials, and the named token header, but not signatures.
func TestCredentials(t *testing.T) {
	t.Parallel()
	in := http.Header{"Authorization": {"Basic eA=="}, "X-Gitlab-Token": {"tok"}, "Stripe-Signature": {"t=1,v1=ab"}}
	want := http.Header{"Authorization": {redact.Mask}, "X-Gitlab-Token": {redact.Mask}, "Stripe-Signature": {"t=1,v1=ab"}}
	if got := redact.Credentials(in, "x-gitlab-token"); !reflect.DeepEqual(got, want) {
		t.Errorf("Credentials = %v, want %v", got, want)
	}
	if in["Authorization"][0] != "Basic eA==" || in["X-Gitlab-Token"][0] != "tok" {
		t.Errorf("Credentials changed its input: %v", in)
	}
	for _, tc := range []struct {
		in    http.Header
		extra []string
		want  http.Header
	}{
		{http.Header{"Cookie": {"a=b", "c=d"}, "Accept": {"*/*"}}, nil, http.Header{"Cookie": {redact.Mask, redact.Mask}, "Accept": {"*/*"}}},
		{http.Header{"Proxy-Authorization": {"Basic eA=="}}, nil, http.Header{"Proxy-Authorization": {redact.Mask}}},
		{http.Header{"X-Api-Key": {"k"}}, []string{"X-API-KEY"}, http.Header{"X-Api-Key": {redact.Mask}}},
		{http.Header{"X-Api-Key": {"k"}}, nil, http.Header{"X-Api-Key": {"k"}}},
		{http.Header{"Stripe-Signature": {"t=1,v1=ab"}, "Content-Type": {"application/json"}}, []string{"x-gitlab-token"},
			http.Header{"Stripe-Signature": {"t=1,v1=ab"}, "Content-Type": {"application/json"}}},
		{http.Header{"Authorization": {}}, nil, http.Header{"Authorization": {}}},
		{nil, []string{"x-token"}, nil},
	} {
		if got := redact.Credentials(tc.in, tc.extra...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Credentials(%v, %q) = %v, want %v", tc.in, tc.extra, got, tc.want)
		}
	}
}

// TestDestinationAndSource checks that the API and the dashboard, which
// both use these, mask the same fields the same way.
func TestDestinationAndSource(t *testing.T) {
	t.Parallel()
	d := (store.Destination{
		URL:     "https://user:pw@crm.example/hooks",
		Sign:    store.SignConfig{Type: verify.TypeStandardWebhooks, Secret: "whsec_x"},
		Headers: map[string]string{"Set-Cookie": "a", "X-Team": "growth", "Authorization": "Bearer y"},
	}).Redacted()
	if d.URL != "https://user:"+redact.Mask+"@crm.example/hooks" || d.Sign.Secret != redact.Mask ||
		d.Headers["Set-Cookie"] != redact.Mask || d.Headers["Authorization"] != redact.Mask || d.Headers["X-Team"] != "growth" {
		t.Errorf("Destination = %+v", d)
	}
	s := (store.Source{Verify: verify.Config{Type: "meta", Secret: "a", Secrets: []string{"b", ""}, Password: "p", VerifyToken: "v", PublicKey: "pk"}}).Redacted()
	want := verify.Config{Type: "meta", Secret: redact.Mask, Secrets: []string{redact.Mask, ""}, Password: redact.Mask, VerifyToken: redact.Mask, PublicKey: "pk"}
	if got := s.Verify; !reflect.DeepEqual(got, want) {
		t.Errorf("Source = %v, want %v", got, want)
	}
	if got := redact.URL("http://h/p"); got != "http://h/p" {
		t.Errorf("URL without password = %q", got)
	}
}
