package deliver_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// waitTimeout bounds every wait in these tests; they pass in well under a
// second each on an idle machine.
const waitTimeout = 20 * time.Second

// openStore opens (or reopens) the SQLite database at path; t.Cleanup
// closes it.
func openStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, &sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) *sqlite.Store {
	t.Helper()
	return openStore(t, filepath.Join(t.TempDir(), "mailroom.db"))
}

func addDest(t testing.TB, s store.Store, d *store.Destination) {
	t.Helper()
	if err := s.DestinationUpsert(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

// ingest stores one accepted request with body and content type, and one
// delivery per destination; it returns the event and delivery ids.
func ingest(t testing.TB, s store.Store, body []byte, contentType string, dests ...string) *store.RequestIngestResult {
	t.Helper()
	p := &store.RequestIngestParams{
		Request: &store.Request{
			Source: "src", Method: http.MethodPost, Path: "/e/src",
			Headers: http.Header{"Content-Type": {contentType}, "X-Provider": {"test"}},
			Body:    body,
		},
		Event: &store.Event{Type: "test.event"},
	}
	for _, d := range dests {
		p.Deliveries = append(p.Deliveries, &store.Delivery{Destination: d, ConnectionID: store.ConnectionID("src", d)})
	}
	res, err := s.RequestIngest(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ingestN(t testing.TB, s store.Store, n int, dests ...string) []*store.RequestIngestResult {
	t.Helper()
	out := make([]*store.RequestIngestResult, n)
	for i := range out {
		out[i] = ingest(t, s, fmt.Appendf(nil, `{"n":%d}`, i), "application/json", dests...)
	}
	return out
}

// testLogger logs through t at debug level, shown when a test fails.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start runs a Dispatcher on s until the returned stop is called (or the
// test ends). stop cancels Run's context and returns Run's result.
func start(t testing.TB, s store.Store, opts *deliver.Options) (stop func() error) {
	t.Helper()
	o := deliver.Options{Logger: testLogger(t)}
	if opts != nil {
		o = *opts
		if o.Logger == nil {
			o.Logger = testLogger(t)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- deliver.New(s, &o).Run(ctx) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(waitTimeout):
			t.Error("Run did not return after its context ended")
			return errors.New("run did not return")
		}
	})
	t.Cleanup(func() { stop() })
	return stop
}

// waitFor polls cond until it holds, failing t after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func getDelivery(t testing.TB, s store.Store, id string) *store.Delivery {
	t.Helper()
	d, err := s.DeliveryGetByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func listAttempts(t testing.TB, s store.Store, id string) []*store.Attempt {
	t.Helper()
	as, err := s.AttemptList(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func waitStatus(t testing.TB, s store.Store, id, status string) *store.Delivery {
	t.Helper()
	var d *store.Delivery
	waitFor(t, "delivery "+id+" to be "+status, func() bool {
		d = getDelivery(t, s, id)
		return d.Status == status
	})
	return d
}

func countStatus(t testing.TB, s store.Store, dest, status string) int {
	t.Helper()
	ds, err := s.DeliveryList(context.Background(), &store.DeliveryListParams{Destination: dest, Status: status, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(ds)
}

// hit is one request as a receiver saw it.
type hit struct {
	at     time.Time
	header http.Header
	body   []byte
}

// receiver is an httptest server that records every request and answers
// through respond (200 when nil). n counts requests from 1.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	hits    []hit
	cur     atomic.Int32
	maxSeen atomic.Int32
	respond func(w http.ResponseWriter, r *http.Request, n int)
}

func newReceiver(t testing.TB, respond func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := rc.cur.Add(1)
		defer rc.cur.Add(-1)
		for {
			m := rc.maxSeen.Load()
			if c <= m || rc.maxSeen.CompareAndSwap(m, c) {
				break
			}
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.hits = append(rc.hits, hit{at: time.Now(), header: r.Header.Clone(), body: body})
		n := len(rc.hits)
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(w, r, n)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) all() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.hits)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.hits)
}

// hold keeps a request open for d, or until the client gives up.
func hold(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

func newSecret(t testing.TB) string {
	t.Helper()
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

func TestDeliverSuccess(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	secret := newSecret(t)
	v, err := verify.New(verify.Config{Type: "standard-webhooks", Secret: secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("X-Reply", "thanks")
		io.WriteString(w, "accepted-with-a-long-answer")
	})
	outcomes := make(chan string, 10)
	// The dispatcher starts before the destination exists: the catalog
	// notification must bring it in (the reload interval is a minute).
	start(t, s, &deliver.Options{
		MaxResponseBody: 8,
		UserAgent:       "mailroom-test/1",
		OnAttempt:       func(a store.Attempt, outcome string) { outcomes <- outcome },
	})
	addDest(t, s, &store.Destination{
		Name:    "app",
		URL:     rc.srv.URL + "/hooks?x=1",
		Sign:    store.SignConfig{Type: "standard-webhooks", Secret: secret},
		Headers: map[string]string{"X-Custom": "yes", "Authorization": "Bearer tok"},
	})
	body := []byte("{\"a\": 1,\n  \"b\": \"\xff\xfe not utf-8\"}  \r\n")
	const ct = "application/json; charset=latin1"
	res := ingest(t, s, body, ct, "app")
	dlvID := res.DeliveryIDs[0]

	waitStatus(t, s, dlvID, store.DeliverySucceeded)
	hits := rc.all()
	if len(hits) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(hits))
	}
	h := hits[0]
	if string(h.body) != string(body) {
		t.Errorf("body = %q, want %q", h.body, body)
	}
	if err := v.Verify(&verify.Request{Header: h.header, Body: h.body}); err != nil {
		t.Errorf("receiver cannot verify the signature: %v", err)
	}
	for k, want := range map[string]string{
		"Content-Type":           ct,
		"Webhook-Id":             res.EventID,
		"X-Mailroom-Event-Id":    res.EventID,
		"X-Mailroom-Delivery-Id": dlvID,
		"X-Mailroom-Attempt":     "1",
		"User-Agent":             "mailroom-test/1",
		"X-Custom":               "yes",
		"Authorization":          "Bearer tok",
	} {
		if got := h.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if ts, err := strconv.ParseInt(h.header.Get("Webhook-Timestamp"), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q is not a current Unix time", h.header.Get("Webhook-Timestamp"))
	}
	if h.header.Get("X-Provider") != "" {
		t.Error("an original header other than Content-Type was forwarded")
	}

	as := listAttempts(t, s, dlvID)
	if len(as) != 1 {
		t.Fatalf("%d attempts recorded, want 1", len(as))
	}
	a := as[0]
	if !a.Success || a.StatusCode != 200 || a.Number != 1 || a.Error != "" || a.EventID != res.EventID || a.Destination != "app" {
		t.Errorf("attempt = %+v", a)
	}
	if got := string(a.ResponseBody); got != "accepted" {
		t.Errorf("response body = %q, want it capped to %q", got, "accepted")
	}
	if a.ResponseHeaders.Get("X-Reply") != "thanks" {
		t.Errorf("response headers = %v", a.ResponseHeaders)
	}
	if a.DurationMS <= 0 {
		t.Errorf("duration = %v ms", a.DurationMS)
	}
	if got := <-outcomes; got != deliver.OutcomeSucceeded {
		t.Errorf("OnAttempt outcome = %q", got)
	}
}

// TestDefaultUserAgent checks that without Options.UserAgent deliveries
// say which build sent them: "mailroom/<version>" from internal/buildinfo.
func TestDefaultUserAgent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {})
	start(t, s, &deliver.Options{})
	addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL + "/hooks"})
	res := ingest(t, s, []byte(`{}`), "application/json", "app")
	waitStatus(t, s, res.DeliveryIDs[0], store.DeliverySucceeded)
	hits := rc.all()
	if len(hits) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(hits))
	}
	if got, want := hits[0].header.Get("User-Agent"), buildinfo.Read().UserAgent(); got != want {
		t.Errorf("User-Agent = %q, want %q", got, want)
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n <= 2 {
			http.Error(w, "not yet", http.StatusInternalServerError)
		}
	})
	addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL,
		Retry: store.RetryPolicy{Initial: store.Duration(40 * time.Millisecond), Max: store.Duration(time.Second)}})
	// rnd = 1 makes the delays the full ceilings: 40ms, then 80ms. With a
	// one-minute poll the retries only happen in time if the worker wakes
	// for the retries it scheduled.
	start(t, s, &deliver.Options{Rand: func() float64 { return 1 }, PollInterval: time.Minute})
	res := ingest(t, s, []byte(`{}`), "application/json", "app")
	id := res.DeliveryIDs[0]

	d := waitStatus(t, s, id, store.DeliverySucceeded)
	if d.Attempts != 3 {
		t.Errorf("delivery attempts = %d, want 3", d.Attempts)
	}
	as := listAttempts(t, s, id)
	if len(as) != 3 {
		t.Fatalf("%d attempts recorded, want 3", len(as))
	}
	for i, a := range as {
		wantOK := i == 2
		if a.Number != i+1 || a.Success != wantOK || (wantOK && a.StatusCode != 200) || (!wantOK && a.StatusCode != 500) {
			t.Errorf("attempt %d = number %d status %d success %v", i, a.Number, a.StatusCode, a.Success)
		}
	}
	hits := rc.all()
	for i, want := range []time.Duration{40 * time.Millisecond, 80 * time.Millisecond} {
		if gap := hits[i+1].at.Sub(hits[i].at); gap < want {
			t.Errorf("attempt %d came %v after attempt %d, want at least %v", i+2, gap, i+1, want)
		}
	}
	for i, h := range hits {
		if h.header.Get("Webhook-Id") != res.EventID {
			t.Errorf("attempt %d webhook-id = %q, want the event id on every retry", i+1, h.header.Get("Webhook-Id"))
		}
		if h.header.Get("X-Mailroom-Attempt") != strconv.Itoa(i+1) {
			t.Errorf("attempt %d X-Mailroom-Attempt = %q", i+1, h.header.Get("X-Mailroom-Attempt"))
		}
	}
}

