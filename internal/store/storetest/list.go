package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

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
			page, err := s.EventList(ctx, &store.EventListParams{Limit: 3, Cursor: cursor})
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
			p    store.DeliveryListParams
			want int
		}{
			{"source", store.DeliveryListParams{Source: "a"}, 2},
			{"destination", store.DeliveryListParams{Destination: "y"}, 2},
			{"source and destination", store.DeliveryListParams{Source: "a", Destination: "y"}, 1},
			{"status", store.DeliveryListParams{Status: store.DeliveryPending}, 3},
			{"status none", store.DeliveryListParams{Status: store.DeliveryDead}, 0},
			{"since", store.DeliveryListParams{Since: mid}, 1},
			{"until", store.DeliveryListParams{Until: mid}, 2},
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
		evs, err := s.EventList(ctx, &store.EventListParams{Source: "b"})
		if err != nil || len(evs) != 1 {
			t.Errorf("events by source: %d, %v", len(evs), err)
		}
		reqs, err := s.RequestList(ctx, &store.RequestListParams{Source: "a"})
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
				reqs, err := s.RequestList(ctx, &store.RequestListParams{Query: tt.query})
				if err != nil || len(reqs) != tt.requests {
					t.Errorf("requests: got %d (%v), want %d", len(reqs), err, tt.requests)
				}
				evs, err := s.EventList(ctx, &store.EventListParams{Query: tt.query})
				if err != nil || len(evs) != tt.events {
					t.Errorf("events: got %d (%v), want %d", len(evs), err, tt.events)
				}
				ds, err := s.DeliveryList(ctx, &store.DeliveryListParams{Query: tt.query})
				if err != nil || len(ds) != tt.delivers {
					t.Errorf("deliveries: got %d (%v), want %d", len(ds), err, tt.delivers)
				}
			})
		}
	})
	t.Run("TypeFiltersEveryList", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		ingest := func(key, typ string) *store.RequestIngestResult {
			res, err := s.RequestIngest(ctx, &store.RequestIngestParams{
				Request:    &store.Request{Source: "a", Method: "POST", Path: "/e/a", Body: []byte(key)},
				Event:      &store.Event{Type: typ, DedupKey: key},
				Deliveries: []*store.Delivery{{Destination: "x", ConnectionID: "a->x"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		paid := ingest("1", "invoice.paid")
		ingest("2", "invoice.created")
		dup := ingest("1", "invoice.paid") // a duplicate request of the paid event
		if !dup.Duplicate {
			t.Fatal("second ingest of key 1 is not a duplicate")
		}
		if _, err := s.RequestInsert(ctx, &store.Request{Source: "a", Method: "POST", Status: store.RequestRejected, HTTPStatus: 401}); err != nil {
			t.Fatal(err)
		}
		reqs, err := s.RequestList(ctx, &store.RequestListParams{Type: "invoice.paid"})
		if err != nil {
			t.Fatal(err)
		}
		if len(reqs) != 2 || reqs[0].ID != dup.RequestID || reqs[1].ID != paid.RequestID {
			t.Errorf("requests of type invoice.paid: %d, want the paid request and its duplicate", len(reqs))
		}
		evs, err := s.EventList(ctx, &store.EventListParams{Type: "invoice.paid"})
		if err != nil || len(evs) != 1 || evs[0].ID != paid.EventID {
			t.Errorf("events of type invoice.paid: %d (%v), want 1", len(evs), err)
		}
		ds, err := s.DeliveryList(ctx, &store.DeliveryListParams{Type: "invoice.paid"})
		if err != nil || len(ds) != 1 || ds[0].EventID != paid.EventID {
			t.Errorf("deliveries of type invoice.paid: %d (%v), want 1", len(ds), err)
		}
		for _, typ := range []string{"nothing.like.it"} {
			if reqs, _ := s.RequestList(ctx, &store.RequestListParams{Type: typ}); len(reqs) != 0 {
				t.Errorf("requests of type %s: %d, want 0", typ, len(reqs))
			}
			if ds, _ := s.DeliveryList(ctx, &store.DeliveryListParams{Type: typ}); len(ds) != 0 {
				t.Errorf("deliveries of type %s: %d, want 0", typ, len(ds))
			}
		}
		n, err := s.DeliveryRetryMany(ctx, &store.DeliveryRetryManyParams{Type: "invoice.created", Status: store.DeliveryPending})
		if err != nil || n != 1 {
			t.Errorf("retry of type invoice.created: %d (%v), want 1", n, err)
		}
	})
}
