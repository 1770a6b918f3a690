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
		n, err := s.DeliveryRetryMany(ctx, &store.DeliveryRetryManyParams{Destination: "d", Now: now})
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

func testDeliveryExtendLeases(t *testing.T, newStore NewStore) {
	t.Run("RenewsOnlyLeasesStillHeld", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		for i := range 3 {
			Ingest(ctx, t, s, "s", fmt.Sprint(i), "d")
		}
		now := time.Now()
		held := claim(ctx, t, s, "d", now, 3, false) // leased until now+1m
		if len(held) != 3 {
			t.Fatalf("claimed %d, want 3", len(held))
		}
		leases := make([]store.DeliveryLease, len(held))
		for i, d := range held {
			leases[i] = store.DeliveryLease{ID: d.ID, Attempt: d.Attempts, Until: d.NextAttemptAt}
		}
		// held[0] is recorded (retry in an hour): no longer a lease.
		a := &store.Attempt{DeliveryID: held[0].ID, Destination: "d", Number: held[0].Attempts, StartedAt: now, StatusCode: 500}
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: a, Status: store.DeliveryPending, NextAttemptAt: now.Add(time.Hour), Now: now}); err != nil {
			t.Fatal(err)
		}
		// held[2] was recorded due at once and another caller claimed it
		// again: its old lease is gone.
		later := now
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: &store.Attempt{DeliveryID: held[2].ID, Destination: "d",
			Number: held[2].Attempts, StartedAt: now, StatusCode: 500}, Status: store.DeliveryPending, NextAttemptAt: later, Now: now}); err != nil {
			t.Fatal(err)
		}
		if again := claim(ctx, t, s, "d", later, 10, false); len(again) != 1 || again[0].ID != held[2].ID {
			// held[1] is still under its first lease; held[2] is due.
			t.Fatalf("claim after lapse = %v, want %s", again, held[2].ID)
		}
		n, err := s.DeliveryExtendLeases(ctx, &store.DeliveryExtendLeasesParams{Leases: leases, Until: now.Add(45 * time.Minute), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("renewed %d leases, want 1 (only %s is still held)", n, held[1].ID)
		}
		// The renewed lease keeps held[1] from being claimed past its old expiry.
		for _, d := range claim(ctx, t, s, "d", now.Add(30*time.Minute), 10, false) {
			if d.ID == held[1].ID {
				t.Errorf("claimed %s under its renewed lease", d.ID)
			}
		}
		// The recorded retry of held[0] was not moved by the renewal.
		d0, err := s.DeliveryGetByID(ctx, held[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := now.Add(time.Hour).Truncate(time.Microsecond); !d0.NextAttemptAt.Equal(want) {
			t.Errorf("recorded retry moved to %v, want %v", d0.NextAttemptAt, want)
		}
		if n, err := s.DeliveryExtendLeases(ctx, &store.DeliveryExtendLeasesParams{Until: now, Now: now}); err != nil || n != 0 {
			t.Errorf("empty renewal = %d, %v", n, err)
		}
	})
}