func TestDeadAfterMaxAttemptsAndManualRetry(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		http.Error(w, "broken", http.StatusBadGateway)
	})
	addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL,
		Retry: store.RetryPolicy{MaxAttempts: 3, Initial: store.Duration(time.Millisecond), Max: store.Duration(5 * time.Millisecond)}})
	var outcomes sync.Map
	start(t, s, &deliver.Options{OnAttempt: func(a store.Attempt, outcome string) { outcomes.Store(a.Number, outcome) }})
	id := ingest(t, s, []byte(`{}`), "application/json", "app").DeliveryIDs[0]

	d := waitStatus(t, s, id, store.DeliveryDead)
	if d.Attempts != 3 || d.LastStatus != 502 {
		t.Errorf("dead delivery: attempts %d, last status %d", d.Attempts, d.LastStatus)
	}
	if n := len(listAttempts(t, s, id)); n != 3 {
		t.Errorf("%d attempts recorded, want 3", n)
	}
	// The hook runs after the record, so it may trail the status a little.
	waitFor(t, "the third OnAttempt call", func() bool { _, ok := outcomes.Load(3); return ok })
	for n, want := range map[int]string{1: deliver.OutcomeRetry, 2: deliver.OutcomeRetry, 3: deliver.OutcomeDead} {
		if got, _ := outcomes.Load(n); got != want {
			t.Errorf("outcome of attempt %d = %v, want %s", n, got, want)
		}
	}

	if _, err := s.DeliveryRetry(context.Background(), id, time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the manual retry to run and die", func() bool {
		d = getDelivery(t, s, id)
		return d.Status == store.DeliveryDead && d.Attempts == 4
	})
	if n := len(listAttempts(t, s, id)); n != 4 {
		t.Errorf("%d attempts after manual retry, want exactly 4", n)
	}
	if n := rc.count(); n != 4 {
		t.Errorf("receiver saw %d requests, want 4", n)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		retryAfter func() string
		max        time.Duration
		min        time.Duration // the retry comes no sooner
		within     time.Duration // and no later (generous: slow machines)
	}{
		{"429 seconds honoured", 429, func() string { return "1" }, time.Hour, time.Second, 15 * time.Second},
		{"429 clamped to max", 429, func() string { return "3600" }, 200 * time.Millisecond, 200 * time.Millisecond, 15 * time.Second},
		{"503 http date", 503, func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) }, time.Hour, time.Second, 15 * time.Second},
		{"500 ignores Retry-After", 500, func() string { return "3600" }, time.Hour, 50 * time.Millisecond, 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Retry-After", tt.retryAfter())
					w.WriteHeader(tt.status)
				}
			})
			addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL,
				Retry: store.RetryPolicy{Initial: store.Duration(50 * time.Millisecond), Max: store.Duration(tt.max)}})
			start(t, s, &deliver.Options{Rand: func() float64 { return 1 }})
			id := ingest(t, s, []byte(`{}`), "application/json", "app").DeliveryIDs[0]
			waitStatus(t, s, id, store.DeliverySucceeded)
			hits := rc.all()
			if len(hits) != 2 {
				t.Fatalf("receiver saw %d requests, want 2", len(hits))
			}
			gap := hits[1].at.Sub(hits[0].at)
			if gap < tt.min || gap > tt.within {
				t.Errorf("retry came after %v, want between %v and %v", gap, tt.min, tt.within)
			}
		})
	}
}

