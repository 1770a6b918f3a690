package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

func testPrune(t *testing.T, newStore NewStore) {
	t.Run("DeletesOldHistoryKeepsPendingWork", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		old := time.Now().Add(-48 * time.Hour)
		ingestAt := func(key string, at time.Time, window time.Duration, dests ...string) *store.RequestIngestResult {
			t.Helper()
			p := &store.RequestIngestParams{
				Request:     &store.Request{Source: "s", ReceivedAt: at, Method: "POST", Path: "/e/s", Body: []byte(key)},
				Event:       &store.Event{DedupKey: key},
				DedupWindow: window,
			}
			for _, d := range dests {
				p.Deliveries = append(p.Deliveries, &store.Delivery{Destination: d})
			}
			res, err := s.RequestIngest(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		// Done long ago: its request, event, delivery and attempts go.
		done := ingestAt("done", old, time.Hour, "d")
		ds, err := s.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Destination: "d", Now: old, LeaseUntil: old.Add(time.Minute), Limit: 10})
		if err != nil || len(ds) != 1 {
			t.Fatalf("claim: %v %v", ds, err)
		}
		a := &store.Attempt{DeliveryID: ds[0].ID, EventID: done.EventID, Destination: "d", Number: ds[0].Attempts, StartedAt: old, StatusCode: 200, Success: true}
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: a, Status: store.DeliverySucceeded, Now: old}); err != nil {
			t.Fatal(err)
		}
		// A duplicate of it, and a rejected request, both old: they go.
		dup := ingestAt("done", old.Add(time.Minute), time.Hour)
		if !dup.Duplicate {
			t.Fatal("want a duplicate")
		}
		rejected, err := s.RequestInsert(ctx, &store.Request{Source: "s", ReceivedAt: old, Method: "POST", Path: "/e/s", Status: store.RequestRejected, HTTPStatus: 401})
		if err != nil {
			t.Fatal(err)
		}
		// Old but still pending: everything it needs stays.
		pending := ingestAt("pending", old, time.Hour, "e")
		// Ignored (no deliveries) and old: goes.
		ignored := ingestAt("ignored", old, time.Hour)
		// Recent: stays.
		recent := ingestAt("recent", time.Now(), time.Hour, "d")

		cutoff := time.Now().Add(-24 * time.Hour)
		var total store.PruneResult
		for i := 0; ; i++ {
			// Limit 1 makes it take several calls: each must leave a
			// consistent state.
			res, err := s.Prune(ctx, &store.PruneParams{Before: cutoff, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			total.Requests += res.Requests
			total.Events += res.Events
			total.Deliveries += res.Deliveries
			total.Attempts += res.Attempts
			total.Dedup += res.Dedup
			if res.Done {
				break
			}
			if i > 50 {
				t.Fatal("Prune never reports Done")
			}
		}
		want := store.PruneResult{Requests: 4, Events: 2, Deliveries: 1, Attempts: 1, Dedup: 3}
		total.Done = false
		if total != want {
			t.Errorf("pruned %+v, want %+v", total, want)
		}
		for _, id := range []string{done.RequestID, dup.RequestID, rejected, ignored.RequestID} {
			if _, err := s.RequestGetByID(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("request %s: %v, want pruned", id, err)
			}
		}
		for _, id := range []string{done.EventID, ignored.EventID} {
			if _, err := s.EventGetByID(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("event %s: %v, want pruned", id, err)
			}
		}
		if _, err := s.DeliveryGetByID(ctx, done.DeliveryIDs[0]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("finished delivery: %v, want pruned", err)
		}
		if as, err := s.AttemptList(ctx, done.DeliveryIDs[0]); err != nil || len(as) != 0 {
			t.Errorf("attempts of the finished delivery: %d %v", len(as), err)
		}
		for _, res := range []*store.RequestIngestResult{pending, recent} {
			if _, err := s.RequestGetByID(ctx, res.RequestID); err != nil {
				t.Errorf("request %s: %v", res.RequestID, err)
			}
			if _, err := s.EventGetByID(ctx, res.EventID); err != nil {
				t.Errorf("event %s: %v", res.EventID, err)
			}
			if _, err := s.DeliveryGetByID(ctx, res.DeliveryIDs[0]); err != nil {
				t.Errorf("delivery %s: %v", res.DeliveryIDs[0], err)
			}
		}
		// The recent key's window has not ended: it still deduplicates.
		if again := ingestAt("recent", time.Now(), time.Hour, "d"); !again.Duplicate {
			t.Error("recent dedup key was pruned")
		}
	})
}
