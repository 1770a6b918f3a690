package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/search"
	"github.com/mailroomhq/mailroom/internal/store"
)

// ingestBody ingests one request of source with the given event type,
// Content-Type and body, without dedup, and returns its event id.
func ingestBody(ctx context.Context, t testing.TB, s store.Store, source, typ, contentType, body string) string {
	t.Helper()
	res, err := s.RequestIngest(ctx, &store.RequestIngestParams{
		Request: &store.Request{
			Source: source, ReceivedAt: time.Now(), Method: "POST", Path: "/e/" + source,
			Headers: map[string][]string{"Content-Type": {contentType}},
			Body:    []byte(body),
		},
		Event: &store.Event{Type: typ},
	})
	if err != nil {
		t.Fatalf("RequestIngest: %v", err)
	}
	return res.EventID
}

// searchAll follows a search's pages to the end and returns the ids found
// and the number of calls it took.
func searchAll(ctx context.Context, t testing.TB, s store.Store, p store.EventSearchParams) ([]string, int) {
	t.Helper()
	var ids []string
	calls := 0
	for {
		calls++
		if calls > 1000 {
			t.Fatal("search does not end")
		}
		page, err := s.EventSearch(ctx, &p)
		if err != nil {
			t.Fatalf("EventSearch(%+v): %v", p, err)
		}
		if len(page.Events) > store.PageLimit(p.Limit) {
			t.Fatalf("page of %d events, limit %d", len(page.Events), p.Limit)
		}
		for _, e := range page.Events {
			ids = append(ids, e.ID)
		}
		if page.Next == "" {
			return ids, calls
		}
		if page.Next == p.Cursor {
			t.Fatalf("cursor %s does not move", page.Next)
		}
		p.Cursor = page.Next
	}
}