func TestGonePausesDestination(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	var gone atomic.Bool
	gone.Store(true)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if gone.Load() {
			w.WriteHeader(http.StatusGone)
		}
	})
	addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL})
	start(t, s, &deliver.Options{PollInterval: 10 * time.Millisecond})
	first := ingest(t, s, []byte(`{"n":1}`), "application/json", "app").DeliveryIDs[0]

	var dest *store.Destination
	waitFor(t, "destination to be paused", func() bool {
		var err error
		dest, err = s.DestinationGet(context.Background(), "app")
		if err != nil {
			t.Fatal(err)
		}
		return dest.Paused
	})
	if want := "410 Gone from " + rc.srv.URL; dest.PauseReason != want {
		t.Errorf("pause reason = %q, want %q", dest.PauseReason, want)
	}
	waitFor(t, "the 410 attempt to be recorded", func() bool { return len(listAttempts(t, s, first)) == 1 })
	d := getDelivery(t, s, first)
	if d.Status != store.DeliveryPending || d.LastStatus != 410 {
		t.Errorf("delivery after 410: status %s, last status %d", d.Status, d.LastStatus)
	}
	// Sent while paused, this one would get a 410 too.
	second := ingest(t, s, []byte(`{"n":2}`), "application/json", "app").DeliveryIDs[0]
	// A negative check needs an observation window: several poll
	// intervals, during which nothing may be claimed.
	<-time.After(50 * time.Millisecond)
	if n := rc.count(); n != 1 {
		t.Fatalf("receiver saw %d requests while paused, want 1", n)
	}

	gone.Store(false)
	if err := s.DestinationSetPaused(context.Background(), "app", false, ""); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, first, store.DeliverySucceeded)
	waitStatus(t, s, second, store.DeliverySucceeded)
	if n := len(listAttempts(t, s, first)); n != 2 {
		t.Errorf("first delivery has %d attempts, want 2", n)
	}
	if n := len(listAttempts(t, s, second)); n != 1 {
		t.Errorf("second delivery has %d attempts, want 1 (it must wait for the resume)", n)
	}
}

