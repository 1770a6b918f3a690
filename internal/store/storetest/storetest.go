// Package storetest is the conformance suite that every [store.Store]
// driver must pass. Drivers call [Run] from their tests with a constructor
// that returns a fresh, empty store for each subtest.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// NewStore returns a fresh, empty store; the constructor registers its own
// cleanup with t.
type NewStore func(t testing.TB) store.Store

// Run runs the whole suite against the driver that newStore builds.
func Run(t *testing.T, newStore NewStore) {
	t.Run("RequestIngest", func(t *testing.T) { testRequestIngest(t, newStore) })
	t.Run("Lists", func(t *testing.T) { testLists(t, newStore) })
	t.Run("DeliveryClaimDue", func(t *testing.T) { testDeliveryClaimDue(t, newStore) })
	t.Run("AttemptRecord", func(t *testing.T) { testAttemptRecord(t, newStore) })
	t.Run("DeliveryRetry", func(t *testing.T) { testDeliveryRetry(t, newStore) })
	t.Run("Catalog", func(t *testing.T) { testCatalog(t, newStore) })
	t.Run("Subscribe", func(t *testing.T) { testSubscribe(t, newStore) })
	t.Run("Tasks", func(t *testing.T) { testTasks(t, newStore) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, newStore) })
}

// Ingest is a test helper that ingests one request for source with the
// given dedup key and one delivery per destination, failing t on error.
func Ingest(ctx context.Context, t testing.TB, s store.Store, source, key string, dests ...string) *store.RequestIngestResult {
	t.Helper()
	p := &store.RequestIngestParams{
		Request: &store.Request{
			Source: source, ReceivedAt: time.Now(), Method: "POST", Path: "/e/" + source,
			Headers: map[string][]string{"Content-Type": {"application/json"}},
			Body:    []byte(fmt.Sprintf(`{"id":%q}`, key)),
		},
		Event: &store.Event{Type: "test.event", DedupKey: key},
	}
	for _, d := range dests {
		p.Deliveries = append(p.Deliveries, &store.Delivery{Destination: d, ConnectionID: store.ConnectionID(source, d)})
	}
	res, err := s.RequestIngest(ctx, p)
	if err != nil {
		t.Fatalf("RequestIngest: %v", err)
	}
	return res
}

