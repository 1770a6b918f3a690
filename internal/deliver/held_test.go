package deliver_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/store"
)

// gatedStore blocks claims while closed is set, until it is cleared, and
// counts the claims waiting at the gate and those that returned.
type gatedStore struct {
	store.Store
	mu       sync.Mutex
	closed   bool
	open     chan struct{} // closed when the gate opens
	waiting  atomic.Int32
	returned atomic.Int32
}

func newGatedStore(s store.Store) *gatedStore {
	return &gatedStore{Store: s, open: make(chan struct{})}
}

func (g *gatedStore) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (g *gatedStore) reopen() {
	g.mu.Lock()
	if g.closed {
		g.closed = false
		close(g.open)
	}
	g.mu.Unlock()
}

func (g *gatedStore) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.Delivery, error) {
	g.mu.Lock()
	closed, open := g.closed, g.open
	g.mu.Unlock()
	if closed {
		g.waiting.Add(1)
		select {
		case <-open:
			g.waiting.Add(-1)
		case <-ctx.Done():
			g.waiting.Add(-1)
			return nil, ctx.Err()
		}
	}
	defer g.returned.Add(1)
	return g.Store.DeliveryClaimDue(ctx, p)
}

// blockFirst returns a receiver whose first request waits until the
// returned release is called, then is answered with status; every other
// request gets 200.
func blockFirst(t *testing.T, status int) (*receiver, func()) {
	t.Helper()
	rc, releases := blockFirstN(t, 1, status)
	return rc, releases[0]
}

// blockFirstN returns a receiver whose n first requests each wait until
// their release is called, then are answered with status; every other
// request gets 200.
func blockFirstN(t *testing.T, n, status int) (*receiver, []func()) {
	t.Helper()
	gates := make([]chan struct{}, n)
	releases := make([]func(), n)
	for i := range gates {
		gates[i] = make(chan struct{})
		releases[i] = sync.OnceFunc(func() { close(gates[i]) })
	}
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, k int) {
		if k <= n {
			select {
			case <-gates[k-1]:
			case <-r.Context().Done():
			}
			w.WriteHeader(status)
		}
	})
	// Before the server closes: it waits for the handlers.
	t.Cleanup(func() {
		for _, release := range releases {
			release()
		}
	})
	return rc, releases
}

// waitHeld waits until the dispatcher has claimed id ahead of a free
// slot: its claim is in the store while the receiver has seen only the
// first request.
func waitHeld(t *testing.T, s store.Store, rc *receiver, id string) *store.Delivery {
	t.Helper()
	var d *store.Delivery
	waitFor(t, "the second delivery to be claimed ahead", func() bool {
		d = getDelivery(t, s, id)
		return d.Attempts == 1
	})
	if n := rc.count(); n != 1 {
		t.Fatalf("the receiver saw %d requests with one slot, want 1", n)
	}
	return d
}

// TestHeldRefillsFreedSlot: the worker claims one more max_concurrency
// ahead of its free slots, and an attempt that frees its slot starts a
// held delivery itself, so the slot is refilled while the worker's next
// claim still waits in the store's queue.
func TestHeldRefillsFreedSlot(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	g := newGatedStore(s)
	t.Cleanup(g.reopen)
	rc, release := blockFirstN(t, 4, http.StatusOK)
	addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL, MaxConcurrency: 2})
	var ids []string
	for _, res := range ingestN(t, s, 5, "app") {
		ids = append(ids, res.DeliveryIDs[0])
	}
	claimed := func() int {
		n := 0
		for _, id := range ids {
			if getDelivery(t, s, id).Attempts > 0 {
				n++
			}
		}
		return n
	}
	start(t, g, nil)
	waitFor(t, "two requests in flight", func() bool { return rc.count() == 2 })
	waitFor(t, "two more deliveries claimed ahead", func() bool { return claimed() == 4 })
	if n := rc.count(); n != 2 {
		t.Fatalf("the receiver saw %d requests with two slots, want 2", n)
	}

	// Every claim from now on waits at the gate.
	g.close()
	claims := g.returned.Load()
	// The receiver holds the first four requests until told.
	release[0]()
	waitFor(t, "a held delivery to take the first freed slot", func() bool { return rc.count() == 3 })
	// The worker claims for the room that left, and its claim waits.
	waitFor(t, "the worker's claim to wait in the store", func() bool { return g.waiting.Load() == 1 })
	release[1]()
	waitFor(t, "the other held delivery to take the second freed slot", func() bool { return rc.count() == 4 })
	if n := g.returned.Load(); n != claims {
		t.Errorf("%d claims returned before the slots were refilled, want none", n-claims)
	}
	g.reopen()
	release[2]()
	release[3]()
	for _, id := range ids {
		waitStatus(t, s, id, store.DeliverySucceeded)
	}
	if m := rc.maxSeen.Load(); m > 2 {
		t.Errorf("%d requests in flight at once, want at most max_concurrency 2", m)
	}
}