func where(t testing.TB, conds ...string) store.BodyFilter {
	t.Helper()
	f, err := search.ParseFilter(conds)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testSearch(t *testing.T, newStore NewStore) {
	const jsonCT = "application/json"
	t.Run("BodyPaths", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		big3 := ingestBody(ctx, t, s, "s", "t", jsonCT, `{"n":9007199254740993,"data":{"object":{"customer":"cus_123","paid":true,"note":null}}}`)
		big2 := ingestBody(ctx, t, s, "s", "t", jsonCT, `{"n":9007199254740992,"data":{"object":{"customer":"cus_456","paid":false}}}`)
		frac := ingestBody(ctx, t, s, "s", "t", jsonCT, `{"n":1.50,"id":"123","items":[{"sku":"A"},{"sku":"B","qty":2}]}`)
		num := ingestBody(ctx, t, s, "s", "t", "text/plain", `{"id":123,"data":{"object":{"customer":"cus_\u0031\u00323"}}}`)
		arr := ingestBody(ctx, t, s, "s", "t", jsonCT, `[{"id":"first"},{"id":"second"}]`)
		form := ingestBody(ctx, t, s, "s", "t", "application/x-www-form-urlencoded", `Body=hello+world&From=%2B15550001&n=9007199254740993`)
		text := ingestBody(ctx, t, s, "s", "t", "text/plain", `n=9007199254740993 data.object.customer=cus_123`)
		_ = text
		for _, tt := range []struct {
			where []string
			want  []string // newest first
		}{
			{[]string{"n=9007199254740993"}, []string{big3}},
			{[]string{"n=9007199254740992"}, []string{big2}},
			{[]string{"n=9007199254740992.0"}, []string{big2}},
			{[]string{"n=90071992547409930e-1"}, []string{big3}},
			{[]string{"n=1.5"}, []string{frac}},
			{[]string{"n=15e-1"}, []string{frac}},
			{[]string{"n=1.51"}, nil},
			{[]string{`n="9007199254740993"`}, []string{form}},
			{[]string{"data.object.customer=cus_123"}, []string{num, big3}},
			{[]string{`data.object.customer="cus_123"`}, []string{num, big3}},
			{[]string{"data.object.customer=cus_12"}, nil},
			{[]string{"data.object.paid=true"}, []string{big3}},
			{[]string{"data.object.paid=false"}, []string{big2}},
			{[]string{`data.object.paid="true"`}, nil},
			{[]string{"data.object.note=null"}, []string{big3}},
			{[]string{"data.object.missing=null"}, nil},
			{[]string{"id=123"}, []string{num}},
			{[]string{`id="123"`}, []string{frac}},
			{[]string{"items[1].sku=B"}, []string{frac}},
			{[]string{"items.1.sku=B"}, []string{frac}},
			{[]string{"items[1].qty=2"}, []string{frac}},
			{[]string{"items[0].sku=B"}, nil},
			{[]string{"items[2].sku=B"}, nil},
			{[]string{"[1].id=second"}, []string{arr}},
			{[]string{"[0].id=second"}, nil},
			{[]string{"Body=hello world"}, []string{form}},
			{[]string{`From="+15550001"`}, []string{form}},
			{[]string{"From=15550001"}, nil},
			{[]string{"data.object.customer=cus_123", "n=9007199254740993"}, []string{big3}},
			{[]string{"data.object.customer=cus_123", "n=9007199254740992"}, nil},
		} {
			t.Run(strings.Join(tt.where, " and "), func(t *testing.T) {
				got, _ := searchAll(ctx, t, s, store.EventSearchParams{Body: where(t, tt.where...)})
				if !slices.Equal(got, tt.want) {
					t.Errorf("where %q: got %v, want %v", tt.where, got, tt.want)
				}
			})
		}
	})
	t.Run("TextQuery", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		a := ingestBody(ctx, t, s, "s", "t", jsonCT, `{"msg":"Payment Failed for order 100%_done"}`)
		b := ingestBody(ctx, t, s, "s", "t", jsonCT, `{"msg":"payment succeeded","customer":"cus_9"}`)
		c := ingestBody(ctx, t, s, "s", "t", "text/plain", `nothing here`)
		_ = c
		for _, tt := range []struct {
			q     string
			where []string
			want  []string
		}{
			{"payment", nil, []string{b, a}},
			{"PAYMENT FAILED", nil, []string{a}},
			{"100%_done", nil, []string{a}},
			{"100%%done", nil, nil},
			{"refund", nil, nil},
			{"payment", []string{"customer=cus_9"}, []string{b}},
			{"failed", []string{"customer=cus_9"}, nil},
		} {
			p := store.EventSearchParams{EventListParams: store.EventListParams{Query: tt.q}}
			if tt.where != nil {
				p.Body = where(t, tt.where...)
			}
			got, _ := searchAll(ctx, t, s, p)
			if !slices.Equal(got, tt.want) {
				t.Errorf("q %q where %q: got %v, want %v", tt.q, tt.where, got, tt.want)
			}
		}
	})
	t.Run("PagesAndWindows", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		var want []string
		for i := range 20 {
			body := `{"k":"other"}`
			if i%3 == 0 {
				body = `{"k":"hit"}`
			}
			id := ingestBody(ctx, t, s, "s", "t", jsonCT, body)
			if i%3 == 0 {
				want = append([]string{id}, want...)
			}
		}
		// 7 matches: pages of 3 end with an empty Next after the last.
		p := store.EventSearchParams{EventListParams: store.EventListParams{Limit: 3}, Body: where(t, "k=hit")}
		got, calls := searchAll(ctx, t, s, p)
		if !slices.Equal(got, want) || calls != 3 {
			t.Errorf("limit 3: got %v in %d calls, want %v in 3", got, calls, want)
		}
		first, err := s.EventSearch(ctx, &p)
		if err != nil || len(first.Events) != 3 || first.Next != want[2] {
			t.Fatalf("first page: %+v, %v; want next %s", first, err, want[2])
		}
		// A window of 4 events per call: pages may be short or empty,
		// and the cursor moves through the whole history, once.
		p.ScanRows = 4
		got, calls = searchAll(ctx, t, s, p)
		if !slices.Equal(got, want) || calls < 5 {
			t.Errorf("window 4: got %v in %d calls, want %v in at least 5", got, calls, want)
		}
		// A byte budget smaller than one chunk of bodies: each call reads
		// one chunk and stops there, and the pages still cover everything.
		var many []string
		for range 70 {
			many = append([]string{ingestBody(ctx, t, s, "bytes", "t", jsonCT, `{"k":"hit"}`)}, many...)
		}
		got, calls = searchAll(ctx, t, s, store.EventSearchParams{EventListParams: store.EventListParams{Source: "bytes", Limit: 1000},
			Body: where(t, "k=hit"), ScanBytes: 1})
		if !slices.Equal(got, many) || calls != 2 {
			t.Errorf("byte budget: %d events in %d calls, want all %d in 2", len(got), calls, len(many))
		}
		page, err := s.EventSearch(ctx, &store.EventSearchParams{Body: where(t, "k=none"), ScanRows: 8})
		if err != nil || len(page.Events) != 0 || page.Scanned != 8 || page.Next == "" {
			t.Errorf("no match in a full window: %+v, %v; want no events, 8 scanned and a next cursor", page, err)
		}
	})
	t.Run("WithListFilters", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		ingestBody(ctx, t, s, "a", "paid", jsonCT, `{"c":"x"}`)
		mid := time.Now()
		time.Sleep(2 * time.Millisecond)
		ab := ingestBody(ctx, t, s, "a", "paid", jsonCT, `{"c":"x"}`)
		ingestBody(ctx, t, s, "a", "refund", jsonCT, `{"c":"x"}`)
		ingestBody(ctx, t, s, "b", "paid", jsonCT, `{"c":"x"}`)
		got, _ := searchAll(ctx, t, s, store.EventSearchParams{
			EventListParams: store.EventListParams{Source: "a", Type: "paid", Since: mid, Status: store.EventIgnored, Query: `"x"`},
			Body:            where(t, "c=x"),
		})
		if !slices.Equal(got, []string{ab}) {
			t.Errorf("source, type, since, status, q and where: got %v, want [%s]", got, ab)
		}
		got, _ = searchAll(ctx, t, s, store.EventSearchParams{
			EventListParams: store.EventListParams{Source: "a", Status: store.EventRouted},
			Body:            where(t, "c=x"),
		})
		if len(got) != 0 {
			t.Errorf("status routed: got %v, want none (no deliveries)", got)
		}
		acme := ingestBody(ctx, t, s, "acme/a", "paid", jsonCT, `{"c":"x"}`)
		got, _ = searchAll(ctx, t, s, store.EventSearchParams{
			EventListParams: store.EventListParams{Project: "acme"},
			Body:            where(t, "c=x"),
		})
		if !slices.Equal(got, []string{acme}) {
			t.Errorf("project acme: got %v, want [%s]", got, acme)
		}
	})
}