func testRequestIngest(t *testing.T, newStore NewStore) {
	t.Run("PersistsRequestEventDeliveries", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		res := Ingest(ctx, t, s, "stripe", "evt_1", "a", "b")
		if res.Duplicate || res.EventID == "" || res.RequestID == "" || len(res.DeliveryIDs) != 2 {
			t.Fatalf("unexpected result %+v", res)
		}
		req, err := s.RequestGetByID(ctx, res.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(req.Body), `{"id":"evt_1"}`; got != want {
			t.Errorf("body = %q, want %q", got, want)
		}
		if req.Status != store.RequestAccepted || req.EventID != res.EventID || req.Headers["Content-Type"][0] != "application/json" {
			t.Errorf("request = %+v", req)
		}
		ev, err := s.EventGetByID(ctx, res.EventID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Status != store.EventRouted || ev.Deliveries != 2 || ev.Type != "test.event" || ev.RequestID != res.RequestID {
			t.Errorf("event = %+v", ev)
		}
		for _, id := range res.DeliveryIDs {
			d, err := s.DeliveryGetByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != store.DeliveryPending || d.EventID != res.EventID || d.RequestID != res.RequestID || d.Attempts != 0 {
				t.Errorf("delivery = %+v", d)
			}
		}
	})
	t.Run("NoDeliveriesIsIgnored", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		res := Ingest(ctx, t, s, "stripe", "k")
		ev, err := s.EventGetByID(ctx, res.EventID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Status != store.EventIgnored {
			t.Errorf("status = %s, want ignored", ev.Status)
		}
	})
	t.Run("DuplicateRecordedWithoutDeliveries", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		first := Ingest(ctx, t, s, "stripe", "evt_1", "a")
		dup := Ingest(ctx, t, s, "stripe", "evt_1", "a")
		if !dup.Duplicate || dup.EventID != first.EventID || len(dup.DeliveryIDs) != 0 {
			t.Fatalf("dup = %+v, first = %+v", dup, first)
		}
		req, err := s.RequestGetByID(ctx, dup.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		if req.Status != store.RequestDuplicate || req.EventID != first.EventID {
			t.Errorf("duplicate request = %+v", req)
		}
		other := Ingest(ctx, t, s, "github", "evt_1", "a")
		if other.Duplicate {
			t.Error("same key on another source must not be a duplicate")
		}
		ds, err := s.DeliveryList(ctx, &store.ListParams{Destination: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 2 {
			t.Errorf("deliveries = %d, want 2", len(ds))
		}
	})
	t.Run("DuplicateAfterWindowIsNew", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		mk := func(at time.Time) *store.RequestIngestResult {
			res, err := s.RequestIngest(ctx, &store.RequestIngestParams{
				Request:     &store.Request{Source: "s", ReceivedAt: at, Method: "POST", Path: "/e/s"},
				Event:       &store.Event{DedupKey: "k"},
				DedupWindow: time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		t0 := time.Now().Add(-time.Hour)
		a := mk(t0)
		b := mk(t0.Add(30 * time.Second))
		c := mk(t0.Add(2 * time.Minute))
		if a.Duplicate || !b.Duplicate || c.Duplicate || c.EventID == a.EventID {
			t.Errorf("a=%+v b=%+v c=%+v", a, b, c)
		}
	})
	t.Run("ConcurrentDuplicatesLeaveOne", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		const n = 50
		var wg sync.WaitGroup
		results := make([]*store.RequestIngestResult, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = Ingest(ctx, t, s, "stripe", "same", "a")
			}()
		}
		wg.Wait()
		firsts := 0
		for _, r := range results {
			if !r.Duplicate {
				firsts++
			}
		}
		if firsts != 1 {
			t.Errorf("non-duplicates = %d, want 1", firsts)
		}
		ds, err := s.DeliveryList(ctx, &store.ListParams{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 {
			t.Errorf("deliveries = %d, want 1", len(ds))
		}
	})
	t.Run("EmptyKeyIsNotDeduplicated", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		a := Ingest(ctx, t, s, "s", "")
		b := Ingest(ctx, t, s, "s", "")
		if a.Duplicate || b.Duplicate || a.EventID == b.EventID {
			t.Errorf("a=%+v b=%+v", a, b)
		}
	})
	t.Run("RejectedRequestRecorded", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		id, err := s.RequestInsert(ctx, &store.Request{Source: "s", Method: "POST", Path: "/e/s", Body: []byte("x"),
			Status: store.RequestRejected, Reason: "signature mismatch", HTTPStatus: 401})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.RequestGetByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != store.RequestRejected || r.Reason != "signature mismatch" || r.HTTPStatus != 401 || string(r.Body) != "x" {
			t.Errorf("request = %+v", r)
		}
		if _, err := s.RequestGetByID(ctx, "req_missing"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing: err = %v, want ErrNotFound", err)
		}
	})
}

func testLists(t *testing.T, newStore NewStore) {
	t.Run("NewestFirstWithCursor", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		var ids []string
		for i := range 7 {
			ids = append(ids, Ingest(ctx, t, s, "s", fmt.Sprint(i), "d").EventID)
		}
		var got []string
		cursor := ""
		for {
			page, err := s.EventList(ctx, &store.ListParams{Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				got = append(got, e.ID)
			}
			if len(page) < 3 {
				break
			}
			cursor = page[len(page)-1].ID
		}
		if len(got) != 7 {
			t.Fatalf("got %d events, want 7", len(got))
		}
		for i := range got {
			if got[i] != ids[len(ids)-1-i] {
				t.Fatalf("order: got %v, want reverse of %v", got, ids)
			}
		}
	})
	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		Ingest(ctx, t, s, "a", "1", "x")
		Ingest(ctx, t, s, "b", "2", "y")
		mid := time.Now()
		Ingest(ctx, t, s, "a", "3", "y")
		for _, tt := range []struct {
			name string
			p    store.ListParams
			want int
		}{
			{"source", store.ListParams{Source: "a"}, 2},
			{"destination", store.ListParams{Destination: "y"}, 2},
			{"source and destination", store.ListParams{Source: "a", Destination: "y"}, 1},
			{"status", store.ListParams{Status: store.DeliveryPending}, 3},
			{"status none", store.ListParams{Status: store.DeliveryDead}, 0},
			{"since", store.ListParams{Since: mid}, 1},
			{"until", store.ListParams{Until: mid}, 2},
		} {
			t.Run(tt.name, func(t *testing.T) {
				ds, err := s.DeliveryList(ctx, &tt.p)
				if err != nil {
					t.Fatal(err)
				}
				if len(ds) != tt.want {
					t.Errorf("got %d, want %d", len(ds), tt.want)
				}
			})
		}
		evs, err := s.EventList(ctx, &store.ListParams{Source: "b"})
		if err != nil || len(evs) != 1 {
			t.Errorf("events by source: %d, %v", len(evs), err)
		}
		reqs, err := s.RequestList(ctx, &store.ListParams{Source: "a"})
		if err != nil || len(reqs) != 2 {
			t.Errorf("requests by source: %d, %v", len(reqs), err)
		}
	})
	t.Run("QueryMatchesBodySubstring", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		// Ingest's bodies are {"id":<key>}, so each key is the text to find.
		Ingest(ctx, t, s, "a", "Payment plink_42 50% off", "x")
		Ingest(ctx, t, s, "a", "payment plink_7 50 off", "x")
		Ingest(ctx, t, s, "a", `back\slash`, "x")
		if _, err := s.RequestInsert(ctx, &store.Request{
			Source: "a", ReceivedAt: time.Now(), Method: "POST", Path: "/e/a",
			Body: []byte(`{"id":"rejected plink_42"}`), Status: store.RequestRejected, Reason: "signature mismatch", HTTPStatus: 401,
		}); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name                       string
			query                      string
			requests, events, delivers int
		}{
			{"substring", "plink_42", 2, 1, 1},
			{"ascii case folded", "PAYMENT", 2, 2, 2},
			{"percent is literal", "50%", 1, 1, 1},
			{"underscore is literal", "k_7", 1, 1, 1},
			{"underscore does not match any char", "plink_4_", 0, 0, 0},
			{"backslash is literal", `back\\slash`, 1, 1, 1},
			{"no match", "nothing like it", 0, 0, 0},
		} {
			t.Run(tt.name, func(t *testing.T) {
				p := &store.ListParams{Query: tt.query}
				reqs, err := s.RequestList(ctx, p)
				if err != nil || len(reqs) != tt.requests {
					t.Errorf("requests: got %d (%v), want %d", len(reqs), err, tt.requests)
				}
				evs, err := s.EventList(ctx, p)
				if err != nil || len(evs) != tt.events {
					t.Errorf("events: got %d (%v), want %d", len(evs), err, tt.events)
				}
				ds, err := s.DeliveryList(ctx, p)
				if err != nil || len(ds) != tt.delivers {
					t.Errorf("deliveries: got %d (%v), want %d", len(ds), err, tt.delivers)
				}
			})
		}
	})
}