func TestRetryOn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		want     string
		attempts int
	}{
		{"status not listed dies at once", 500, store.DeliveryDead, 1},
		{"listed status is retried", 503, store.DeliverySucceeded, 2},
		{"redirect not listed dies at once", 302, store.DeliveryDead, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Location", "/elsewhere")
					w.WriteHeader(tt.status)
				}
			})
			addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL,
				Retry: store.RetryPolicy{MaxAttempts: 5, Initial: store.Duration(time.Millisecond), RetryOn: []int{429, 503}}})
			start(t, s, nil)
			id := ingest(t, s, []byte(`{}`), "application/json", "app").DeliveryIDs[0]
			d := waitStatus(t, s, id, tt.want)
			if d.Attempts != tt.attempts {
				t.Errorf("attempts = %d, want %d", d.Attempts, tt.attempts)
			}
			if n := rc.count(); n != tt.attempts {
				t.Errorf("receiver saw %d requests, want %d (redirects are not followed)", n, tt.attempts)
			}
		})
	}
}

func TestTimeoutIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		hold(r, time.Minute)
	})
	addDest(t, s, &store.Destination{Name: "slow", URL: rc.srv.URL, Timeout: store.Duration(50 * time.Millisecond),
		Retry: store.RetryPolicy{MaxAttempts: 1}})
	start(t, s, nil)
	id := ingest(t, s, []byte(`{}`), "application/json", "slow").DeliveryIDs[0]
	d := waitStatus(t, s, id, store.DeliveryDead)
	as := listAttempts(t, s, id)
	if len(as) != 1 {
		t.Fatalf("%d attempts, want 1", len(as))
	}
	a := as[0]
	if a.Success || a.StatusCode != 0 || !strings.Contains(a.Error, "timeout") || a.DurationMS < 50 {
		t.Errorf("attempt = success %v status %d error %q duration %vms", a.Success, a.StatusCode, a.Error, a.DurationMS)
	}
	if d.LastError != a.Error {
		t.Errorf("delivery last error = %q, want %q", d.LastError, a.Error)
	}
}