// BenchmarkSearch measures one search call over a full window of events
// that do not match: 10,000 stored events with 2 KB JSON bodies, a body
// condition (every body read and decoded in mailroom), a text query (the
// engine's substring test) and both. It reports the events examined per
// call; run it per driver.
func BenchmarkSearch(b *testing.B, s store.Store) {
	ctx := context.Background()
	const events = 10_000
	pad := strings.Repeat("x", 1900)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				body := fmt.Sprintf(`{"id":"evt_%d","data":{"object":{"customer":"cus_%d","amount":%d,"pad":%q}}}`, i, i%500, i, pad)
				ingestBody(ctx, b, s, "bench", "bench.event", "application/json", body)
			}
		})
	}
	for i := range events {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, bc := range []struct {
		name string
		p    store.EventSearchParams
	}{
		{"where", store.EventSearchParams{Body: where(b, "data.object.customer=cus_none")}},
		{"q", store.EventSearchParams{EventListParams: store.EventListParams{Query: "cus_none"}}},
		{"q+where", store.EventSearchParams{EventListParams: store.EventListParams{Query: "cus_1"}, Body: where(b, "data.object.amount=-1")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			scanned := 0
			for b.Loop() {
				page, err := s.EventSearch(ctx, &bc.p)
				if err != nil {
					b.Fatal(err)
				}
				if len(page.Events) != 0 || page.Next == "" {
					b.Fatalf("got %d events, next %q; want none and a next page", len(page.Events), page.Next)
				}
				scanned += page.Scanned
			}
			b.ReportMetric(float64(scanned)/float64(b.N), "events/op")
		})
	}
}
