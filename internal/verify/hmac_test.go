package verify_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/verify"
)

// Reference MACs of hmacBody under hmacSecret, computed independently with
//
//	printf %s "$body" | openssl dgst -sha256 -hmac s3cr3t [-binary | base64]
const (
	hmacBody   = `{"id":"evt_1","amount":42}`
	hmacSecret = "s3cr3t"

	sha256Hex = "615830755b69cada52ac5817c43afcd429b4c570a4932098ea41c9704e3c8ecb"
	sha256B64 = "YVgwdVtpytpSrFgXxDr81Cm0xXCkkyCY6kHJcE48jss="
	sha512Hex = "32e6a6640287f887060d088de4b1bdfb5c85cee50c9a2c75d6a0be47bcb0459004bf4cf70788c21a6dcd6a0b66d9d7100b2935bb94421c9835162c606969dbf8"
	sha512B64 = "MuamZAKH+IcGDQiN5LG9+1yFzuUMmix11qC+R7ywRZAEv0z3B4jCGm3Nagtm2dcQCyk1u5RCHJg1FixgaWnb+A=="
)

func TestShopify(t *testing.T) {
	t.Parallel()
	cfg := verify.Config{Type: "shopify", Secret: hmacSecret}
	if got := verify.SignShopify(hmacSecret, []byte(hmacBody)); got != sha256B64 {
		t.Fatalf("SignShopify = %q, want %q", got, sha256B64)
	}
	tests := []struct {
		name   string
		cfg    verify.Config
		header http.Header
		body   string
		want   error
	}{
		{"valid", cfg, http.Header{"X-Shopify-Hmac-Sha256": {sha256B64}}, hmacBody, nil},
		{"rotated secret", verify.Config{Type: "shopify", Secret: "old", Secrets: []string{hmacSecret}}, http.Header{"X-Shopify-Hmac-Sha256": {sha256B64}}, hmacBody, nil},
		{"tampered body", cfg, http.Header{"X-Shopify-Hmac-Sha256": {sha256B64}}, hmacBody + " ", verify.ErrSignatureMismatch},
		{"wrong secret", verify.Config{Type: "shopify", Secret: "other"}, http.Header{"X-Shopify-Hmac-Sha256": {sha256B64}}, hmacBody, verify.ErrSignatureMismatch},
		{"hex instead of base64", cfg, http.Header{"X-Shopify-Hmac-Sha256": {sha256Hex}}, hmacBody, verify.ErrSignatureMismatch},
		{"not base64", cfg, http.Header{"X-Shopify-Hmac-Sha256": {"***"}}, hmacBody, verify.ErrMalformedSignature},
		{"missing header", cfg, http.Header{}, hmacBody, verify.ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := mustNew(t, tt.cfg)
			checkErr(t, v.Verify(&verify.Request{Header: tt.header, Body: []byte(tt.body)}), tt.want)
		})
	}
}

func TestHMAC(t *testing.T) {
	t.Parallel()
	base := func(alg, enc, prefix string) verify.Config {
		return verify.Config{Type: "hmac", Header: "X-Signature", Secret: hmacSecret, Algorithm: alg, Encoding: enc, Prefix: prefix}
	}
	sig := func(v string) http.Header { return http.Header{"X-Signature": {v}} }
	tests := []struct {
		name   string
		cfg    verify.Config
		header http.Header
		body   string
		want   error
	}{
		{"defaults are sha256 hex", base("", "", ""), sig(sha256Hex), hmacBody, nil},
		{"sha256 hex", base("sha256", "hex", ""), sig(sha256Hex), hmacBody, nil},
		{"sha256 hex upper-case", base("sha256", "hex", ""), sig(strings.ToUpper(sha256Hex)), hmacBody, nil},
		{"sha256 base64", base("sha256", "base64", ""), sig(sha256B64), hmacBody, nil},
		{"sha256 base64 unpadded", base("sha256", "base64", ""), sig(strings.TrimRight(sha256B64, "=")), hmacBody, nil},
		{"sha512 hex", base("sha512", "hex", ""), sig(sha512Hex), hmacBody, nil},
		{"sha512 base64", base("sha512", "base64", ""), sig(sha512B64), hmacBody, nil},
		{"sha256 hex with prefix", base("sha256", "hex", "sha256="), sig("sha256=" + sha256Hex), hmacBody, nil},
		{"prefix matched without case", base("sha256", "hex", "sha256="), sig("SHA256=" + sha256Hex), hmacBody, nil},
		{"sha512 base64 with prefix", base("sha512", "base64", "v1:"), sig("v1:" + sha512B64), hmacBody, nil},
		{"custom header name", verify.Config{Type: "hmac", Header: "x-acme-sig", Secret: hmacSecret}, http.Header{"X-Acme-Sig": {sha256Hex}}, hmacBody, nil},
		{"rotated secret", verify.Config{Type: "hmac", Header: "X-Signature", Secret: "old", Secrets: []string{hmacSecret}}, sig(sha256Hex), hmacBody, nil},
		{"missing prefix", base("sha256", "hex", "sha256="), sig(sha256Hex), hmacBody, verify.ErrMalformedSignature},
		{"prefix not configured", base("sha256", "hex", ""), sig("sha256=" + sha256Hex), hmacBody, verify.ErrMalformedSignature},
		{"sha512 signature for sha256 config", base("sha256", "hex", ""), sig(sha512Hex), hmacBody, verify.ErrSignatureMismatch},
		{"sha256 signature for sha512 config", base("sha512", "hex", ""), sig(sha256Hex), hmacBody, verify.ErrSignatureMismatch},
		{"base64 signature for hex config", base("sha256", "hex", ""), sig(sha256B64), hmacBody, verify.ErrMalformedSignature},
		{"tampered body", base("sha256", "hex", ""), sig(sha256Hex), `{"id":"evt_1","amount":43}`, verify.ErrSignatureMismatch},
		{"truncated signature", base("sha256", "hex", ""), sig(sha256Hex[:62]), hmacBody, verify.ErrSignatureMismatch},
		{"wrong secret", verify.Config{Type: "hmac", Header: "X-Signature", Secret: "nope"}, sig(sha256Hex), hmacBody, verify.ErrSignatureMismatch},
		{"missing header", base("", "", ""), http.Header{"X-Other": {sha256Hex}}, hmacBody, verify.ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := mustNew(t, tt.cfg)
			checkErr(t, v.Verify(&verify.Request{Header: tt.header, Body: []byte(tt.body)}), tt.want)
		})
	}
}