func TestMaxConcurrency(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		hold(r, 20*time.Millisecond)
	})
	addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL, MaxConcurrency: 3})
	ingestN(t, s, 24, "app")
	start(t, s, nil)
	waitFor(t, "all deliveries", func() bool { return countStatus(t, s, "app", store.DeliverySucceeded) == 24 })
	if got := rc.maxSeen.Load(); got > 3 || got < 1 {
		t.Errorf("receiver saw %d concurrent requests, want at most 3", got)
	}
	t.Logf("max concurrent requests: %d", rc.maxSeen.Load())
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newReceiver(t, nil)
	const (
		perSec = 20 // burst is one second's worth
		n      = 36
	)
	addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL, RateLimit: fmt.Sprintf("%d/s", perSec), MaxConcurrency: 50})
	ingestN(t, s, n, "app")
	start(t, s, nil)
	waitFor(t, "all deliveries", func() bool { return countStatus(t, s, "app", store.DeliverySucceeded) == n })
	hits := rc.all()
	first := hits[0].at
	for k, h := range hits {
		// Request k (0-based) needs k+1 tokens: the burst, then one per
		// 1/perSec. The bucket starts filling when the worker starts,
		// a little before the first request arrives; allow for that.
		min := time.Duration(float64(k+1-perSec)/perSec*float64(time.Second)) - 150*time.Millisecond
		if got := h.at.Sub(first); got < min {
			t.Fatalf("request %d came %v after the first, want at least %v", k+1, got, min)
		}
	}
}

