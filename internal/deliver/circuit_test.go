package deliver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/store"
)

// TestCircuitBreaker: a destination that fails three times in a row opens
// its circuit; nothing is sent while it is open; after the cooldown one
// probe goes out; a failed probe reopens it for twice as long; once the
// destination recovers a probe closes it and every delivery arrives, none
// dead.
func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	var down atomic.Bool
	down.Store(true)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if down.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	const cooldown = 300 * time.Millisecond
	addDest(t, s, &store.Destination{Name: "flaky", URL: srv.URL, MaxConcurrency: 1,
		Retry:          store.RetryPolicy{MaxAttempts: 5, Initial: store.Duration(time.Millisecond), Max: store.Duration(5 * time.Millisecond)},
		CircuitBreaker: store.CircuitBreaker{Failures: 3, Cooldown: store.Duration(cooldown), MaxCooldown: store.Duration(10 * cooldown)}})
	res := ingestN(t, s, 10, "flaky")

	type step struct {
		transition string
		st         store.CircuitState
		hits       int64
	}
	var mu sync.Mutex
	var steps []step
	start(t, s, &deliver.Options{PollInterval: 20 * time.Millisecond, OnCircuit: func(dest, transition string, st store.CircuitState) {
		mu.Lock()
		steps = append(steps, step{transition, st, hits.Load()})
		n := len(steps)
		mu.Unlock()
		if transition == deliver.CircuitReopened && n >= 4 {
			down.Store(false) // recovers after the second failed probe
		}
	}})
	waitFor(t, "the circuit closes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(steps) > 0 && steps[len(steps)-1].transition == deliver.CircuitClosed
	})
	waitFor(t, "every delivery succeeds", func() bool {
		for _, r := range res {
			d, err := s.DeliveryGetByID(context.Background(), r.DeliveryIDs[0])
			if err != nil || d.Status != store.DeliverySucceeded {
				return false
			}
		}
		return true
	})

	mu.Lock()
	defer mu.Unlock()
	var names []string
	for _, st := range steps {
		names = append(names, st.transition)
	}
	want := []string{deliver.CircuitOpened, deliver.CircuitProbing, deliver.CircuitReopened, deliver.CircuitProbing,
		deliver.CircuitReopened, deliver.CircuitProbing, deliver.CircuitClosed}
	if len(names) != len(want) {
		t.Fatalf("transitions = %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("transitions = %v, want %v", names, want)
		}
	}
	if steps[0].hits != 3 {
		t.Errorf("opened after %d attempts, want 3 failures in a row", steps[0].hits)
	}
	for i := 1; i < len(steps); i++ {
		switch steps[i].transition {
		case deliver.CircuitProbing:
			// Open: nothing was sent between opening and the probe.
			if steps[i].hits != steps[i-1].hits {
				t.Errorf("%d attempts sent while the circuit was open", steps[i].hits-steps[i-1].hits)
			}
		case deliver.CircuitReopened, deliver.CircuitClosed:
			// Half-open: exactly the probe was sent.
			if steps[i].hits != steps[i-1].hits+1 {
				t.Errorf("%d attempts sent while half-open, want the one probe", steps[i].hits-steps[i-1].hits)
			}
		}
	}
	// The cooldown doubles with each opening.
	for i, want := range map[int]time.Duration{0: cooldown, 2: 2 * cooldown, 4: 4 * cooldown} {
		if got := steps[i].st.ProbeAt.Sub(steps[i].st.Since); got != want {
			t.Errorf("cooldown after opening %d = %s, want %s", steps[i].st.Opens, got, want)
		}
	}
	d, err := s.DestinationGet(context.Background(), "flaky")
	if err != nil {
		t.Fatal(err)
	}
	if d.Circuit.State != store.CircuitClosed || d.Circuit.Opens != 0 {
		t.Errorf("stored circuit = %+v, want closed", d.Circuit)
	}
}