func claim(ctx context.Context, t testing.TB, s store.Store, dest string, now time.Time, limit int, ordered bool) []*store.Delivery {
	t.Helper()
	ds, err := s.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{
		Destination: dest, Now: now, LeaseUntil: now.Add(time.Minute), Limit: limit, Ordered: ordered,
	})
	if err != nil {
		t.Fatalf("DeliveryClaimDue: %v", err)
	}
	return ds
}

func testDeliveryClaimDue(t *testing.T, newStore NewStore) {
	t.Run("LeasesAndFences", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		for i := range 5 {
			Ingest(ctx, t, s, "s", fmt.Sprint(i), "d", "other")
		}
		now := time.Now()
		got := claim(ctx, t, s, "d", now, 3, false)
		if len(got) != 3 {
			t.Fatalf("claimed %d, want 3", len(got))
		}
		for _, d := range got {
			if d.Attempts != 1 || d.Destination != "d" {
				t.Errorf("claimed %+v", d)
			}
		}
		rest := claim(ctx, t, s, "d", now, 10, false)
		if len(rest) != 2 {
			t.Fatalf("second claim %d, want 2 (the first 3 are leased)", len(rest))
		}
		if n := len(claim(ctx, t, s, "d", now, 10, false)); n != 0 {
			t.Fatalf("third claim %d, want 0", n)
		}
		// After the lease expires they are due again, with a new token.
		again := claim(ctx, t, s, "d", now.Add(2*time.Minute), 10, false)
		if len(again) != 5 {
			t.Fatalf("after lease expiry claimed %d, want 5", len(again))
		}
		for _, d := range again {
			if d.Attempts != 2 {
				t.Errorf("attempts = %d, want 2", d.Attempts)
			}
		}
	})
	t.Run("ConcurrentClaimsNeverOverlap", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		for i := range 100 {
			Ingest(ctx, t, s, "s", fmt.Sprint(i), "d")
		}
		now := time.Now()
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ds := claim(ctx, t, s, "d", now, 7, false)
					if len(ds) == 0 {
						return
					}
					mu.Lock()
					for _, d := range ds {
						seen[d.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != 100 {
			t.Errorf("claimed %d distinct, want 100", len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s claimed %d times", id, n)
			}
		}
	})
	t.Run("NotDueNotClaimed", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		res := Ingest(ctx, t, s, "s", "1")
		future := time.Now().Add(time.Hour)
		if err := s.DeliveryInsertMany(ctx, []*store.Delivery{{EventID: res.EventID, RequestID: res.RequestID, Source: "s",
			Destination: "d", NextAttemptAt: future}}); err != nil {
			t.Fatal(err)
		}
		if n := len(claim(ctx, t, s, "d", time.Now(), 10, false)); n != 0 {
			t.Errorf("claimed %d not-yet-due deliveries", n)
		}
		if n := len(claim(ctx, t, s, "d", future, 10, false)); n != 1 {
			t.Errorf("claimed %d due deliveries, want 1", n)
		}
		ev, err := s.EventGetByID(ctx, res.EventID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Status != store.EventRouted || ev.Deliveries != 1 {
			t.Errorf("event after insert = %+v", ev)
		}
	})
	t.Run("OrderedClaimsOnlyTheHead", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		var ids []string
		for i := range 3 {
			ids = append(ids, Ingest(ctx, t, s, "s", fmt.Sprint(i), "d").DeliveryIDs[0])
		}
		now := time.Now()
		head := claim(ctx, t, s, "d", now, 10, true)
		if len(head) != 1 || head[0].ID != ids[0] {
			t.Fatalf("ordered claim = %v, want head %s", head, ids[0])
		}
		if n := len(claim(ctx, t, s, "d", now, 10, true)); n != 0 {
			t.Fatalf("claimed %d while the head is leased", n)
		}
		// The head fails and waits: nothing behind it moves.
		a := &store.Attempt{DeliveryID: ids[0], Destination: "d", Number: 1, StartedAt: now, StatusCode: 500}
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: a, Status: store.DeliveryPending, NextAttemptAt: now.Add(time.Hour), Now: now}); err != nil {
			t.Fatal(err)
		}
		if n := len(claim(ctx, t, s, "d", now.Add(2*time.Minute), 10, true)); n != 0 {
			t.Fatalf("claimed %d behind a waiting head", n)
		}
		// The head succeeds: the next one is claimed.
		head = claim(ctx, t, s, "d", now.Add(time.Hour), 10, true)
		if len(head) != 1 || head[0].ID != ids[0] {
			t.Fatalf("head again = %v", head)
		}
		a = &store.Attempt{DeliveryID: ids[0], Destination: "d", Number: 2, StartedAt: now, StatusCode: 200, Success: true}
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: a, Status: store.DeliverySucceeded, Now: now}); err != nil {
			t.Fatal(err)
		}
		next := claim(ctx, t, s, "d", now.Add(time.Hour), 10, true)
		if len(next) != 1 || next[0].ID != ids[1] {
			t.Fatalf("next = %v, want %s", next, ids[1])
		}
	})
}

