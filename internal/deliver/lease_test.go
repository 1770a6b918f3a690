package deliver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/store"
)

// TestLeaseRenewedWhileInFlight: a claim lasts Options.Lease unless the
// dispatcher renews it, so an attempt that runs for several leases must
// keep its delivery from every other claimer (another instance) until it
// is recorded; and once it is, the delivery has one attempt.
func TestLeaseRenewedWhileInFlight(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	release := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-release
	}))
	t.Cleanup(srv.Close)
	defer close(release)
	addDest(t, s, &store.Destination{Name: "slow", URL: srv.URL, Timeout: store.Duration(time.Minute)})
	res := ingest(t, s, []byte(`{}`), "application/json", "slow")
	const lease = 200 * time.Millisecond
	start(t, s, &deliver.Options{Lease: lease, PollInterval: 20 * time.Millisecond})

	deadline := time.Now().Add(waitTimeout)
	for calls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the attempt never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Another instance polls for due work over six leases: it must never
	// get the delivery in flight.
	ctx := context.Background()
	for end := time.Now().Add(6 * lease); time.Now().Before(end); time.Sleep(lease / 4) {
		now := time.Now()
		got, err := s.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Destination: "slow", Now: now, LeaseUntil: now.Add(time.Hour), Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 {
			t.Fatalf("another claimer took %s while its attempt was in flight (lease %s, renewed every %s)", got[0].ID, lease, lease/4)
		}
	}
	release <- struct{}{}
	waitFor(t, "the delivery succeeded", func() bool {
		d, err := s.DeliveryGetByID(ctx, res.DeliveryIDs[0])
		return err == nil && d.Status == store.DeliverySucceeded
	})
	if d, _ := s.DeliveryGetByID(ctx, res.DeliveryIDs[0]); d.Attempts != 1 {
		t.Errorf("attempts = %d, want 1", d.Attempts)
	}
}