func TestDeadDestinationDoesNotSlowOthers(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	healthy := newReceiver(t, nil)
	hanging := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { hold(r, time.Minute) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + ln.Addr().String()
	ln.Close()

	retry := store.RetryPolicy{MaxAttempts: 1000, Initial: store.Duration(5 * time.Millisecond), Max: store.Duration(50 * time.Millisecond)}
	addDest(t, s, &store.Destination{Name: "healthy", URL: healthy.srv.URL, MaxConcurrency: 4})
	addDest(t, s, &store.Destination{Name: "hanging", URL: hanging.srv.URL, MaxConcurrency: 2, Timeout: store.Duration(time.Minute), Retry: retry})
	addDest(t, s, &store.Destination{Name: "refused", URL: refusedURL, Retry: retry})
	const n = 60
	ingestN(t, s, n, "hanging", "refused", "healthy")
	start(t, s, &deliver.Options{GracePeriod: 10 * time.Millisecond})

	waitFor(t, "the healthy destination to get every event", func() bool {
		return countStatus(t, s, "healthy", store.DeliverySucceeded) == n
	})
	if got := countStatus(t, s, "hanging", store.DeliverySucceeded) + countStatus(t, s, "refused", store.DeliverySucceeded); got != 0 {
		t.Errorf("%d deliveries to broken destinations succeeded", got)
	}
	if got := hanging.maxSeen.Load(); got > 2 {
		t.Errorf("hanging destination had %d requests in flight, want at most 2", got)
	}
	waitFor(t, "the refused destination to record failures", func() bool {
		ds, err := s.DeliveryList(context.Background(), &store.DeliveryListParams{Destination: "refused", Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		return len(ds) == 1 && ds[0].LastError != ""
	})
}

func TestOrdered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		maxAttempts int
		failHead    int // how many times the head fails
		// want lists, by event index, the requests the receiver sees.
		want []int
	}{
		{"failing head holds the rest until it succeeds", 8, 2, []int{0, 0, 0, 1, 2, 3, 4}},
		{"dead head releases the rest", 2, 100, []int{0, 0, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			var headFails atomic.Int32
			var head atomic.Value // the first event's id
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if r.Header.Get("Webhook-Id") == head.Load() && headFails.Add(1) <= int32(tt.failHead) {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				hold(r, 2*time.Millisecond)
			})
			addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL, Ordered: true, MaxConcurrency: 10,
				Retry: store.RetryPolicy{MaxAttempts: tt.maxAttempts, Initial: store.Duration(10 * time.Millisecond), Max: store.Duration(20 * time.Millisecond)}})
			var events, ids []string
			for _, res := range ingestN(t, s, 5, "app") {
				events = append(events, res.EventID)
				ids = append(ids, res.DeliveryIDs[0])
			}
			head.Store(events[0])
			start(t, s, nil)
			waitFor(t, "every delivery to finish", func() bool {
				for _, id := range ids {
					if getDelivery(t, s, id).Status == store.DeliveryPending {
						return false
					}
				}
				return true
			})
			var got []int
			for _, h := range rc.all() {
				got = append(got, slices.Index(events, h.header.Get("Webhook-Id")))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("receiver saw events %v, want %v", got, tt.want)
			}
			if m := rc.maxSeen.Load(); m != 1 {
				t.Errorf("%d requests in flight at once, want 1", m)
			}
		})
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	t.Run("claimed then crashed", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "mailroom.db")
		s1 := openStore(t, path)
		rc := newReceiver(t, nil)
		addDest(t, s1, &store.Destination{Name: "app", URL: rc.srv.URL})
		ids := []string{}
		for _, res := range ingestN(t, s1, 3, "app") {
			ids = append(ids, res.DeliveryIDs[0])
		}
		// A dispatcher claims everything and dies before sending.
		leaseUntil := time.Now().Add(300 * time.Millisecond)
		claimed, err := s1.DeliveryClaimDue(context.Background(), &store.DeliveryClaimDueParams{
			Destination: "app", Now: time.Now(), LeaseUntil: leaseUntil, Limit: 10})
		if err != nil || len(claimed) != 3 {
			t.Fatalf("claim: %d, %v", len(claimed), err)
		}
		if err := s1.Close(); err != nil {
			t.Fatal(err)
		}

		s2 := openStore(t, path)
		start(t, s2, &deliver.Options{PollInterval: 20 * time.Millisecond})
		for _, id := range ids {
			d := waitStatus(t, s2, id, store.DeliverySucceeded)
			as := listAttempts(t, s2, id)
			if d.Attempts != 2 || len(as) != 1 || as[0].Number != 2 {
				t.Errorf("delivery %s: attempts %d, recorded %d", id, d.Attempts, len(as))
			}
		}
		for _, h := range rc.all() {
			if h.at.Before(leaseUntil) {
				t.Errorf("delivered at %v, before the lease expired at %v", h.at, leaseUntil)
			}
		}
	})
	t.Run("stopped mid-attempt", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "mailroom.db")
		s1 := openStore(t, path)
		var down atomic.Bool
		down.Store(true)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if down.Load() {
				hold(r, time.Minute)
			}
		})
		addDest(t, s1, &store.Destination{Name: "app", URL: rc.srv.URL})
		ids := []string{}
		for _, res := range ingestN(t, s1, 2, "app") {
			ids = append(ids, res.DeliveryIDs[0])
		}
		stop := start(t, s1, &deliver.Options{GracePeriod: 20 * time.Millisecond, Lease: 100 * time.Millisecond})
		waitFor(t, "both attempts in flight", func() bool { return rc.cur.Load() == 2 })
		if err := stop(); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if err := s1.Close(); err != nil {
			t.Fatal(err)
		}

		down.Store(false)
		s2 := openStore(t, path)
		start(t, s2, nil)
		for _, id := range ids {
			waitStatus(t, s2, id, store.DeliverySucceeded)
			as := listAttempts(t, s2, id)
			if len(as) != 2 || as[0].Success || !strings.Contains(as[0].Error, "canceled") || !as[1].Success {
				t.Errorf("delivery %s attempts: %+v", id, as)
			}
		}
	})
}