func testAttemptRecord(t *testing.T, newStore NewStore) {
	t.Run("StoresAttemptAndMovesDelivery", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		res := Ingest(ctx, t, s, "s", "1", "d")
		now := time.Now()
		d := claim(ctx, t, s, "d", now, 1, false)[0]
		a := &store.Attempt{DeliveryID: d.ID, EventID: d.EventID, Destination: "d", Number: d.Attempts, StartedAt: now,
			DurationMS: 12.5, StatusCode: 200, Success: true, ResponseBody: []byte("ok"),
			ResponseHeaders: map[string][]string{"X-A": {"1"}}}
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: a, Status: store.DeliverySucceeded, Now: now}); err != nil {
			t.Fatal(err)
		}
		got, err := s.DeliveryGetByID(ctx, res.DeliveryIDs[0])
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.DeliverySucceeded || got.LastStatus != 200 {
			t.Errorf("delivery = %+v", got)
		}
		as, err := s.AttemptList(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 1 || as[0].StatusCode != 200 || string(as[0].ResponseBody) != "ok" || !as[0].Success ||
			as[0].ResponseHeaders["X-A"][0] != "1" || as[0].DurationMS != 12.5 || as[0].ID == "" {
			t.Errorf("attempts = %+v", as)
		}
		if d := as[0].StartedAt.Sub(now); d > time.Millisecond || d < -time.Millisecond {
			t.Errorf("started_at drifted by %v", d)
		}
	})
	t.Run("StaleAttemptLosesLease", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		Ingest(ctx, t, s, "s", "1", "d")
		now := time.Now()
		first := claim(ctx, t, s, "d", now, 1, false)[0]
		second := claim(ctx, t, s, "d", now.Add(2*time.Minute), 1, false)[0]
		stale := &store.Attempt{DeliveryID: first.ID, Destination: "d", Number: first.Attempts, StartedAt: now, StatusCode: 500}
		err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: stale, Status: store.DeliveryDead, Now: now})
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("stale record err = %v, want ErrLeaseLost", err)
		}
		got, _ := s.DeliveryGetByID(ctx, first.ID)
		if got.Status != store.DeliveryPending {
			t.Errorf("stale attempt moved delivery to %s", got.Status)
		}
		fresh := &store.Attempt{DeliveryID: second.ID, Destination: "d", Number: second.Attempts, StartedAt: now, StatusCode: 200, Success: true}
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: fresh, Status: store.DeliverySucceeded, Now: now}); err != nil {
			t.Fatal(err)
		}
		as, _ := s.AttemptList(ctx, first.ID)
		if len(as) != 2 {
			t.Errorf("attempts = %d, want both recorded", len(as))
		}
	})
	t.Run("RetryScheduledAndStats", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		Ingest(ctx, t, s, "s", "1", "d")
		Ingest(ctx, t, s, "s", "2", "d")
		now := time.Now()
		ds := claim(ctx, t, s, "d", now, 2, false)
		later := now.Add(10 * time.Minute)
		rec := func(d *store.Delivery, status string, next time.Time) {
			a := &store.Attempt{DeliveryID: d.ID, Destination: "d", Number: d.Attempts, StartedAt: now, Error: "connection refused"}
			if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: a, Status: status, NextAttemptAt: next, Now: now}); err != nil {
				t.Fatal(err)
			}
		}
		rec(ds[0], store.DeliveryPending, later)
		rec(ds[1], store.DeliveryDead, time.Time{})
		got, _ := s.DeliveryGetByID(ctx, ds[0].ID)
		if got.LastError != "connection refused" || !got.NextAttemptAt.Equal(later.Truncate(time.Microsecond)) {
			t.Errorf("retrying delivery = %+v, want next %v", got, later)
		}
		stats, err := s.DeliveryStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(stats) != 1 || stats[0].Pending != 1 || stats[0].Dead != 1 || stats[0].OldestPending.IsZero() {
			t.Errorf("stats = %+v", stats)
		}
	})
}

