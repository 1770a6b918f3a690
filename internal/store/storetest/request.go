package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

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
		ds, err := s.DeliveryList(ctx, &store.DeliveryListParams{Destination: "a"})
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
		ds, err := s.DeliveryList(ctx, &store.DeliveryListParams{Limit: 1000})
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
	t.Run("DedupErrorKeptWithTheEvent", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		res, err := s.RequestIngest(ctx, &store.RequestIngestParams{
			Request: &store.Request{Source: "s", Method: "POST", Path: "/e/s", Body: []byte("id=a")},
			Event:   &store.Event{DedupError: "no such key: id"},
		})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := s.EventGetByID(ctx, res.EventID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.DedupError != "no such key: id" || ev.DedupKey != "" {
			t.Errorf("EventGetByID: dedup_key %q, dedup_error %q", ev.DedupKey, ev.DedupError)
		}
		evs, err := s.EventList(ctx, &store.EventListParams{Source: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].DedupError != "no such key: id" {
			t.Errorf("EventList: %+v", evs)
		}
	})
	t.Run("RejectedRequestRecorded", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		const sum = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
		id, err := s.RequestInsert(ctx, &store.Request{Source: "s", Method: "POST", Path: "/e/s", Body: []byte("x"),
			BodySize: 10 << 20, BodySHA256: sum, Status: store.RequestRejected, Reason: "signature mismatch", HTTPStatus: 401})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.RequestGetByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != store.RequestRejected || r.Reason != "signature mismatch" || r.HTTPStatus != 401 || string(r.Body) != "x" ||
			r.BodySize != 10<<20 || r.BodySHA256 != sum {
			t.Errorf("request = %+v", r)
		}
		if _, err := s.RequestGetByID(ctx, "req_missing"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing: err = %v, want ErrNotFound", err)
		}
	})
}
