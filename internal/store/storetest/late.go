package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// testLateStamps checks that receipt-time ranges (list Since and Until,
// Prune's Before) are exact for rows whose id is stamped later than their
// receipt: an id is stamped with the latest time its generator has seen,
// so a request received before a later one that was written first carries
// that later time (by 500 ms, or by an hour here).
func testLateStamps(t *testing.T, newStore NewStore) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	b := time.Now().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	// In ingest order, with the time each id is stamped with.
	rows := []struct {
		name, source string
		at           time.Duration // received at b + at
	}{
		{"a", "s", -2 * time.Hour},                   // stamped b-2h
		{"b", "s", 300 * time.Millisecond},           // b+300ms
		{"c", "s", -200 * time.Millisecond},          // b+300ms: 500 ms late
		{"c2", "s", -5 * time.Second},                // b+300ms: 5.3 s late, below b+1s's stamp
		{"d", "s", 0},                                // b+300ms
		{"e", "s", time.Hour},                        // b+1h
		{"f", "s", -time.Hour},                       // b+1h: 2 h late
		{"g", "t", -time.Microsecond},                // b+1h: 1 h late
		{"h", "s", time.Hour - 500*time.Millisecond}, // b+1h: 500 ms late
	}
	reqName, evName := map[string]string{}, map[string]string{}
	for _, r := range rows {
		res, err := s.RequestIngest(ctx, &store.RequestIngestParams{
			Request: &store.Request{Source: r.source, ReceivedAt: b.Add(r.at), Method: "POST", Path: "/e/" + r.source, Body: []byte(`{"n":"` + r.name + `"}`)},
			Event:   &store.Event{Type: "late.test"},
		})
		if err != nil {
			t.Fatal(err)
		}
		reqName[res.RequestID], evName[res.EventID] = r.name, r.name
	}
	// Every list is read in pages of 2, so that a page ends inside each
	// part of the range.
	requests := func(p store.RequestListParams) []string {
		t.Helper()
		var out []string
		p.Limit = 2
		for {
			page, err := s.RequestList(ctx, &p)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				out = append(out, reqName[r.ID])
			}
			if len(page) < p.Limit {
				return out
			}
			p.Cursor = page[len(page)-1].ID
		}
	}
	events := func(p store.EventListParams) []string {
		t.Helper()
		var out []string
		p.Limit = 2
		for {
			page, err := s.EventList(ctx, &p)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				out = append(out, evName[e.ID])
			}
			if len(page) < p.Limit {
				return out
			}
			p.Cursor = page[len(page)-1].ID
		}
	}
	search := func(p store.EventListParams) []string {
		t.Helper()
		var out []string
		sp := store.EventSearchParams{EventListParams: p, ScanRows: 3}
		sp.Limit = 2
		for i := 0; ; i++ {
			page, err := s.EventSearch(ctx, &sp)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Events {
				out = append(out, evName[e.ID])
			}
			if page.Next == "" {
				return out
			}
			if i > 20 {
				t.Fatal("search never ends")
			}
			sp.Cursor = page.Next
		}
	}
	for _, tt := range []struct {
		name         string
		since, until time.Time
		source       string
		want         []string
	}{
		{"until", time.Time{}, b, "", []string{"g", "f", "c2", "c", "a"}},
		{"until, one source", time.Time{}, b, "s", []string{"f", "c2", "c", "a"}},
		{"since", b, time.Time{}, "", []string{"h", "e", "d", "b"}},
		{"since and until", b.Add(-time.Hour), b.Add(time.Second), "", []string{"g", "f", "d", "c2", "c", "b"}},
		{"since and until, one source", b.Add(-time.Hour), b.Add(time.Second), "s", []string{"f", "d", "c2", "c", "b"}},
	} {
		if got := requests(store.RequestListParams{Since: tt.since, Until: tt.until, Source: tt.source}); !slices.Equal(got, tt.want) {
			t.Errorf("requests %s: %v, want %v", tt.name, got, tt.want)
		}
		if got := events(store.EventListParams{Since: tt.since, Until: tt.until, Source: tt.source}); !slices.Equal(got, tt.want) {
			t.Errorf("events %s: %v, want %v", tt.name, got, tt.want)
		}
		if got := search(store.EventListParams{Since: tt.since, Until: tt.until, Source: tt.source}); !slices.Equal(got, tt.want) {
			t.Errorf("search %s: %v, want %v", tt.name, got, tt.want)
		}
	}

	// Prune before b, two rows a call: exactly the rows received before b.
	var pruned store.PruneResult
	for i := 0; ; i++ {
		res, err := s.Prune(ctx, &store.PruneParams{Before: b, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		pruned.Requests += res.Requests
		pruned.Events += res.Events
		if res.Done {
			break
		}
		if i > 20 {
			t.Fatal("Prune never reports Done")
		}
	}
	if pruned.Requests != 5 || pruned.Events != 5 {
		t.Errorf("pruned %d requests and %d events, want 5 and 5", pruned.Requests, pruned.Events)
	}
	want := []string{"h", "e", "d", "b"}
	if got := requests(store.RequestListParams{}); !slices.Equal(got, want) {
		t.Errorf("requests left: %v, want %v", got, want)
	}
	if got := events(store.EventListParams{}); !slices.Equal(got, want) {
		t.Errorf("events left: %v, want %v", got, want)
	}
}
