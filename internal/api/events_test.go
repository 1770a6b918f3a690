package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mailroomhq/mailroom/internal/store"
)

// listFixture is a small history: two stripe events (one a checkout), a
// github event that matched nothing, a rejected request and a duplicate.
// The audit deliveries are dead, the billing one pending.
type listFixture struct {
	r1, r2, r3, rRejected, rDup string // requests, oldest first
	e1, e2, e3                  string // events
	d1Billing, d1Audit, d2Audit string // deliveries
}

func newListFixture(t testing.TB, b *testBundle) *listFixture {
	t.Helper()
	ctx := context.Background()
	f := &listFixture{}
	res := ingest(t, b.store, ingestOpts{source: "stripe", body: `{"id":"evt_a","type":"checkout.session.completed"}`, key: "evt_a",
		typ: "checkout.session.completed", at: t0, dests: []string{"billing", "audit"}})
	f.r1, f.e1, f.d1Billing, f.d1Audit = res.RequestID, res.EventID, res.DeliveryIDs[0], res.DeliveryIDs[1]
	res = ingest(t, b.store, ingestOpts{source: "stripe", body: `{"id":"evt_b","type":"charge.refunded"}`, key: "evt_b",
		typ: "charge.refunded", at: t0.Add(time.Minute), dests: []string{"audit"}})
	f.r2, f.e2, f.d2Audit = res.RequestID, res.EventID, res.DeliveryIDs[0]
	res = ingest(t, b.store, ingestOpts{source: "github", body: `{"ref":"main"}`, typ: "push", at: t0.Add(2 * time.Minute)})
	f.r3, f.e3 = res.RequestID, res.EventID
	id, err := b.store.RequestInsert(ctx, &store.Request{Source: "github", ReceivedAt: t0.Add(3 * time.Minute), Method: "POST",
		Status: store.RequestRejected, Reason: "signature mismatch", HTTPStatus: 401, Body: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	f.rRejected = id
	res = ingest(t, b.store, ingestOpts{source: "stripe", body: `{"id":"evt_a","type":"checkout.session.completed"}`, key: "evt_a",
		typ: "checkout.session.completed", at: t0.Add(4 * time.Minute), dests: []string{"billing", "audit"}})
	if !res.Duplicate {
		t.Fatal("fixture: the repeat of evt_a was not a duplicate")
	}
	f.rDup = res.RequestID
	if dead := killAll(t, b.store, "audit"); len(dead) != 2 {
		t.Fatalf("fixture: killed %d audit deliveries, want 2", len(dead))
	}
	return f
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func TestListFilters(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)
	f := newListFixture(t, b)
	rfc := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339)) }
	for _, tt := range []struct {
		name string
		path string
		want []string
	}{
		{"requests all", "requests", []string{f.rDup, f.rRejected, f.r3, f.r2, f.r1}},
		{"requests by source", "requests?source=stripe", []string{f.rDup, f.r2, f.r1}},
		{"requests rejected", "requests?status=rejected", []string{f.rRejected}},
		{"requests duplicate", "requests?status=duplicate", []string{f.rDup}},
		{"requests by event", "requests?event_id=" + f.e1, []string{f.rDup, f.r1}},
		{"requests since rfc3339", "requests?since=" + rfc(t0.Add(time.Minute)), []string{f.rDup, f.rRejected, f.r3, f.r2}},
		{"requests until unix", "requests?until=" + unix(t0.Add(2*time.Minute)), []string{f.r2, f.r1}},
		{"events all", "events", []string{f.e3, f.e2, f.e1}},
		{"events by source", "events?source=github", []string{f.e3}},
		{"events by type", "events?type=charge.refunded", []string{f.e2}},
		{"events ignored", "events?status=ignored", []string{f.e3}},
		{"events routed", "events?status=routed", []string{f.e2, f.e1}},
		{"events window", "events?since=" + rfc(t0.Add(time.Minute)) + "&until=" + rfc(t0.Add(2*time.Minute)), []string{f.e2}},
		{"events empty window", "events?since=" + unix(t0.Add(time.Hour)), []string{}},
		{"deliveries all", "deliveries", []string{f.d2Audit, f.d1Audit, f.d1Billing}},
		{"deliveries by destination", "deliveries?destination=audit", []string{f.d2Audit, f.d1Audit}},
		{"deliveries dead", "deliveries?status=dead", []string{f.d2Audit, f.d1Audit}},
		{"deliveries pending", "deliveries?status=pending", []string{f.d1Billing}},
		{"deliveries by event", "deliveries?event_id=" + f.e1, []string{f.d1Audit, f.d1Billing}},
		{"deliveries by source", "deliveries?source=github", []string{}},
		{"deliveries since", "deliveries?since=" + unix(t0.Add(30*time.Second)), []string{f.d2Audit}},
		{"deliveries combined", "deliveries?destination=audit&status=dead&event_id=" + f.e2, []string{f.d2Audit}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := must[page[struct {
				ID string `json:"id"`
			}]](t, b.do(t, "GET", pathf("%s", tt.path), nil), http.StatusOK)
			got := []string{}
			for _, row := range l.Data {
				got = append(got, row.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ids = %q, want %q", got, tt.want)
			}
			if l.NextCursor != "" {
				t.Errorf("next_cursor = %q on the only page", l.NextCursor)
			}
		})
	}
}