func TestSignHMAC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		alg, enc, prefix, want string
	}{
		{"", "", "", sha256Hex},
		{"sha256", "base64", "", sha256B64},
		{"sha512", "hex", "sha512=", "sha512=" + sha512Hex},
		{"sha512", "base64", "", sha512B64},
	}
	for _, tt := range tests {
		t.Run(tt.alg+"/"+tt.enc+"/"+tt.prefix, func(t *testing.T) {
			t.Parallel()
			cfg := verify.Config{Type: "hmac", Header: "X-Signature", Secret: hmacSecret, Algorithm: tt.alg, Encoding: tt.enc, Prefix: tt.prefix}
			got, err := verify.SignHMAC(cfg, []byte(hmacBody))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("SignHMAC = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBasic(t *testing.T) {
	t.Parallel()
	cfg := verify.Config{Type: "basic", Username: "alice", Password: "pa:ss"}
	// withAuth builds the header the way net/http clients do.
	withAuth := func(user, pass string) http.Header {
		r, _ := http.NewRequest(http.MethodPost, "http://example.test", nil)
		r.SetBasicAuth(user, pass)
		return r.Header
	}
	tests := []struct {
		name   string
		header http.Header
		want   error
	}{
		{"valid", withAuth("alice", "pa:ss"), nil},
		{"valid, literal header", http.Header{"Authorization": {"Basic YWxpY2U6cGE6c3M="}}, nil},
		{"scheme without case", http.Header{"Authorization": {"basic YWxpY2U6cGE6c3M="}}, nil},
		{"wrong password", withAuth("alice", "pa:sS"), verify.ErrBadCredentials},
		{"password prefix", withAuth("alice", "pa:"), verify.ErrBadCredentials},
		{"wrong user", withAuth("bob", "pa:ss"), verify.ErrBadCredentials},
		{"empty credentials", withAuth("", ""), verify.ErrBadCredentials},
		{"bearer", http.Header{"Authorization": {"Bearer YWxpY2U6cGE6c3M="}}, verify.ErrMalformedSignature},
		{"not base64", http.Header{"Authorization": {"Basic !!!"}}, verify.ErrMalformedSignature},
		{"no colon", http.Header{"Authorization": {"Basic YWxpY2U="}}, verify.ErrMalformedSignature},
		{"missing", http.Header{}, verify.ErrMissingSignature},
	}
	v := mustNew(t, cfg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, v.Verify(&verify.Request{Header: tt.header}), tt.want)
		})
	}
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    verify.Config
		header http.Header
		want   error
	}{
		{"default header", verify.Config{Type: "api-key", Secret: "k-123"}, http.Header{"X-Api-Key": {"k-123"}}, nil},
		{"custom header", verify.Config{Type: "api-key", Header: "X-Token", Secret: "k-123"}, http.Header{"X-Token": {"k-123"}}, nil},
		{"second of rotated keys", verify.Config{Type: "api-key", Secret: "old", Secrets: []string{"k-123"}}, http.Header{"X-Api-Key": {"k-123"}}, nil},
		{"wrong key", verify.Config{Type: "api-key", Secret: "k-123"}, http.Header{"X-Api-Key": {"k-124"}}, verify.ErrBadCredentials},
		{"key prefix", verify.Config{Type: "api-key", Secret: "k-123"}, http.Header{"X-Api-Key": {"k-12"}}, verify.ErrBadCredentials},
		{"key in other header", verify.Config{Type: "api-key", Header: "X-Token", Secret: "k-123"}, http.Header{"X-Api-Key": {"k-123"}}, verify.ErrMissingSignature},
		{"missing", verify.Config{Type: "api-key", Secret: "k-123"}, http.Header{}, verify.ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := mustNew(t, tt.cfg)
			checkErr(t, v.Verify(&verify.Request{Header: tt.header}), tt.want)
		})
	}
}