func testDeliveryRetry(t *testing.T, newStore NewStore) {
	t.Run("DeadBecomesDue", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		Ingest(ctx, t, s, "s", "1", "d")
		now := time.Now()
		d := claim(ctx, t, s, "d", now, 1, false)[0]
		a := &store.Attempt{DeliveryID: d.ID, Destination: "d", Number: d.Attempts, StartedAt: now, StatusCode: 500}
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: a, Status: store.DeliveryDead, Now: now}); err != nil {
			t.Fatal(err)
		}
		if n := len(claim(ctx, t, s, "d", now.Add(time.Hour), 1, false)); n != 0 {
			t.Fatal("dead delivery was claimed")
		}
		got, err := s.DeliveryRetry(ctx, d.ID, now)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.DeliveryPending {
			t.Errorf("status = %s", got.Status)
		}
		again := claim(ctx, t, s, "d", now, 1, false)
		if len(again) != 1 || again[0].Attempts != 2 {
			t.Errorf("claim after retry = %+v", again)
		}
		if _, err := s.DeliveryRetry(ctx, "dlv_missing", now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("retry missing: %v", err)
		}
	})
	t.Run("RetryManyByFilter", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		for i := range 4 {
			Ingest(ctx, t, s, "s", fmt.Sprint(i), "d", "e")
		}
		now := time.Now()
		for _, dest := range []string{"d", "e"} {
			for _, d := range claim(ctx, t, s, dest, now, 10, false) {
				a := &store.Attempt{DeliveryID: d.ID, Destination: dest, Number: d.Attempts, StartedAt: now, StatusCode: 500}
				if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: a, Status: store.DeliveryDead, Now: now}); err != nil {
					t.Fatal(err)
				}
			}
		}
		n, err := s.DeliveryRetryMany(ctx, &store.ListParams{Destination: "d"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if n != 4 {
			t.Errorf("retried %d, want 4", n)
		}
		if got := len(claim(ctx, t, s, "d", now, 10, false)); got != 4 {
			t.Errorf("claimable on d = %d, want 4", got)
		}
		if got := len(claim(ctx, t, s, "e", now, 10, false)); got != 0 {
			t.Errorf("claimable on e = %d, want 0", got)
		}
	})
}

