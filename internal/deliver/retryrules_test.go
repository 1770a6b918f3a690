package deliver_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/store"
)

// TestConnectionRetryRules: through one connection to a destination that
// always fails, a ping dies after its one attempt, a payment_intent event
// is retried past the destination's own attempt bound, and an event no
// rule matches gets the destination's policy; each delivery shows the
// policy that decided it.
func TestConnectionRetryRules(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusInternalServerError) })
	ms := store.Duration(time.Millisecond)
	addDest(t, s, &store.Destination{Name: "billing", URL: rc.srv.URL,
		Retry: store.RetryPolicy{MaxAttempts: 3, Initial: ms, Max: 5 * ms}})
	conn := &store.Connection{ID: "stripe-to-billing", Source: "src", Destination: "billing", Retry: []store.RetryRule{
		{Types: []string{"ping"}, MaxAttempts: 1},
		{Types: []string{"payment_intent.*"}, MaxAttempts: 6, Schedule: []store.Duration{ms, 2 * ms}},
	}}
	start(t, s, &deliver.Options{PollInterval: 20 * time.Millisecond, Connection: func(id string) *store.Connection {
		if id == conn.ID {
			return conn
		}
		return nil
	}})
	send := func(typ string) string {
		res, err := s.RequestIngest(context.Background(), &store.RequestIngestParams{
			Request:    &store.Request{Source: "src", Method: http.MethodPost, Path: "/e/src", Body: []byte(`{"type":"` + typ + `"}`)},
			Event:      &store.Event{Type: typ},
			Deliveries: []*store.Delivery{{Destination: "billing", ConnectionID: conn.ID}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.DeliveryIDs[0]
	}
	for _, tt := range []struct {
		typ, policy, reason string
		attempts            int
	}{
		{"ping", "connection stripe-to-billing retry[0]", "1 of 1 attempts made", 1},
		{"payment_intent.succeeded", "connection stripe-to-billing retry[1]", "6 of 6 attempts made", 6},
		{"invoice.paid", "destination billing", "3 of 3 attempts made", 3},
	} {
		d := waitStatus(t, s, send(tt.typ), store.DeliveryDead)
		if d.Attempts != tt.attempts || len(listAttempts(t, s, d.ID)) != tt.attempts {
			t.Errorf("%s: dead after %d attempts, want %d", tt.typ, d.Attempts, tt.attempts)
		}
		if r := d.Retry; r == nil || r.Policy != tt.policy || r.Decision != deliver.OutcomeDead || r.Reason != tt.reason {
			t.Errorf("%s: delivery shows retry %+v, want %s deciding dead: %s", tt.typ, r, tt.policy, tt.reason)
		}
	}
}

// TestRetryRuleChangeAppliesToPending: rules are read at every attempt,
// so a rule added while a delivery is being retried decides its next
// attempt: a delivery retried under its destination's policy (1000
// attempts) dies at its next failure once a rule for its type allows 2.
func TestRetryRuleChangeAppliesToPending(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusServiceUnavailable) })
	ms := store.Duration(time.Millisecond)
	addDest(t, s, &store.Destination{Name: "billing", URL: rc.srv.URL,
		Retry: store.RetryPolicy{MaxAttempts: 1000, Initial: ms, Max: 20 * ms}})
	var cur atomic.Pointer[store.Connection]
	cur.Store(&store.Connection{ID: "c", Source: "src", Destination: "billing"})
	start(t, s, &deliver.Options{PollInterval: 20 * time.Millisecond, Connection: func(id string) *store.Connection { return cur.Load() }})
	res, err := s.RequestIngest(context.Background(), &store.RequestIngestParams{
		Request:    &store.Request{Source: "src", Method: http.MethodPost, Path: "/e/src", Body: []byte(`{}`)},
		Event:      &store.Event{Type: "customer.updated"},
		Deliveries: []*store.Delivery{{Destination: "billing", ConnectionID: "c"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := res.DeliveryIDs[0]
	waitFor(t, "five attempts under the destination's policy", func() bool { return getDelivery(t, s, id).Attempts >= 5 })
	if d := getDelivery(t, s, id); d.Status != store.DeliveryPending || d.Retry == nil || d.Retry.Policy != "destination billing" {
		t.Fatalf("before the rule: %s, retry %+v", d.Status, d.Retry)
	}
	cur.Store(&store.Connection{ID: "c", Source: "src", Destination: "billing",
		Retry: []store.RetryRule{{Types: []string{"customer.*"}, MaxAttempts: 2}}})
	d := waitStatus(t, s, id, store.DeliveryDead)
	if r := d.Retry; r == nil || r.Policy != "connection c retry[0]" || r.Reason != fmt.Sprintf("%d of 2 attempts made", d.Attempts) {
		t.Errorf("after the rule: dead after %d attempts, retry %+v", d.Attempts, d.Retry)
	}
}