func TestListBadParams(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, tt := range []struct {
		path string
		want string // named in the error
	}{
		{"events?limit=0", "limit"},
		{"events?limit=1001", "limit"},
		{"events?limit=ten", "limit"},
		{"deliveries?limit=-3", "limit"},
		{"events?since=yesterday", "since"},
		{"events?until=2025-13-01T00:00:00Z", "until"},
		{"events?since=1e300", "since"},
		{"events?since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z", "since"},
		{"events?status=dead", "status"},
		{"deliveries?status=routed", "status"},
		{"requests?status=pending", "status"},
		{"events?destination=billing", "destination"},
		{"requests?type=push", "type"},
		{"events?statuss=routed", "statuss"},
		{"events?source=a&source=b", "source"},
		{"events?cursor=evt_1%27drop", "cursor"},
		{"events?cursor=evt_1;drop", "query"},
		{"deliveries?status=dead&destination=%zz", "query"},
		{"events?source=%00", "source"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			r := b.do(t, "GET", "/api/v1/"+tt.path, nil)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", r.status, r.body)
			}
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name %q", msg, tt.want)
			}
		})
	}
}

func TestListPaging(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rows, limit int
		wantPages   []int
	}{
		{rows: 7, limit: 3, wantPages: []int{3, 3, 1}},
		{rows: 6, limit: 3, wantPages: []int{3, 3}},
		{rows: 5, limit: 5, wantPages: []int{5}},
		{rows: 1, limit: 1, wantPages: []int{1}},
		{rows: 0, limit: 4, wantPages: []int{0}},
	} {
		t.Run(fmt.Sprintf("%d rows by %d", tt.rows, tt.limit), func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			var want []string // newest first
			for i := range tt.rows {
				res := ingest(t, b.store, ingestOpts{source: "s", body: "{}", at: t0.Add(time.Duration(i) * time.Second), dests: []string{"d"}})
				want = append([]string{res.EventID}, want...)
			}
			for _, kind := range []string{"events", "requests", "deliveries"} {
				var got []string
				var sizes []int
				cursor := ""
				for range 10 {
					q := url.Values{"limit": {strconv.Itoa(tt.limit)}}
					if cursor != "" {
						q.Set("cursor", cursor)
					}
					l := must[page[struct {
						ID      string `json:"id"`
						EventID string `json:"event_id"`
					}]](t, b.do(t, "GET", "/api/v1/"+kind+"?"+q.Encode(), nil), http.StatusOK)
					sizes = append(sizes, len(l.Data))
					for _, row := range l.Data {
						id := row.ID
						if kind != "events" {
							id = row.EventID
						}
						got = append(got, id)
					}
					if cursor = l.NextCursor; cursor == "" {
						break
					}
				}
				if !slices.Equal(sizes, tt.wantPages) {
					t.Errorf("%s: page sizes = %v, want %v", kind, sizes, tt.wantPages)
				}
				if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Errorf("%s: paged event ids = %q, want %q", kind, got, want)
				}
			}
		})
	}
}

