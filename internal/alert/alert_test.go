package alert_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/alert"
	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

// slack is a loopback receiver of alert notifications.
type slack struct {
	mu    sync.Mutex
	texts []string
	url   string
}

func newSlack(t *testing.T) *slack {
	t.Helper()
	s := &slack{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil || len(body) != 1 {
			http.Error(w, "want {\"text\": ...}", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.texts = append(s.texts, body["text"])
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/services/T000/B000/XXXX"
	return s
}

func (s *slack) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.texts...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type testBundle struct {
	store *sqlite.Store
	fail  *atomic.Bool
}

// setup opens a store with destination "billing" whose receiver fails
// while fail is set, and starts a dispatcher feeding hook.
func setup(t *testing.T, maxAttempts int, hook func(store.Attempt, string)) *testBundle {
	t.Helper()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	fail := &atomic.Bool{}
	fail.Store(true)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusBadGateway)
		}
	}))
	t.Cleanup(dest.Close)
	if err := s.SourceUpsert(ctx, &store.Source{Name: "stripe"}); err != nil {
		t.Fatal(err)
	}
	err := s.DestinationUpsert(ctx, &store.Destination{Name: "billing", URL: dest.URL, Retry: store.RetryPolicy{
		MaxAttempts: maxAttempts, Initial: store.Duration(5 * time.Millisecond), Max: store.Duration(10 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.RequestIngest(ctx, &store.RequestIngestParams{
		Request:    &store.Request{Source: "stripe", ReceivedAt: time.Now(), Method: "POST", Body: []byte(`{}`)},
		Event:      &store.Event{},
		Deliveries: []*store.Delivery{{Destination: "billing", ConnectionID: "stripe->billing"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- deliver.New(s, &deliver.Options{PollInterval: 5 * time.Millisecond, OnAttempt: hook}).Run(runCtx)
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	return &testBundle{store: s, fail: fail}
}

func runMonitor(t *testing.T, m *alert.Monitor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestConsecutiveFailuresOpenThenResolve(t *testing.T) {
	t.Parallel()
	sl := newSlack(t)
	m := alert.New(nil, &alert.Options{ConsecutiveFailures: 3, URL: sl.url})
	runMonitor(t, m)
	b := setup(t, 100, func(a store.Attempt, outcome string) { m.ObserveAttempt(a, outcome) })

	waitFor(t, "the opening notification", func() bool { return len(sl.all()) >= 1 })
	open := m.List(true)
	if len(open) != 1 {
		t.Fatalf("open alerts = %+v", open)
	}
	if a := open[0]; a.Destination != "billing" || a.Reason != alert.ReasonConsecutiveFailures || a.Failures < 3 || a.LastError != "HTTP 502" {
		t.Errorf("alert = %+v", a)
	}
	if got := sl.all()[0]; !strings.Contains(got, "destination billing is failing: 3 consecutive failed attempts; last: HTTP 502") {
		t.Errorf("opening text = %q", got)
	}

	b.fail.Store(false)
	waitFor(t, "the resolving notification", func() bool { return len(sl.all()) >= 2 })
	if got := sl.all()[1]; !strings.Contains(got, "destination billing delivers again") {
		t.Errorf("resolving text = %q", got)
	}
	if open := m.List(true); len(open) != 0 {
		t.Errorf("alerts still open: %+v", open)
	}
	all := m.List(false)
	if len(all) != 1 || all[0].Open() || all[0].ResolvedAt.Before(all[0].OpenedAt) {
		t.Errorf("resolved alerts = %+v", all)
	}
	if n := len(sl.all()); n != 2 {
		t.Errorf("%d notifications, want exactly 2: %q", n, sl.all())
	}
}

// TestDeadDeliveriesFromStore checks that dead deliveries already in the
// store (as after a restart) open an alert on the first check.
func TestDeadDeliveriesFromStore(t *testing.T) {
	t.Parallel()
	sl := newSlack(t)
	var dead atomic.Int32
	b := setup(t, 1, func(a store.Attempt, outcome string) {
		if outcome == deliver.OutcomeDead {
			dead.Add(1)
		}
	})
	waitFor(t, "the delivery to die", func() bool { return dead.Load() == 1 })

	m := alert.New(b.store, &alert.Options{DeadDeliveries: 1, URL: sl.url, CheckInterval: 10 * time.Millisecond})
	runMonitor(t, m)
	waitFor(t, "the opening notification", func() bool { return len(sl.all()) >= 1 })
	open := m.List(true)
	if len(open) != 1 || open[0].Reason != alert.ReasonDeadDeliveries || open[0].Dead != 1 {
		t.Fatalf("open alerts = %+v", open)
	}
	if got := sl.all()[0]; !strings.Contains(got, "billing is failing: 1 dead deliveries") {
		t.Errorf("text = %q", got)
	}
	// Later checks do not open it again. (A negative check: it waits
	// for several check intervals to pass.)
	time.Sleep(50 * time.Millisecond)
	if n := len(sl.all()); n != 1 {
		t.Errorf("%d notifications, want 1", n)
	}
}

func TestNoURLNoNotifications(t *testing.T) {
	t.Parallel()
	m := alert.New(nil, &alert.Options{ConsecutiveFailures: 1})
	m.ObserveAttempt(store.Attempt{Destination: "d", StatusCode: 500}, deliver.OutcomeRetry)
	if open := m.List(true); len(open) != 1 || open[0].LastError != "HTTP 500" {
		t.Fatalf("open = %+v", open)
	}
	m.ObserveAttempt(store.Attempt{Destination: "d", Success: true}, deliver.OutcomeSucceeded)
	if open := m.List(true); len(open) != 0 {
		t.Fatalf("open = %+v", open)
	}
	// Canceled attempts count for nothing.
	m.ObserveAttempt(store.Attempt{Destination: "d", Error: "canceled"}, deliver.OutcomeCanceled)
	if open := m.List(true); len(open) != 0 {
		t.Fatalf("canceled attempt opened an alert: %+v", open)
	}
}

// TestCircuitOpenAlerts: an open circuit breaker opens an alert (posted),
// a reopening updates it, and closing resolves it.
func TestCircuitOpenAlerts(t *testing.T) {
	t.Parallel()
	sl := newSlack(t)
	m := alert.New(nil, &alert.Options{URL: sl.url})
	runMonitor(t, m)
	now := time.Now()
	m.ObserveCircuit("billing", "opened", store.CircuitState{State: store.CircuitOpen, Since: now, ProbeAt: now.Add(time.Minute), Opens: 1, Reason: "5 failed attempts in a row"})
	waitFor(t, "the opening notification", func() bool { return len(sl.all()) >= 1 })
	open := m.List(true)
	if len(open) != 1 || open[0].Reason != alert.ReasonCircuitOpen || !strings.Contains(open[0].Message, "5 failed attempts in a row") {
		t.Fatalf("open alerts = %+v", open)
	}
	m.ObserveCircuit("billing", "probing", store.CircuitState{State: store.CircuitHalfOpen, Since: now})
	m.ObserveCircuit("billing", "reopened", store.CircuitState{State: store.CircuitOpen, Since: now, ProbeAt: now.Add(2 * time.Minute), Opens: 2, Reason: "probe failed: HTTP 500"})
	if open := m.List(true); len(open) != 1 || !strings.Contains(open[0].Message, "probe failed: HTTP 500") {
		t.Fatalf("after reopening, open alerts = %+v", open)
	}
	m.ObserveCircuit("billing", "closed", store.CircuitState{Since: now})
	waitFor(t, "the resolving notification", func() bool { return len(sl.all()) >= 2 })
	if open := m.List(true); len(open) != 0 {
		t.Errorf("alerts still open after the circuit closed: %+v", open)
	}
}