func testCatalog(t *testing.T, newStore NewStore) {
	t.Run("UpsertGetListDelete", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		src := &store.Source{Name: "stripe", Verify: store.VerifyConfig{Type: "stripe", Secret: "whsec_x", Tolerance: store.Duration(time.Minute)},
			Dedup: store.DedupConfig{Window: store.Duration(time.Hour)}}
		if err := s.SourceUpsert(ctx, src); err != nil {
			t.Fatal(err)
		}
		got, err := s.SourceGet(ctx, "stripe")
		if err != nil {
			t.Fatal(err)
		}
		if got.Verify.Secret != "whsec_x" || got.Verify.Tolerance.D() != time.Minute || got.Dedup.Window.D() != time.Hour || got.CreatedAt.IsZero() {
			t.Errorf("source = %+v", got)
		}
		dst := &store.Destination{Name: "billing", URL: "http://127.0.0.1:9/x", MaxConcurrency: 3, Retry: store.RetryPolicy{MaxAttempts: 4}}
		if err := s.DestinationUpsert(ctx, dst); err != nil {
			t.Fatal(err)
		}
		if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "billing", Filter: "true"}); err != nil {
			t.Fatal(err)
		}
		if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "nope", Destination: "billing"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("connection to unknown source: %v", err)
		}
		cs, err := s.ConnectionList(ctx)
		if err != nil || len(cs) != 1 || cs[0].ID != "stripe->billing" || cs[0].Filter != "true" {
			t.Fatalf("connections = %+v, %v", cs, err)
		}
		if err := s.DestinationSetPaused(ctx, "billing", true, "410 Gone"); err != nil {
			t.Fatal(err)
		}
		// An upsert (a config reload) keeps the paused state.
		if err := s.DestinationUpsert(ctx, dst); err != nil {
			t.Fatal(err)
		}
		d, err := s.DestinationGet(ctx, "billing")
		if err != nil {
			t.Fatal(err)
		}
		if !d.Paused || d.PauseReason != "410 Gone" || d.MaxConcurrency != 3 || d.Retry.MaxAttempts != 4 {
			t.Errorf("destination = %+v", d)
		}
		if err := s.DestinationSetPaused(ctx, "billing", false, ""); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.DestinationGet(ctx, "billing"); d.Paused {
			t.Error("still paused after resume")
		}
		if err := s.DestinationSetPaused(ctx, "nope", true, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("pause unknown: %v", err)
		}
		if err := s.SourceDelete(ctx, "stripe"); err != nil {
			t.Fatal(err)
		}
		if cs, _ := s.ConnectionList(ctx); len(cs) != 0 {
			t.Errorf("connections survive their source: %+v", cs)
		}
		if _, err := s.SourceGet(ctx, "stripe"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get deleted: %v", err)
		}
		if err := s.SourceDelete(ctx, "stripe"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete twice: %v", err)
		}
		ds, err := s.DestinationList(ctx)
		if err != nil || len(ds) != 1 {
			t.Errorf("destinations = %v, %v", ds, err)
		}
	})
}

func testSubscribe(t *testing.T, newStore NewStore) {
	t.Run("DeliveryDueAfterCommit", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := newStore(t)
		ch := s.Subscribe(ctx)
		Ingest(ctx, t, s, "s", "1", "d")
		deadline := time.After(10 * time.Second)
		for {
			select {
			case n := <-ch:
				if n.Kind == store.NotifyDeliveryDue && n.Destination == "d" {
					return
				}
			case <-deadline:
				t.Fatal("no delivery.due notification")
			}
		}
	})
	t.Run("PingAndClose", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(ctx); !errors.Is(err, store.ErrClosed) {
			t.Errorf("ping after close: %v", err)
		}
		_, err := s.RequestIngest(ctx, &store.RequestIngestParams{Request: &store.Request{Source: "s"}, Event: &store.Event{}})
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("ingest after close: %v", err)
		}
	})
}