// TestListPagingAtMaxLimit covers the largest page, where the store will
// not return the extra row that tells whether another page follows.
func TestListPagingAtMaxLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	res := ingest(t, b.store, ingestOpts{source: "s", body: "{}", at: t0})
	ds := make([]*store.Delivery, 1000)
	for i := range ds {
		ds[i] = &store.Delivery{EventID: res.EventID, RequestID: res.RequestID, Source: "s", Destination: "d", ConnectionID: "s->d"}
	}
	if err := b.store.DeliveryInsertMany(ctx, ds); err != nil {
		t.Fatal(err)
	}
	l := must[page[store.Delivery]](t, b.do(t, "GET", "/api/v1/deliveries?limit=1000", nil), http.StatusOK)
	if len(l.Data) != 1000 || l.NextCursor != "" {
		t.Fatalf("exactly 1000 rows: got %d rows, next_cursor %q; want 1000 and none", len(l.Data), l.NextCursor)
	}
	if err := b.store.DeliveryInsertMany(ctx, []*store.Delivery{{EventID: res.EventID, RequestID: res.RequestID, Source: "s", Destination: "d", ConnectionID: "s->d"}}); err != nil {
		t.Fatal(err)
	}
	l = must[page[store.Delivery]](t, b.do(t, "GET", "/api/v1/deliveries?limit=1000", nil), http.StatusOK)
	if len(l.Data) != 1000 || l.NextCursor == "" {
		t.Fatalf("1001 rows: got %d rows, next_cursor %q; want 1000 and a cursor", len(l.Data), l.NextCursor)
	}
	l = must[page[store.Delivery]](t, b.do(t, "GET", "/api/v1/deliveries?limit=1000&cursor="+l.NextCursor, nil), http.StatusOK)
	if len(l.Data) != 1 || l.NextCursor != "" {
		t.Errorf("last page: %d rows, next_cursor %q; want 1 and none", len(l.Data), l.NextCursor)
	}
	if l := must[page[store.Delivery]](t, b.do(t, "GET", "/api/v1/deliveries", nil), http.StatusOK); len(l.Data) != 50 {
		t.Errorf("default page = %d rows, want 50", len(l.Data))
	}
}

// requestJSON is a request as GET /requests/{id} shows it.
type requestJSON struct {
	ID         string              `json:"id"`
	Source     string              `json:"source"`
	Status     string              `json:"status"`
	Reason     string              `json:"reason"`
	Headers    map[string][]string `json:"headers"`
	Body       *string             `json:"body"`
	BodyBase64 string              `json:"body_base64"`
	EventID    string              `json:"event_id"`
}

func TestGetRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)
	f := newListFixture(t, b)
	binary := []byte{0xff, 0x00, 0xfe, 'x'}
	bin := ingest(t, b.store, ingestOpts{source: "github", body: string(binary), at: t0.Add(time.Hour),
		header: http.Header{"Content-Type": {"application/octet-stream"}, "X-Github-Event": {"push"}}})

	r := must[requestJSON](t, b.do(t, "GET", "/api/v1/requests/"+f.r1, nil), http.StatusOK)
	if r.Body == nil || *r.Body != `{"id":"evt_a","type":"checkout.session.completed"}` || r.BodyBase64 != "" {
		t.Errorf("text body: body %v, body_base64 %q", r.Body, r.BodyBase64)
	}
	if r.Headers["Content-Type"][0] != "application/json" || r.EventID != f.e1 || r.Status != store.RequestAccepted {
		t.Errorf("request = %+v", r)
	}
	r = must[requestJSON](t, b.do(t, "GET", "/api/v1/requests/"+bin.RequestID, nil), http.StatusOK)
	if r.Body != nil || r.BodyBase64 != base64.StdEncoding.EncodeToString(binary) {
		t.Errorf("binary body: body %v, body_base64 %q", r.Body, r.BodyBase64)
	}
	r = must[requestJSON](t, b.do(t, "GET", "/api/v1/requests/"+f.rRejected, nil), http.StatusOK)
	if r.Status != store.RequestRejected || r.Reason != "signature mismatch" {
		t.Errorf("rejected request = %+v", r)
	}
	// Lists carry no bodies.
	l := b.do(t, "GET", "/api/v1/requests", nil)
	if strings.Contains(string(l.body), `"body"`) || strings.Contains(string(l.body), `"body_base64"`) {
		t.Errorf("request list carries bodies: %s", l.body)
	}
}

func TestGetEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)
	f := newListFixture(t, b)
	ev := must[eventJSON](t, b.do(t, "GET", "/api/v1/events/"+f.e1, nil), http.StatusOK)
	if ev.ID != f.e1 || ev.Type != "checkout.session.completed" || ev.Status != store.EventRouted || ev.DeliveryCount != 2 {
		t.Errorf("event = %+v", ev)
	}
	if ev.Request == nil || ev.Request.ID != f.r1 || ev.Request.Body == nil || !strings.Contains(*ev.Request.Body, "evt_a") {
		t.Errorf("event request = %+v", ev.Request)
	}
	var ids []string
	for _, d := range ev.Deliveries {
		ids = append(ids, d.ID)
	}
	if want := []string{f.d1Audit, f.d1Billing}; !slices.Equal(ids, want) {
		t.Errorf("event deliveries = %q, want %q", ids, want)
	}
	ev = must[eventJSON](t, b.do(t, "GET", "/api/v1/events/"+f.e3, nil), http.StatusOK)
	if ev.Deliveries == nil || len(ev.Deliveries) != 0 || ev.Status != store.EventIgnored {
		t.Errorf("ignored event = %+v, want an empty deliveries list", ev)
	}
}

