package verify_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

const (
	stripeSecret    = "whsec_test_5f1e0c8d9a"
	stripeNewSecret = "whsec_test_rotated_77b2"
)

var stripeEvent = []byte(`{
  "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
  "object": "event",
  "api_version": "2019-02-19",
  "created": 1686089970,
  "type": "checkout.session.completed",
  "data": {"object": {"id": "cs_test_a1", "object": "checkout.session"}}
}`)

func stripeHeader(v string) http.Header { return http.Header{"Stripe-Signature": {v}} }

// TestStripeAcceptsStripeGo checks that headers made by stripe-go pass.
func TestStripeAcceptsStripeGo(t *testing.T) {
	t.Parallel()
	now := time.Now()
	v := mustNew(t, verify.Config{Type: "stripe", Secret: stripeSecret})
	tests := []struct {
		name string
		ts   time.Time
	}{
		{"now", now},
		{"4m old", now.Add(-4 * time.Minute)},
		{"4m ahead", now.Add(4 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: stripeEvent, Secret: stripeSecret, Timestamp: tt.ts})
			checkErr(t, v.Verify(&verify.Request{Header: stripeHeader(sp.Header), Body: stripeEvent, Now: now}), nil)
		})
	}
}

// TestSignStripeAcceptedByStripeGo checks SignStripe against stripe-go.
func TestSignStripeAcceptedByStripeGo(t *testing.T) {
	t.Parallel()
	now := time.Now()
	h := verify.SignStripe(stripeSecret, now, stripeEvent)
	if err := webhook.ValidatePayload(stripeEvent, h, stripeSecret); err != nil {
		t.Fatalf("stripe-go ValidatePayload: %v", err)
	}
	ev, err := webhook.ConstructEventWithOptions(stripeEvent, h, stripeSecret, webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		t.Fatalf("stripe-go ConstructEventWithOptions: %v", err)
	}
	if ev.ID != "evt_1NG8Du2eZvKYlo2CUI79vXWy" || ev.Type != "checkout.session.completed" {
		t.Errorf("event = %s %s", ev.ID, ev.Type)
	}
	want := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: stripeEvent, Secret: stripeSecret, Timestamp: now}).Header
	if h != want {
		t.Errorf("SignStripe = %q, stripe-go makes %q", h, want)
	}
	if err := webhook.ValidatePayload(stripeEvent, verify.SignStripe("whsec_other", now, stripeEvent), stripeSecret); !errors.Is(err, webhook.ErrNoValidSignature) {
		t.Errorf("stripe-go accepted a signature under another secret: %v", err)
	}
}