// TestHeldGivenBack: a delivery claimed ahead and waiting for a slot is
// not sent once anything that would stop a claim happens (a 410 pauses
// the destination, the API pauses it, its circuit opens, the dispatcher
// stops); it is given back to the store, due at once with its unused
// attempt number taken back, rather than lost or left to its lease.
func TestHeldGivenBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int // the answer to the first request
		circuit store.CircuitBreaker
		// during runs while the first request is in flight, once the
		// second delivery is held; the delivery must be given back
		// before the first request ends.
		during func(t *testing.T, s store.Store, stop func() error) (wait func())
	}{
		{name: "410 pauses the destination", status: http.StatusGone},
		{name: "the circuit opens", status: http.StatusInternalServerError,
			circuit: store.CircuitBreaker{Failures: 1, Cooldown: store.Duration(time.Hour)}},
		{name: "paused through the API", status: http.StatusOK,
			during: func(t *testing.T, s store.Store, stop func() error) func() {
				if err := s.DestinationSetPaused(context.Background(), "app", true, "by hand"); err != nil {
					t.Fatal(err)
				}
				return func() {}
			}},
		{name: "the dispatcher stops", status: http.StatusOK,
			during: func(t *testing.T, s store.Store, stop func() error) func() {
				done := make(chan error, 1)
				go func() { done <- stop() }()
				return func() {
					if err := <-done; err != nil {
						t.Errorf("Run = %v", err)
					}
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			rc, release := blockFirst(t, tt.status)
			addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL, MaxConcurrency: 1, CircuitBreaker: tt.circuit,
				Retry: store.RetryPolicy{Initial: store.Duration(time.Hour)}})
			var ids []string
			for _, res := range ingestN(t, s, 2, "app") {
				ids = append(ids, res.DeliveryIDs[0])
			}
			stop := start(t, s, &deliver.Options{GracePeriod: time.Minute})
			waitFor(t, "the first request", func() bool { return rc.count() == 1 })
			waitHeld(t, s, rc, ids[1])

			givenBack := func() bool {
				d := getDelivery(t, s, ids[1])
				return d.Status == store.DeliveryPending && d.Attempts == 0
			}
			wait := func() {}
			if tt.during != nil {
				wait = tt.during(t, s, stop)
				waitFor(t, "the held delivery to be given back", givenBack)
			}
			release()
			waitFor(t, "the first attempt to be recorded", func() bool { return len(listAttempts(t, s, ids[0])) == 1 })
			waitFor(t, "the held delivery to be given back", givenBack)
			wait()
			// Run has returned: any attempt it started has ended.
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if n := rc.count(); n != 1 {
				t.Errorf("the receiver saw %d requests, want only the first", n)
			}
			d := getDelivery(t, s, ids[1])
			if d.Status != store.DeliveryPending || d.Attempts != 0 || d.NextAttemptAt.After(time.Now()) || len(listAttempts(t, s, ids[1])) != 0 {
				t.Errorf("given back delivery: %+v, %d attempts recorded; want pending, due, none", d, len(listAttempts(t, s, ids[1])))
			}
		})
	}
}