// eventJSON is an event as GET /events/{id} shows it.
type eventJSON struct {
	ID            string           `json:"id"`
	Type          string           `json:"type"`
	Status        string           `json:"status"`
	DeliveryCount int              `json:"delivery_count"`
	Deliveries    []store.Delivery `json:"deliveries"`
	Request       *requestJSON     `json:"request"`
}

func TestReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	b.seed(t)
	// A github connection whose filter reads the stored path, query and
	// headers, to show that replay routes the original request.
	must[store.Connection](t, b.do(t, "POST", "/api/v1/connections", map[string]string{
		"source": "github", "destination": "audit",
		"filter": `headers["x-github-event"] == "push" && path == "/repo" && query.env == "prod"`,
	}), http.StatusCreated)

	checkout := ingest(t, b.store, ingestOpts{source: "stripe", body: `{"type":"checkout.session.completed"}`, at: t0, dests: []string{"billing", "audit"}})
	refund := ingest(t, b.store, ingestOpts{source: "stripe", body: `{"type":"charge.refunded"}`, at: t0.Add(time.Second), dests: []string{"audit"}})
	push := ingest(t, b.store, ingestOpts{source: "github", body: `{}`, path: "/repo", query: "env=prod", at: t0.Add(2 * time.Second),
		header: http.Header{"X-Github-Event": {"push"}}})
	pushStaging := ingest(t, b.store, ingestOpts{source: "github", body: `{}`, path: "/repo", query: "env=staging", at: t0.Add(3 * time.Second),
		header: http.Header{"X-Github-Event": {"push"}}})

	type replayed struct {
		Deliveries []store.Delivery `json:"deliveries"`
	}
	replay := func(t *testing.T, eventID string) []string {
		t.Helper()
		res := must[replayed](t, b.do(t, "POST", "/api/v1/events/"+eventID+"/replay", nil), http.StatusOK)
		if res.Deliveries == nil {
			t.Fatal("deliveries is null, want a list")
		}
		var dests []string
		for _, d := range res.Deliveries {
			stored, err := b.store.DeliveryGetByID(ctx, d.ID)
			if err != nil {
				t.Fatalf("replayed delivery %s not stored: %v", d.ID, err)
			}
			if stored.EventID != eventID || stored.Status != store.DeliveryPending || stored.ConnectionID != d.ConnectionID || stored.Attempts != 0 {
				t.Errorf("replayed delivery = %+v", stored)
			}
			dests = append(dests, d.Destination)
		}
		slices.Sort(dests)
		return dests
	}
	for _, tt := range []struct {
		name  string
		event string
		want  []string
	}{
		{"checkout matches both", checkout.EventID, []string{"audit", "billing"}},
		{"refund matches audit only", refund.EventID, []string{"audit"}},
		{"stored path, query and headers route", push.EventID, []string{"audit"}},
		{"filter on stored query excludes", pushStaging.EventID, nil},
	} {
		// Not parallel: the steps after the loop change the connections.
		t.Run(tt.name, func(t *testing.T) {
			if got := replay(t, tt.event); !slices.Equal(got, tt.want) {
				t.Errorf("replay destinations = %q, want %q", got, tt.want)
			}
		})
	}

	// Replay uses the connections as they are now.
	must[store.Connection](t, b.do(t, "PUT", pathf("connections/%s", url.PathEscape("stripe->billing")),
		map[string]string{"source": "stripe", "destination": "billing", "filter": `body.type == "charge.refunded"`}), http.StatusOK)
	if r := b.do(t, "DELETE", "/api/v1/connections/stripe->audit", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE connection = %d", r.status)
	}
	if got := replay(t, checkout.EventID); len(got) != 0 {
		t.Errorf("checkout after the change: replay destinations = %q, want none", got)
	}
	if got := replay(t, refund.EventID); !slices.Equal(got, []string{"billing"}) {
		t.Errorf("refund after the change: replay destinations = %q, want [billing]", got)
	}

	ds, err := b.store.DeliveryList(ctx, &store.DeliveryListParams{EventID: checkout.EventID})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 4 {
		t.Errorf("checkout deliveries = %d, want 2 ingested + 2 replayed", len(ds))
	}
	if r := b.do(t, "POST", "/api/v1/events/evt_missing/replay", nil); r.status != http.StatusNotFound {
		t.Errorf("replay of a missing event = %d, want 404", r.status)
	}
}

