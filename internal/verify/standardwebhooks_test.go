package verify_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// The example secret of the Standard Webhooks specification.
const swSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var swBody = []byte(`{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52"}}`)

// newSWSecret returns a fresh random whsec_ secret.
func newSWSecret(tb testing.TB) string {
	tb.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

func swLib(tb testing.TB, secret string) *standardwebhooks.Webhook {
	tb.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		tb.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	return wh
}

func swHeaders(id string, ts time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	return h
}

// TestStandardWebhooksAgainstLibrary signs with the reference library and
// verifies with ours, and the other way round.
func TestStandardWebhooksAgainstLibrary(t *testing.T) {
	t.Parallel()
	random := newSWSecret(t)
	tests := []struct {
		name      string
		libSecret string // what the library is given
		cfgSecret string // what the source is configured with
	}{
		{"spec example secret", swSecret, swSecret},
		{"random secret", random, random},
		{"secret configured without prefix", swSecret, strings.TrimPrefix(swSecret, "whsec_")},
		{"library given no prefix", strings.TrimPrefix(random, "whsec_"), random},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lib := swLib(t, tt.libSecret)
			v := mustNew(t, verify.Config{Type: "standard-webhooks", Secret: tt.cfgSecret})
			now := time.Now()
			id := "msg_" + rand.Text()

			// Library signs, we verify.
			theirs, err := lib.Sign(id, now, swBody)
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, v.Verify(&verify.Request{Header: swHeaders(id, now, theirs), Body: swBody, Now: now}), nil)

			// We sign, library verifies; and we make what it makes.
			ours, err := verify.SignStandardWebhooks(tt.cfgSecret, id, now, swBody)
			if err != nil {
				t.Fatal(err)
			}
			if ours != theirs {
				t.Errorf("SignStandardWebhooks = %q, library makes %q", ours, theirs)
			}
			if err := lib.Verify(swBody, swHeaders(id, now, ours)); err != nil {
				t.Errorf("library Verify: %v", err)
			}

			// Neither accepts a tampered body.
			tampered := append([]byte(swBody), ' ')
			if err := lib.Verify(tampered, swHeaders(id, now, ours)); err == nil {
				t.Error("library accepted a tampered body")
			}
			checkErr(t, v.Verify(&verify.Request{Header: swHeaders(id, now, ours), Body: tampered, Now: now}), verify.ErrSignatureMismatch)
		})
	}
}

