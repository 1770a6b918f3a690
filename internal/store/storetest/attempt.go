package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	t.Run("ManyInOneBatch", func(t *testing.T) {
		t.Parallel()
		testAttemptRecordMany(t, newStore)
	})
}

// testAttemptRecordMany records 101 attempts in one call, which the SQL
// store cuts into chunks of several sizes: every outcome (succeeded, a
// retry with its policy, dead), a response body and headers or none, a
// stale attempt of a delivery claimed again (its lease lost) beside the
// current one of the same delivery.
func testAttemptRecordMany(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	const n = 100
	for i := range n {
		Ingest(ctx, t, s, "s", fmt.Sprint(i), "d")
	}
	now := time.Now().Truncate(time.Microsecond)
	ds := claim(ctx, t, s, "d", now, n, false)
	if len(ds) != n {
		t.Fatalf("claimed %d, want %d", len(ds), n)
	}
	// The leases lapse and the first delivery is claimed again: its
	// first attempt is stale.
	stale := *ds[0]
	again := claim(ctx, t, s, "d", now.Add(2*time.Minute), 1, false)
	if len(again) != 1 || again[0].ID != stale.ID {
		t.Fatalf("claimed again %+v, want %s", again, stale.ID)
	}
	ds[0] = again[0]
	later := now.Add(time.Hour)
	applied := &store.RetryApplied{Policy: "destination d", Decision: "retry"}
	var ps []*store.AttemptRecordParams
	for i, d := range ds {
		a := &store.Attempt{DeliveryID: d.ID, EventID: d.EventID, Destination: "d", Number: d.Attempts,
			StartedAt: now.Add(time.Duration(i) * time.Millisecond), DurationMS: float64(i) + 0.5}
		p := &store.AttemptRecordParams{Attempt: a, Now: now}
		switch i % 3 {
		case 0:
			a.StatusCode, a.Success = 200+i%5, true
			a.ResponseBody = []byte(fmt.Sprintf("ok %d", i))
			a.ResponseHeaders = map[string][]string{"X-N": {fmt.Sprint(i)}}
			p.Status = store.DeliverySucceeded
		case 1:
			a.StatusCode, a.Error = 503, fmt.Sprintf("HTTP 503 #%d", i)
			p.Status, p.NextAttemptAt, p.Retry = store.DeliveryPending, later, applied
		case 2:
			a.Error = fmt.Sprintf("connection refused #%d", i)
			p.Status = store.DeliveryDead
		}
		ps = append(ps, p)
	}
	// The stale attempt goes in the middle of the batch.
	ps = slices.Insert(ps, n/2, &store.AttemptRecordParams{
		Attempt: &store.Attempt{DeliveryID: stale.ID, EventID: stale.EventID, Destination: "d", Number: stale.Attempts, StartedAt: now, StatusCode: 500},
		Status:  store.DeliveryDead, Now: now})
	errs := s.AttemptRecordMany(ctx, ps)
	if len(errs) != len(ps) {
		t.Fatalf("%d results for %d attempts", len(errs), len(ps))
	}
	for i, err := range errs {
		if i == n/2 {
			if !errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("stale attempt: err = %v, want ErrLeaseLost", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("attempt %d: %v", i, err)
		}
	}
	isStale := func(p *store.AttemptRecordParams) bool {
		return p.Attempt.DeliveryID == stale.ID && p.Attempt.Number == stale.Attempts
	}
	for _, p := range ps {
		a := p.Attempt
		if a.ID == "" {
			t.Errorf("attempt %d of %s has no id", a.Number, a.DeliveryID)
		}
		if isStale(p) {
			continue // its delivery is checked below
		}
		got, err := s.DeliveryGetByID(ctx, a.DeliveryID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != p.Status || got.LastStatus != a.StatusCode || got.LastError != a.Error ||
			!got.NextAttemptAt.Equal(p.NextAttemptAt) || (got.Retry != nil) != (p.Retry != nil) {
			t.Errorf("delivery %s = %+v, want status %s, next %v, from %+v", a.DeliveryID, got, p.Status, p.NextAttemptAt, a)
		}
		if p.Retry != nil && got.Retry.Policy != p.Retry.Policy {
			t.Errorf("delivery %s retry = %+v, want %+v", a.DeliveryID, got.Retry, p.Retry)
		}
		as, err := s.AttemptList(ctx, a.DeliveryID)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if a.DeliveryID == stale.ID {
			want = 2
		}
		if len(as) != want {
			t.Fatalf("delivery %s has %d attempts, want %d", a.DeliveryID, len(as), want)
		}
		last := as[len(as)-1]
		if last.ID != a.ID || last.StatusCode != a.StatusCode || last.Error != a.Error || last.Success != a.Success ||
			string(last.ResponseBody) != string(a.ResponseBody) || fmt.Sprint(last.ResponseHeaders) != fmt.Sprint(map[string][]string(a.ResponseHeaders)) ||
			last.DurationMS != a.DurationMS || !last.StartedAt.Equal(a.StartedAt) || last.Project != "default" {
			t.Errorf("attempt of %s = %+v, want %+v", a.DeliveryID, last, a)
		}
	}
	// The current attempt of the delivery claimed twice moved it; its
	// stale one did not.
	if got, _ := s.DeliveryGetByID(ctx, stale.ID); got.Attempts != stale.Attempts+1 || got.LastStatus == 500 {
		t.Errorf("delivery claimed again = %+v, want it moved by its second attempt only", got)
	}
	stats, err := s.DeliveryStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pending, dead := 0, 0
	for _, p := range ps {
		switch {
		case isStale(p):
		case p.Status == store.DeliveryPending:
			pending++
		case p.Status == store.DeliveryDead:
			dead++
		}
	}
	if len(stats) != 1 || stats[0].Pending != pending || stats[0].Dead != dead {
		t.Errorf("stats = %+v, want %d pending and %d dead", stats, pending, dead)
	}

}