func TestStripe(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	sig := func(secret string, ts time.Time) string {
		return fmt.Sprintf("%x", webhook.ComputeSignature(ts, stripeEvent, secret))
	}
	good := sig(stripeSecret, now)
	single := verify.Config{Type: "stripe", Secret: stripeSecret}
	rotated := verify.Config{Type: "stripe", Secret: stripeSecret, Secrets: []string{stripeNewSecret}}
	tests := []struct {
		name   string
		cfg    verify.Config
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", single, fmt.Sprintf("t=%d,v1=%s", now.Unix(), good), stripeEvent, now, nil},
		{"elements in any order", single, fmt.Sprintf("v1=%s,t=%d", good, now.Unix()), stripeEvent, now, nil},
		{"second of several v1", single, fmt.Sprintf("t=%d,v1=%s,v1=%s,v0=%s", now.Unix(), sig("whsec_x", now), good, good), stripeEvent, now, nil},
		{"first of several v1", single, fmt.Sprintf("t=%d,v1=%s,v1=%s", now.Unix(), good, sig("whsec_x", now)), stripeEvent, now, nil},
		{"upper-case hex", single, fmt.Sprintf("t=%d,v1=%X", now.Unix(), webhook.ComputeSignature(now, stripeEvent, stripeSecret)), stripeEvent, now, nil},
		{"unknown elements ignored", single, fmt.Sprintf("t=%d,v1=%s,foo=bar", now.Unix(), good), stripeEvent, now, nil},
		{"bad hex v1 skipped", single, fmt.Sprintf("t=%d,v1=zz,v1=%s", now.Unix(), good), stripeEvent, now, nil},
		{"rotation: new secret", rotated, fmt.Sprintf("t=%d,v1=%s", now.Unix(), sig(stripeNewSecret, now)), stripeEvent, now, nil},
		{"rotation: old secret", rotated, fmt.Sprintf("t=%d,v1=%s", now.Unix(), good), stripeEvent, now, nil},
		{"rotation: neither", rotated, fmt.Sprintf("t=%d,v1=%s", now.Unix(), sig("whsec_x", now)), stripeEvent, now, verify.ErrSignatureMismatch},
		{"new secret not configured", single, fmt.Sprintf("t=%d,v1=%s", now.Unix(), sig(stripeNewSecret, now)), stripeEvent, now, verify.ErrSignatureMismatch},
		{"tampered body", single, fmt.Sprintf("t=%d,v1=%s", now.Unix(), good), append([]byte{' '}, stripeEvent...), now, verify.ErrSignatureMismatch},
		{"timestamp changed", single, fmt.Sprintf("t=%d,v1=%s", now.Unix()+1, good), stripeEvent, now, verify.ErrSignatureMismatch},
		{"v0 only", single, fmt.Sprintf("t=%d,v0=%s", now.Unix(), good), stripeEvent, now, verify.ErrMissingSignature},
		{"at tolerance edge, past", single, fmt.Sprintf("t=%d,v1=%s", now.Unix(), good), stripeEvent, now.Add(5 * time.Minute), nil},
		{"at tolerance edge, future", single, fmt.Sprintf("t=%d,v1=%s", now.Unix(), good), stripeEvent, now.Add(-5 * time.Minute), nil},
		{"expired", single, fmt.Sprintf("t=%d,v1=%s", now.Unix(), good), stripeEvent, now.Add(5*time.Minute + time.Second), verify.ErrTimestampOutOfTolerance},
		{"future", single, fmt.Sprintf("t=%d,v1=%s", now.Unix(), good), stripeEvent, now.Add(-6 * time.Minute), verify.ErrTimestampOutOfTolerance},
		{"wider tolerance", verify.Config{Type: "stripe", Secret: stripeSecret, Tolerance: store.Duration(time.Hour)}, fmt.Sprintf("t=%d,v1=%s", now.Unix(), good), stripeEvent, now.Add(59 * time.Minute), nil},
		{"narrower tolerance", verify.Config{Type: "stripe", Secret: stripeSecret, Tolerance: store.Duration(10 * time.Second)}, fmt.Sprintf("t=%d,v1=%s", now.Unix(), good), stripeEvent, now.Add(11 * time.Second), verify.ErrTimestampOutOfTolerance},
		{"no timestamp", single, "v1=" + good, stripeEvent, now, verify.ErrMalformedSignature},
		{"two timestamps", single, fmt.Sprintf("t=%d,t=%d,v1=%s", now.Unix(), now.Unix(), good), stripeEvent, now, verify.ErrMalformedSignature},
		{"timestamp not a number", single, "t=yesterday,v1=" + good, stripeEvent, now, verify.ErrMalformedSignature},
		{"element without =", single, fmt.Sprintf("t=%d,v1=%s,junk", now.Unix(), good), stripeEvent, now, verify.ErrMalformedSignature},
		{"element with two =", single, fmt.Sprintf("t=%d,v1=%s=", now.Unix(), good), stripeEvent, now, verify.ErrMalformedSignature},
		{"missing header", single, "", stripeEvent, now, verify.ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := mustNew(t, tt.cfg)
			h := http.Header{}
			if tt.header != "" {
				h.Set("Stripe-Signature", tt.header)
			}
			checkErr(t, v.Verify(&verify.Request{Header: h, Body: tt.body, Now: tt.now}), tt.want)
		})
	}
}

// TestStripeToleranceMatchesStripeGo checks the past side of the tolerance
// against stripe-go, which checks only that side.
func TestStripeToleranceMatchesStripeGo(t *testing.T) {
	t.Parallel()
	v := mustNew(t, verify.Config{Type: "stripe", Secret: stripeSecret})
	for _, age := range []time.Duration{0, time.Minute, 4 * time.Minute, 6 * time.Minute, time.Hour, 24 * time.Hour} {
		t.Run(age.String(), func(t *testing.T) {
			t.Parallel()
			now := time.Now()
			h := verify.SignStripe(stripeSecret, now.Add(-age), stripeEvent)
			theirs := webhook.ValidatePayload(stripeEvent, h, stripeSecret)
			ours := v.Verify(&verify.Request{Header: stripeHeader(h), Body: stripeEvent, Now: now})
			if (theirs == nil) != (ours == nil) {
				t.Fatalf("age %s: stripe-go says %v, we say %v", age, theirs, ours)
			}
			if theirs != nil && (!errors.Is(theirs, webhook.ErrTooOld) || !errors.Is(ours, verify.ErrTimestampOutOfTolerance)) {
				t.Fatalf("age %s: stripe-go says %v, we say %v", age, theirs, ours)
			}
		})
	}
}

func TestStripeToleranceMessage(t *testing.T) {
	t.Parallel()
	v := mustNew(t, verify.Config{Type: "stripe", Secret: stripeSecret})
	ts := time.Unix(1_700_000_000, 0)
	err := v.Verify(&verify.Request{Header: stripeHeader(verify.SignStripe(stripeSecret, ts, stripeEvent)), Body: stripeEvent, Now: ts.Add(12*time.Minute + 300*time.Millisecond)})
	want := "timestamp out of tolerance: timestamp 1700000000 is 12m0s old, tolerance 5m0s"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}