func TestGracefulStop(t *testing.T) {
	t.Parallel()
	t.Run("waits for the attempt in flight", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		entered := make(chan struct{}, 1)
		release := make(chan struct{})
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
			entered <- struct{}{}
			<-release
			io.WriteString(w, "done")
		})
		addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL})
		stop := start(t, s, nil)
		id := ingest(t, s, []byte(`{}`), "application/json", "app").DeliveryIDs[0]
		<-entered
		result := make(chan error, 1)
		go func() { result <- stop() }()
		// Run must not return while the attempt is in flight: it can
		// only if it abandoned the attempt, which the checks below catch.
		close(release)
		if err := <-result; err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		// Run has returned: the attempt must already be recorded.
		d := getDelivery(t, s, id)
		as := listAttempts(t, s, id)
		if d.Status != store.DeliverySucceeded || len(as) != 1 || !as[0].Success || string(as[0].ResponseBody) != "done" {
			t.Errorf("after stop: delivery %s, attempts %+v", d.Status, as)
		}
	})
	t.Run("cancels after the grace period", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { hold(r, time.Minute) })
		addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL})
		outcomes := make(chan string, 1)
		stop := start(t, s, &deliver.Options{GracePeriod: 30 * time.Millisecond,
			OnAttempt: func(a store.Attempt, outcome string) { outcomes <- outcome }})
		id := ingest(t, s, []byte(`{}`), "application/json", "app").DeliveryIDs[0]
		waitFor(t, "the attempt in flight", func() bool { return rc.cur.Load() == 1 })
		if err := stop(); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		d := getDelivery(t, s, id)
		as := listAttempts(t, s, id)
		if d.Status != store.DeliveryPending || d.NextAttemptAt.After(time.Now()) || len(as) != 1 || !strings.Contains(as[0].Error, "canceled") {
			t.Errorf("after stop: delivery %+v, attempts %+v", d, as)
		}
		if got := <-outcomes; got != deliver.OutcomeCanceled {
			t.Errorf("outcome = %q, want %q", got, deliver.OutcomeCanceled)
		}
	})
}