// TestListenAttempt records `mailroom listen` forwards: each is a finished
// delivery to listen:<session> with its one attempt, never a pending one.
func TestListenAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	b.seed(t)
	ev := ingest(t, b.store, ingestOpts{source: "stripe", body: `{"type":"x"}`, at: t0})
	path := "/api/v1/events/" + ev.EventID + "/listen-attempts"

	ok := must[store.Delivery](t, b.do(t, "POST", path, map[string]any{"session": "t1", "status_code": 202, "duration_ms": 4.5}), http.StatusCreated)
	long := strings.Repeat("x", 5000)
	bad := must[store.Delivery](t, b.do(t, "POST", path, map[string]any{"session": "t1", "status_code": 500, "response_body": long}), http.StatusCreated)
	// The client says what went wrong: kept like the body, 4 KiB at most
	// (an error of 1 MiB was stored whole, twice: attempt and delivery).
	failed := must[store.Delivery](t, b.do(t, "POST", path, map[string]any{"session": "t1", "error": strings.Repeat("é", 300_000)}), http.StatusCreated)
	for _, tt := range []struct {
		d      store.Delivery
		status string
		code   int
		body   int
		err    int
	}{{ok, store.DeliverySucceeded, 202, 0, 0}, {bad, store.DeliveryDead, 500, 4096, 0}, {failed, store.DeliveryDead, 0, 0, 4096}} {
		d, err := b.store.DeliveryGetByID(ctx, tt.d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != tt.status || d.Attempts != 1 || d.Destination != "listen:t1" || d.LastStatus != tt.code || tt.d.Status != tt.status {
			t.Errorf("delivery %+v (answered %+v), want %s after one attempt", d, tt.d, tt.status)
		}
		as, err := b.store.AttemptList(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 1 || as[0].StatusCode != tt.code || len(as[0].ResponseBody) != tt.body {
			t.Errorf("attempts of %s: %+v", d.ID, as)
		}
		if len(as) == 1 && (len(as[0].Error) > tt.err || len(as[0].Error) < tt.err-3 || !utf8.ValidString(as[0].Error) || len(d.LastError) != len(as[0].Error)) {
			t.Errorf("attempt of %s keeps an error of %d bytes (valid UTF-8 %v), delivery %d, want at most %d", d.ID, len(as[0].Error), utf8.ValidString(as[0].Error), len(d.LastError), tt.err)
		}
	}
	for _, session := range []string{"a b", "a\x00b", "a\nb"} {
		if got := b.do(t, "POST", path, map[string]any{"session": session}); got.status != http.StatusBadRequest {
			t.Errorf("bad session %q: %d", session, got.status)
		}
	}
	// NUL in the error: PostgreSQL refused to store it (503); refused
	// with every string holding NUL (TestStringsWithNULRefused).
	if got := b.do(t, "POST", path, map[string]any{"session": "t1", "error": "x\x00y"}); got.status != http.StatusBadRequest {
		t.Errorf("error with a NUL: %d, want 400", got.status)
	}
	// The attempt's start is now less its duration: a negative or huge
	// one stamped the attempt (and its id) decades away, or beyond what an
	// id can carry, which ended the process.
	for _, d := range []float64{-1e15, -1, 1e300, 86_400_001} {
		if got := b.do(t, "POST", path, map[string]any{"session": "t1", "duration_ms": d}); got.status != http.StatusBadRequest {
			t.Errorf("duration_ms %g: %d, want 400", d, got.status)
		}
	}
	if got := b.do(t, "POST", path, map[string]any{"session": "t1", "duration_ms": 86_400_000}); got.status != http.StatusCreated {
		t.Errorf("duration_ms of a day: %d, want 201", got.status)
	}
	if got := b.do(t, "POST", "/api/v1/events/evt_nope/listen-attempts", map[string]any{"session": "t1"}); got.status != http.StatusNotFound {
		t.Errorf("unknown event: %d", got.status)
	}
	pending, err := b.store.DeliveryList(ctx, &store.DeliveryListParams{Destination: "listen:t1", Status: store.DeliveryPending})
	if err != nil || len(pending) != 0 {
		t.Errorf("pending listen deliveries: %v %v", pending, err)
	}
}
