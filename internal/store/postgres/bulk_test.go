package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/postgres"
)

// openBatching opens a store with one writer, so that concurrent writes
// queue behind each other and are written in shared batches (the bulk
// path's multi-row statements).
func openBatching(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, &postgres.Options{Writers: 1, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBulkIngestExact ingests keys three times each, keyless requests and
// an expired key's copies, all at once through one writer: every key
// makes exactly one event and its copies name it, no two keys share an
// event, keyless requests are never merged, and every request is stored.
func TestBulkIngestExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openBatching(t, newSchema(t))
	old := time.Now().Add(-time.Hour)
	expired, err := s.RequestIngest(ctx, &store.RequestIngestParams{
		Request:     &store.Request{Source: "src", ReceivedAt: old, Method: "POST", Path: "/e/src"},
		Event:       &store.Event{DedupKey: "expired"},
		DedupWindow: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	const keys, copies, keyless = 60, 3, 30
	type result struct {
		key string
		res *store.RequestIngestResult
	}
	results := make(chan result, keys*copies+keyless+copies)
	var wg sync.WaitGroup
	ingest := func(key string) {
		defer wg.Done()
		res, err := s.RequestIngest(ctx, &store.RequestIngestParams{
			Request:    &store.Request{Source: "src", Method: "POST", Path: "/e/src", Body: []byte(key), Headers: map[string][]string{"X": {key}}},
			Event:      &store.Event{DedupKey: key},
			Deliveries: []*store.Delivery{{Destination: "d", ConnectionID: "src->d"}},
		})
		if err != nil {
			t.Errorf("ingest %q: %v", key, err)
			return
		}
		results <- result{key, res}
	}
	for c := range copies {
		for k := range keys {
			wg.Add(1)
			go ingest(fmt.Sprintf("k%d", (k+c*7)%keys))
		}
		wg.Add(1)
		go ingest("expired")
	}
	for range keyless {
		wg.Add(1)
		go ingest("")
	}
	wg.Wait()
	close(results)
	events := map[string]string{} // event id -> key
	firsts := map[string]string{} // key -> its event
	var dups []*store.RequestIngestResult
	requests := 0
	for r := range results {
		requests++
		if r.res.Duplicate {
			dups = append(dups, r.res)
			if len(r.res.DeliveryIDs) != 0 {
				t.Errorf("duplicate of %q has deliveries %v", r.key, r.res.DeliveryIDs)
			}
			continue
		}
		if other, ok := events[r.res.EventID]; ok {
			t.Errorf("event %s made twice (%q and %q)", r.res.EventID, other, r.key)
		}
		events[r.res.EventID] = r.key
		if r.key == "" {
			continue
		}
		if e, ok := firsts[r.key]; ok {
			t.Errorf("key %q made two events: %s and %s", r.key, e, r.res.EventID)
		}
		firsts[r.key] = r.res.EventID
		if len(r.res.DeliveryIDs) != 1 {
			t.Errorf("event of %q has deliveries %v", r.key, r.res.DeliveryIDs)
		}
	}
	if len(firsts) != keys+1 || len(events) != keys+1+keyless {
		t.Fatalf("%d keys made events (want %d), %d events (want %d)", len(firsts), keys+1, len(events), keys+1+keyless)
	}
	if firsts["expired"] == expired.EventID {
		t.Error("an expired key was not taken over")
	}
	if len(dups) != (keys+1)*(copies-1) {
		t.Errorf("%d duplicates, want %d", len(dups), (keys+1)*(copies-1))
	}
	for _, d := range dups {
		req, err := s.RequestGetByID(ctx, d.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		key := string(req.Body)
		if req.Status != store.RequestDuplicate || req.EventID != firsts[key] || d.EventID != firsts[key] {
			t.Errorf("duplicate of %q: request %s %s, result %s, want %s", key, req.Status, req.EventID, d.EventID, firsts[key])
		}
		if got := req.Headers["X"]; len(got) != 1 || got[0] != key {
			t.Errorf("duplicate of %q stored headers %v", key, req.Headers)
		}
	}
	for ev, key := range events {
		e, err := s.EventGetByID(ctx, ev)
		if err != nil {
			t.Fatalf("event %s of %q: %v", ev, key, err)
		}
		if e.DedupKey != key || e.Status != store.EventRouted || e.Deliveries != 1 {
			t.Errorf("event %s = %+v, key %q", ev, e, key)
		}
	}
	ds, err := s.DeliveryList(ctx, &store.DeliveryListParams{Destination: "d", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != len(events) || requests != keys*copies+copies+keyless {
		t.Errorf("%d deliveries for %d events, %d requests", len(ds), len(events), requests)
	}
}

// TestBulkAttemptsFenced records attempts of many claimed deliveries at
// once through one writer, every other one with a stale fencing token:
// exactly those are lost and left pending, the others move.
func TestBulkAttemptsFenced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openBatching(t, newSchema(t))
	const n = 40
	for i := range n {
		_, err := s.RequestIngest(ctx, &store.RequestIngestParams{
			Request:    &store.Request{Source: "src", Method: "POST", Path: "/e/src"},
			Event:      &store.Event{DedupKey: fmt.Sprint(i)},
			Deliveries: []*store.Delivery{{Destination: "d", ConnectionID: "src->d"}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	claimed, err := s.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Destination: "d", Now: now, LeaseUntil: now.Add(time.Minute), Limit: n})
	if err != nil || len(claimed) != n {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, d := range claimed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			number := d.Attempts
			if i%2 == 1 {
				number++ // stale or future: not the claim's token
			}
			errs[i] = s.AttemptRecord(ctx, &store.AttemptRecordParams{
				Attempt: &store.Attempt{DeliveryID: d.ID, EventID: d.EventID, Destination: "d", Number: number, StartedAt: now,
					DurationMS: 1.5, StatusCode: 204, Success: true, ResponseBody: []byte("ok")},
				Status: store.DeliverySucceeded, Now: now,
			})
		}()
	}
	wg.Wait()
	for i, d := range claimed {
		got, err := s.DeliveryGetByID(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			if !errors.Is(errs[i], store.ErrLeaseLost) || got.Status != store.DeliveryPending {
				t.Errorf("stale attempt on %s: err %v, status %s", d.ID, errs[i], got.Status)
			}
			continue
		}
		if errs[i] != nil || got.Status != store.DeliverySucceeded || got.LastStatus != 204 {
			t.Errorf("attempt on %s: err %v, delivery %+v", d.ID, errs[i], got)
		}
		atts, err := s.AttemptList(ctx, d.ID)
		if err != nil || len(atts) != 1 || atts[0].DurationMS != 1.5 || string(atts[0].ResponseBody) != "ok" {
			t.Errorf("attempts of %s: %+v, %v", d.ID, atts, err)
		}
	}
}
