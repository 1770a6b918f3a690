package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

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