// TestHeldNotSentAfterLeaseRanOut: a held delivery's lease is not renewed
// (only attempts in flight are), so once it may have run out the
// delivery is not sent under it: another instance may hold it by then.
func TestHeldNotSentAfterLeaseRanOut(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc, release := blockFirst(t, http.StatusOK)
	addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL, MaxConcurrency: 1, Timeout: store.Duration(time.Minute)})
	first := ingest(t, s, []byte(`{"n":1}`), "application/json", "app").DeliveryIDs[0]
	const lease = 300 * time.Millisecond
	// A long poll: the worker wakes only when told, so it does not give
	// the held delivery back (and claim it again) before the test looks.
	stop := start(t, s, &deliver.Options{Lease: lease, PollInterval: time.Minute})
	waitFor(t, "the first request", func() bool { return rc.count() == 1 })
	second := ingest(t, s, []byte(`{"n":2}`), "application/json", "app").DeliveryIDs[0]
	held := waitHeld(t, s, rc, second)

	// The first delivery's lease is renewed while its attempt is in
	// flight, the held one's is not: wait until it ran out, and the first
	// one's was renewed past it, so that another instance's claim takes
	// the held delivery (the earliest due) and only it.
	waitFor(t, "the held lease to run out", func() bool {
		return time.Now().After(held.NextAttemptAt) && getDelivery(t, s, first).NextAttemptAt.After(held.NextAttemptAt)
	})
	now := time.Now()
	other, err := s.DeliveryClaimDue(context.Background(), &store.DeliveryClaimDueParams{Destination: "app", Now: now,
		LeaseUntil: now.Add(time.Hour), Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(other) != 1 || other[0].ID != second || other[0].Attempts != 2 {
		t.Fatalf("the other instance claimed %+v, want %s with attempt 2", other, second)
	}
	release()
	waitStatus(t, s, first, store.DeliverySucceeded)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, h := range rc.all() {
		if h.header.Get(deliver.HeaderDeliveryID) == second {
			t.Errorf("the held delivery was sent (attempt %s) after its lease ran out and another instance claimed it",
				h.header.Get(deliver.HeaderAttempt))
		}
	}
	if d := getDelivery(t, s, second); d.Attempts != 2 || len(listAttempts(t, s, second)) != 0 {
		t.Errorf("the other instance's claim was disturbed: %+v", d)
	}
}

// TestHeldGivenBackWhileSlotsBusy: a held delivery whose lease is half
// gone is given back (and claimed again under a fresh lease) even while
// every slot stays busy, rather than kept from other instances until its
// lease runs out; the claims it went through use up no attempt.
func TestHeldGivenBackWhileSlotsBusy(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc, release := blockFirst(t, http.StatusOK)
	addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL, MaxConcurrency: 1, Timeout: store.Duration(time.Minute)})
	first := ingest(t, s, []byte(`{"n":1}`), "application/json", "app").DeliveryIDs[0]
	start(t, s, &deliver.Options{Lease: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	waitFor(t, "the first request", func() bool { return rc.count() == 1 })
	second := ingest(t, s, []byte(`{"n":2}`), "application/json", "app").DeliveryIDs[0]
	held := waitHeld(t, s, rc, second)
	waitFor(t, "the held delivery to be given back and claimed again", func() bool {
		d := getDelivery(t, s, second)
		return d.Attempts == 1 && d.NextAttemptAt.After(held.NextAttemptAt)
	})
	if n := rc.count(); n != 1 {
		t.Fatalf("the receiver saw %d requests with the one slot busy, want 1", n)
	}
	release()
	waitStatus(t, s, first, store.DeliverySucceeded)
	d := waitStatus(t, s, second, store.DeliverySucceeded)
	if as := listAttempts(t, s, second); d.Attempts != 1 || len(as) != 1 || as[0].Number != 1 {
		t.Errorf("second delivery: attempts %d, recorded %+v; want one attempt, number 1", d.Attempts, as)
	}
}