// flakyStore fails claims while failing is set, and records when each
// claim was asked for.
type flakyStore struct {
	store.Store
	failing atomic.Bool
	mu      sync.Mutex
	claims  []time.Time
}

func (f *flakyStore) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.Delivery, error) {
	if f.failing.Load() {
		f.mu.Lock()
		f.claims = append(f.claims, time.Now())
		f.mu.Unlock()
		return nil, errors.New("disk on fire")
	}
	return f.Store.DeliveryClaimDue(ctx, p)
}

func (f *flakyStore) failedClaims() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.claims)
}

func TestStoreErrorsBackOff(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newReceiver(t, nil)
	addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL})
	fs := &flakyStore{Store: s}
	fs.failing.Store(true)
	id := ingest(t, s, []byte(`{}`), "application/json", "app").DeliveryIDs[0]
	start(t, fs, &deliver.Options{PollInterval: time.Millisecond})

	waitFor(t, "four failed claims", func() bool { return len(fs.failedClaims()) >= 4 })
	claims := fs.failedClaims()
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		if gap := claims[i+1].Sub(claims[i]); gap < want {
			t.Errorf("claim %d came %v after claim %d, want a backoff of at least %v", i+2, gap, i+1, want)
		}
	}
	fs.failing.Store(false)
	waitStatus(t, s, id, store.DeliverySucceeded)
}

// TestSlowReceiverStillRecorded: exchanges that take longer than the
// record timeout are still recorded: the timeout counts from the end of
// the exchange. (It counted from the claim: the record of an answer
// slower than 10 s could fail, and the delivery was sent again when its
// lease expired.)
func TestSlowReceiverStillRecorded(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { time.Sleep(600 * time.Millisecond) })
	addDest(t, s, &store.Destination{Name: "slow", URL: rc.srv.URL, Timeout: store.Duration(5 * time.Second)})
	const n = 8
	var ids []string
	for range n {
		ids = append(ids, ingest(t, s, []byte(`{}`), "application/json", "slow").DeliveryIDs[0])
	}
	d := deliver.New(s, &deliver.Options{Logger: testLogger(t), Lease: time.Minute})
	deliver.SetRecordTimeout(d, 200*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(5 * time.Second)
	for _, id := range ids {
		for getDelivery(t, s, id).Status != store.DeliverySucceeded {
			if time.Now().After(deadline) {
				t.Fatalf("delivery %+v not recorded succeeded; the receiver got %d requests", getDelivery(t, s, id), rc.count())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := rc.count(); got != n {
		t.Errorf("the receiver got %d requests, want %d", got, n)
	}
}

// BenchmarkDrain measures how fast one destination's backlog drains into
// a loopback receiver (synchronous=NORMAL; b.N deliveries), and the
// process's CPU per delivery while it drains (receiver included). The
// backlog is ingested by concurrent callers, as a server does, so that the
// setup is group-committed and quick.
func BenchmarkDrain(b *testing.B) {
	s := newStore(b)
	rc := newReceiver(b, nil)
	addDest(b, s, &store.Destination{Name: "sink", URL: rc.srv.URL, MaxConcurrency: 64})
	ingestConcurrently(b, s, b.N, func(i int) []byte { return fmt.Appendf(nil, `{"n":%d}`, i) }, "sink")
	b.ResetTimer()
	cpu := cpuTime(b)
	start(b, s, &deliver.Options{Logger: slog.New(slog.DiscardHandler)})
	waitFor(b, "the backlog to drain", func() bool {
		if rc.count() < b.N {
			return false
		}
		st, err := s.DeliveryStats(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		return len(st) == 0 || st[0].Pending == 0
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/delivery")
}

// ingestConcurrently ingests n requests (body(i) for the i-th) with one
// delivery to each of dests, from 32 concurrent callers.
func ingestConcurrently(b *testing.B, s store.Store, n int, body func(i int) []byte, dests ...string) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ingest(b, s, body(i), "application/json", dests...)
			}
		})
	}
	wg.Wait()
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