func TestStandardWebhooks(t *testing.T) {
	t.Parallel()
	other := newSWSecret(t)
	now := time.Unix(1_700_000_000, 0)
	id := "msg_2Lh9KRb0pzN4LePd3XiA4ivTsmO"
	sign := func(secret string, id string, ts time.Time) string {
		s, err := swLib(t, secret).Sign(id, ts, swBody)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(swSecret, id, now)
	bad := sign(other, id, now)
	single := verify.Config{Type: "standard-webhooks", Secret: swSecret}
	rotated := verify.Config{Type: "standard-webhooks", Secret: other, Secrets: []string{swSecret}}
	svix := func(id string, ts time.Time, sig string) http.Header {
		return http.Header{"Svix-Id": {id}, "Svix-Timestamp": {strconv.FormatInt(ts.Unix(), 10)}, "Svix-Signature": {sig}}
	}
	tests := []struct {
		name   string
		cfg    verify.Config
		header http.Header
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", single, swHeaders(id, now, good), swBody, now, nil},
		{"second of several signatures", single, swHeaders(id, now, bad+" "+good), swBody, now, nil},
		{"first of several signatures", single, swHeaders(id, now, good+" "+bad), swBody, now, nil},
		{"other versions ignored", single, swHeaders(id, now, "v1a,"+strings.TrimPrefix(good, "v1,")+" "+good), swBody, now, nil},
		{"only other versions", single, swHeaders(id, now, "v1a,"+strings.TrimPrefix(good, "v1,")), swBody, now, verify.ErrMissingSignature},
		{"v2 of the right bytes refused", single, swHeaders(id, now, "v2,"+strings.TrimPrefix(good, "v1,")), swBody, now, verify.ErrMissingSignature},
		{"rotation: second secret", rotated, swHeaders(id, now, good), swBody, now, nil},
		{"rotation: first secret", rotated, swHeaders(id, now, bad), swBody, now, nil},
		{"wrong secret", single, swHeaders(id, now, bad), swBody, now, verify.ErrSignatureMismatch},
		{"svix aliases", single, svix(id, now, good), swBody, now, nil},
		{"svix aliases, wrong secret", single, svix(id, now, bad), swBody, now, verify.ErrSignatureMismatch},
		{"id changed", single, swHeaders(id+"x", now, good), swBody, now, verify.ErrSignatureMismatch},
		{"timestamp changed", single, swHeaders(id, now.Add(time.Second), good), swBody, now, verify.ErrSignatureMismatch},
		{"tampered body", single, swHeaders(id, now, good), append([]byte("\n"), swBody...), now, verify.ErrSignatureMismatch},
		{"expired", single, swHeaders(id, now, good), swBody, now.Add(5*time.Minute + time.Second), verify.ErrTimestampOutOfTolerance},
		{"future", single, swHeaders(id, now, good), swBody, now.Add(-5*time.Minute - time.Second), verify.ErrTimestampOutOfTolerance},
		{"at tolerance edge", single, swHeaders(id, now, good), swBody, now.Add(5 * time.Minute), nil},
		{"wider tolerance", verify.Config{Type: "standard-webhooks", Secret: swSecret, Tolerance: store.Duration(time.Hour)}, swHeaders(id, now, good), swBody, now.Add(-30 * time.Minute), nil},
		{"timestamp not a number", single, http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {"soon"}, "Webhook-Signature": {good}}, swBody, now, verify.ErrMalformedSignature},
		{"no id", single, http.Header{"Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {good}}, swBody, now, verify.ErrMalformedSignature},
		{"no timestamp", single, http.Header{"Webhook-Id": {id}, "Webhook-Signature": {good}}, swBody, now, verify.ErrMalformedSignature},
		{"no signature", single, http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {"1700000000"}}, swBody, now, verify.ErrMissingSignature},
		{"no headers", single, http.Header{}, swBody, now, verify.ErrMissingSignature},
		{"signature without version", single, swHeaders(id, now, strings.TrimPrefix(good, "v1,")), swBody, now, verify.ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := mustNew(t, tt.cfg)
			checkErr(t, v.Verify(&verify.Request{Header: tt.header, Body: tt.body, Now: tt.now}), tt.want)
		})
	}
}

// TestStandardWebhooksMultipleSignaturesLibrary checks a header holding
// signatures under two secrets against the library, both ways round.
func TestStandardWebhooksMultipleSignaturesLibrary(t *testing.T) {
	t.Parallel()
	a, b := newSWSecret(t), newSWSecret(t)
	now := time.Now()
	id := "msg_rotate"
	sa, err := verify.SignStandardWebhooks(a, id, now, swBody)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := verify.SignStandardWebhooks(b, id, now, swBody)
	if err != nil {
		t.Fatal(err)
	}
	h := swHeaders(id, now, sa+" "+sb)
	for _, secret := range []string{a, b} {
		if err := swLib(t, secret).Verify(swBody, h); err != nil {
			t.Errorf("library Verify with one of two secrets: %v", err)
		}
		v := mustNew(t, verify.Config{Type: "standard-webhooks", Secret: secret})
		checkErr(t, v.Verify(&verify.Request{Header: h, Body: swBody, Now: now}), nil)
	}
	c := newSWSecret(t)
	if err := swLib(t, c).Verify(swBody, h); err == nil {
		t.Error("library accepted a third secret")
	}
	v := mustNew(t, verify.Config{Type: "standard-webhooks", Secret: c})
	checkErr(t, v.Verify(&verify.Request{Header: h, Body: swBody, Now: now}), verify.ErrSignatureMismatch)
}

func TestSignStandardWebhooksErrors(t *testing.T) {
	t.Parallel()
	if _, err := verify.SignStandardWebhooks("whsec_***", "msg_1", time.Now(), nil); err == nil {
		t.Error("bad secret: no error")
	}
	if _, err := verify.SignStandardWebhooks(swSecret, "", time.Now(), nil); err == nil {
		t.Error("empty id: no error")
	}
}