func testDeliveryReleaseLeases(t *testing.T, newStore NewStore) {
	t.Run("GivesBackOnlyLeasesStillHeld", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		for i := range 4 {
			Ingest(ctx, t, s, "s", fmt.Sprint(i), "d")
		}
		now := time.Now()
		held := claim(ctx, t, s, "d", now, 4, false) // leased until now+1m, attempts 1
		if len(held) != 4 {
			t.Fatalf("claimed %d, want 4", len(held))
		}
		leases := make([]store.DeliveryLease, len(held))
		for i, d := range held {
			leases[i] = store.DeliveryLease{ID: d.ID, Attempt: d.Attempts, Until: d.NextAttemptAt}
		}
		// held[0] is recorded (retry in an hour): no longer a lease.
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: &store.Attempt{DeliveryID: held[0].ID, Destination: "d",
			Number: held[0].Attempts, StartedAt: now, StatusCode: 500}, Status: store.DeliveryPending, NextAttemptAt: now.Add(time.Hour), Now: now}); err != nil {
			t.Fatal(err)
		}
		// held[1]'s lease lapsed and another caller claimed it again.
		lapsed := now.Add(2 * time.Minute)
		again := claim(ctx, t, s, "d", lapsed, 10, false)
		if len(again) != 3 {
			t.Fatalf("claim after the leases lapsed = %d, want 3", len(again))
		}
		// Of those three, the other caller renews held[2] and held[3]
		// under its own token, and hands the old leases back: only its own
		// (current) leases may be released.
		var mine []store.DeliveryLease
		for _, d := range again {
			if d.ID != held[1].ID {
				mine = append(mine, store.DeliveryLease{ID: d.ID, Attempt: d.Attempts, Until: d.NextAttemptAt})
			}
		}
		sub, cancel := context.WithCancel(ctx)
		defer cancel()
		notes := s.Subscribe(sub)
		n, err := s.DeliveryReleaseLeases(ctx, &store.DeliveryReleaseLeasesParams{Leases: leases, Now: lapsed})
		if err != nil || n != 0 {
			t.Fatalf("released stale leases = %d, %v; want 0", n, err)
		}
		n, err = s.DeliveryReleaseLeases(ctx, &store.DeliveryReleaseLeasesParams{Leases: mine, Now: lapsed})
		if err != nil || n != 2 {
			t.Fatalf("released current leases = %d, %v; want 2", n, err)
		}
		select {
		case note := <-notes:
			if note.Kind != store.NotifyDeliveryDue || note.Destination != "d" {
				t.Errorf("notification = %+v, want delivery due on d", note)
			}
		case <-time.After(10 * time.Second):
			t.Error("no notification for the released deliveries")
		}
		for _, l := range mine {
			d, err := s.DeliveryGetByID(ctx, l.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The claim made no attempt: its count is taken back, and the
			// delivery is due at once.
			if d.Status != store.DeliveryPending || d.Attempts != l.Attempt-1 || !d.NextAttemptAt.Equal(lapsed.Truncate(time.Microsecond)) {
				t.Errorf("released %s: status %s, attempts %d (claimed %d), due %v (want %v)", d.ID, d.Status, d.Attempts, l.Attempt, d.NextAttemptAt, lapsed)
			}
		}
		if d, err := s.DeliveryGetByID(ctx, held[1].ID); err != nil || d.Attempts != 2 || !d.NextAttemptAt.Equal(lapsed.Add(time.Minute).Truncate(time.Microsecond)) {
			t.Errorf("re-claimed %s moved by a stale release: %+v, %v", held[1].ID, d, err)
		}
		if d, err := s.DeliveryGetByID(ctx, held[0].ID); err != nil || d.Attempts != 1 || !d.NextAttemptAt.Equal(now.Add(time.Hour).Truncate(time.Microsecond)) {
			t.Errorf("recorded %s moved by a stale release: %+v, %v", held[0].ID, d, err)
		}
		// Released, they are claimable again, under the number the
		// released claim had (it was never used).
		got := claim(ctx, t, s, "d", lapsed, 10, false)
		if len(got) != 2 {
			t.Fatalf("claimable after the release = %d, want 2", len(got))
		}
		for _, d := range got {
			if d.Attempts != 2 {
				t.Errorf("reclaimed %s with attempts %d, want 2", d.ID, d.Attempts)
			}
		}
		if n, err := s.DeliveryReleaseLeases(ctx, &store.DeliveryReleaseLeasesParams{Now: now}); err != nil || n != 0 {
			t.Errorf("empty release = %d, %v", n, err)
		}
	})
}

func testDeliveryInsertFinished(t *testing.T, newStore NewStore) {
	t.Run("RecordsDeliveryAttemptAndEventAtOnce", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		res := Ingest(ctx, t, s, "s", "k")
		now := time.Now()
		for _, tt := range []struct {
			status  string
			code    int
			success bool
		}{{store.DeliverySucceeded, 202, true}, {store.DeliveryDead, 500, false}} {
			p := &store.DeliveryInsertFinishedParams{
				Delivery: &store.Delivery{EventID: res.EventID, RequestID: res.RequestID, Source: "s", Destination: "listen:t1", ConnectionID: "listen"},
				Attempt:  &store.Attempt{StartedAt: now, DurationMS: 3.5, StatusCode: tt.code, ResponseBody: []byte("answer"), Success: tt.success},
				Status:   tt.status, Now: now,
			}
			if err := s.DeliveryInsertFinished(ctx, p); err != nil {
				t.Fatal(err)
			}
			d, err := s.DeliveryGetByID(ctx, p.Delivery.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != tt.status || d.Attempts != 1 || d.LastStatus != tt.code || d.EventID != res.EventID || d.Destination != "listen:t1" {
				t.Errorf("delivery = %+v, want %s with one attempt answering %d", d, tt.status, tt.code)
			}
			as, err := s.AttemptList(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(as) != 1 || as[0].ID != p.Attempt.ID || as[0].Number != 1 || as[0].StatusCode != tt.code || as[0].Success != tt.success || string(as[0].ResponseBody) != "answer" {
				t.Errorf("attempts = %+v", as)
			}
		}
		ev, err := s.EventGetByID(ctx, res.EventID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Status != store.EventRouted || ev.Deliveries != 2 {
			t.Errorf("event = %+v, want routed with 2 deliveries", ev)
		}
		if got := claim(ctx, t, s, "listen:t1", now.Add(time.Hour), 10, false); len(got) != 0 {
			t.Errorf("finished deliveries were claimed: %+v", got)
		}
	})
	t.Run("RefusesAStatusThatIsNotFinal", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		res := Ingest(ctx, t, s, "s", "k")
		err := s.DeliveryInsertFinished(ctx, &store.DeliveryInsertFinishedParams{
			Delivery: &store.Delivery{EventID: res.EventID, RequestID: res.RequestID, Source: "s", Destination: "listen:t1"},
			Attempt:  &store.Attempt{StartedAt: time.Now()}, Status: store.DeliveryPending,
		})
		if err == nil {
			t.Error("a pending finished delivery was accepted")
		}
		if ds, _ := s.DeliveryList(ctx, &store.DeliveryListParams{EventID: res.EventID}); len(ds) != 0 {
			t.Errorf("deliveries = %+v, want none", ds)
		}
	})
}
