package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// attemptJSON is an attempt as the API shows it.
type attemptJSON struct {
	ID                 string  `json:"id"`
	Number             int     `json:"number"`
	StatusCode         int     `json:"status_code"`
	DurationMS         float64 `json:"duration_ms"`
	Error              string  `json:"error"`
	ResponseBody       *string `json:"response_body"`
	ResponseBodyBase64 string  `json:"response_body_base64"`
}

// deliveryJSON is a delivery as GET /deliveries/{id} shows it.
type deliveryJSON struct {
	ID           string        `json:"id"`
	EventID      string        `json:"event_id"`
	Destination  string        `json:"destination"`
	Status       string        `json:"status"`
	LastStatus   int           `json:"last_status"`
	AttemptCount int           `json:"attempt_count"`
	Attempts     []attemptJSON `json:"attempts"`
}

func TestGetDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	b.seed(t)
	f := newListFixture(t, b)

	d := must[deliveryJSON](t, b.do(t, "GET", "/api/v1/deliveries/"+f.d1Audit, nil), http.StatusOK)
	if d.ID != f.d1Audit || d.EventID != f.e1 || d.Status != store.DeliveryDead || d.LastStatus != 500 || d.AttemptCount != 1 {
		t.Errorf("delivery = %+v", d)
	}
	if len(d.Attempts) != 1 {
		t.Fatalf("attempts = %+v, want 1", d.Attempts)
	}
	at := d.Attempts[0]
	if at.Number != 1 || at.StatusCode != 500 || at.Error != "HTTP 500" || at.ResponseBody == nil || *at.ResponseBody != "boom" || at.DurationMS != 12.5 {
		t.Errorf("attempt = %+v", at)
	}

	l := must[page[attemptJSON]](t, b.do(t, "GET", "/api/v1/deliveries/"+f.d1Audit+"/attempts", nil), http.StatusOK)
	if len(l.Data) != 1 || l.Data[0].ID != at.ID {
		t.Errorf("attempts list = %+v", l)
	}

	// A pending delivery has an empty attempts list, not null.
	d = must[deliveryJSON](t, b.do(t, "GET", "/api/v1/deliveries/"+f.d1Billing, nil), http.StatusOK)
	if d.Attempts == nil || len(d.Attempts) != 0 || d.Status != store.DeliveryPending {
		t.Errorf("pending delivery = %+v", d)
	}

	// A binary response body comes back as base64.
	now := time.Now()
	claimed, err := b.store.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Destination: "billing", Now: now.Add(time.Hour), LeaseUntil: now.Add(2 * time.Hour), Limit: 1})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %d", err, len(claimed))
	}
	if err := b.store.AttemptRecord(ctx, &store.AttemptRecordParams{
		Attempt: &store.Attempt{DeliveryID: claimed[0].ID, EventID: claimed[0].EventID, Destination: "billing", Number: claimed[0].Attempts,
			StartedAt: now, StatusCode: 200, ResponseBody: []byte{0xff, 0xfe}, Success: true},
		Status: store.DeliverySucceeded, Now: now,
	}); err != nil {
		t.Fatal(err)
	}
	d = must[deliveryJSON](t, b.do(t, "GET", "/api/v1/deliveries/"+f.d1Billing, nil), http.StatusOK)
	if len(d.Attempts) != 1 || d.Attempts[0].ResponseBody != nil || d.Attempts[0].ResponseBodyBase64 != "//4=" {
		t.Errorf("binary response attempt = %+v", d.Attempts)
	}

	if r := b.do(t, "GET", "/api/v1/deliveries/dlv_missing/attempts", nil); r.status != http.StatusNotFound {
		t.Errorf("attempts of a missing delivery = %d, want 404", r.status)
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	b := setup(t, &setupOpts{token: testToken, now: func() time.Time { return now }})
	b.seed(t)
	f := newListFixture(t, b)

	d := must[store.Delivery](t, b.do(t, "POST", "/api/v1/deliveries/"+f.d1Audit+"/retry", nil), http.StatusOK)
	if d.ID != f.d1Audit || d.Status != store.DeliveryPending || !d.NextAttemptAt.Equal(now) || d.Attempts != 1 {
		t.Errorf("retried = %+v, want pending, due at %s, attempts kept", d, now)
	}
	stored, err := b.store.DeliveryGetByID(context.Background(), f.d1Audit)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != store.DeliveryPending {
		t.Errorf("stored status = %s", stored.Status)
	}
	if r := b.do(t, "POST", "/api/v1/deliveries/dlv_missing/retry", nil); r.status != http.StatusNotFound {
		t.Errorf("retry of a missing delivery = %d, want 404", r.status)
	}
	if r := b.do(t, "GET", "/api/v1/deliveries/"+f.d1Audit+"/retry", nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET retry = %d, want 405", r.status)
	}
}

func TestBulkRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	b.seed(t)
	var events []string
	for i := range 3 {
		res := ingest(t, b.store, ingestOpts{source: "stripe", body: "{}", at: t0.Add(time.Duration(i) * time.Minute), dests: []string{"billing", "audit"}})
		events = append(events, res.EventID)
	}
	killAll(t, b.store, "billing")
	killAll(t, b.store, "audit")
	ingest(t, b.store, ingestOpts{source: "stripe", body: "{}", at: t0.Add(time.Hour), dests: []string{"billing"}}) // pending
	count := func(status string) int {
		t.Helper()
		ds, err := b.store.DeliveryList(ctx, &store.DeliveryListParams{Status: status, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}
	if n := count(store.DeliveryDead); n != 6 {
		t.Fatalf("fixture: %d dead, want 6", n)
	}
	type retried struct {
		Retried int `json:"retried"`
	}
	for _, tt := range []struct {
		name     string
		query    string
		body     any
		want     int
		wantDead int
	}{
		{"query filters", "?destination=billing&event_id=" + events[0], nil, 1, 5},
		{"json body filters", "", map[string]any{"destination": "billing", "since": t0.Unix()}, 2, 3},
		{"json body time as string", "", map[string]any{"source": "stripe", "until": t0.Add(time.Minute).Format(time.RFC3339)}, 1, 2},
		{"defaults to dead", "", nil, 2, 0},
		{"nothing left", "", nil, 0, 0},
		{"explicit pending", "?status=pending", nil, 7, 0},
	} {
		// Sequential: each step changes what the next one sees.
		r := b.do(t, "POST", "/api/v1/deliveries/retry"+tt.query, tt.body)
		if got := must[retried](t, r, http.StatusOK); got.Retried != tt.want {
			t.Errorf("%s: retried %d, want %d", tt.name, got.Retried, tt.want)
		}
		if n := count(store.DeliveryDead); n != tt.wantDead {
			t.Errorf("%s: %d dead left, want %d", tt.name, n, tt.wantDead)
		}
	}
	for _, tt := range []struct {
		name, query string
		body        any
	}{
		{"limit not accepted", "?limit=5", nil},
		{"cursor not accepted", "?cursor=dlv_x", nil},
		{"bad status", "?status=routed", nil},
		{"query and body", "?destination=audit", map[string]string{"destination": "billing"}},
		{"unknown body field", "", `{"destnation":"audit"}`},
		{"bad time in body", "", `{"since":"last week"}`},
		{"object as time", "", `{"since":{}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := b.do(t, "POST", "/api/v1/deliveries/retry"+tt.query, tt.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", r.status, r.body)
			}
			r.errorMessage(t)
		})
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	now := t0.Add(90 * time.Second)
	b := setup(t, &setupOpts{token: testToken, now: func() time.Time { return now }})
	b.seed(t)
	ctx := context.Background()
	if err := b.store.DestinationUpsert(ctx, &store.Destination{Name: "idle", URL: "http://127.0.0.1:1/idle"}); err != nil {
		t.Fatal(err)
	}
	ingest(t, b.store, ingestOpts{source: "stripe", body: "{}", at: t0, dests: []string{"billing", "audit"}})
	ingest(t, b.store, ingestOpts{source: "stripe", body: "{}", at: t0.Add(30 * time.Second), dests: []string{"billing", "gone"}})
	killAll(t, b.store, "audit")
	must[store.Destination](t, b.do(t, "POST", "/api/v1/destinations/billing/pause", nil), http.StatusOK)

	type destStats struct {
		Destination             string    `json:"destination"`
		Pending                 int       `json:"pending"`
		Dead                    int       `json:"dead"`
		OldestPendingAt         time.Time `json:"oldest_pending_at"`
		OldestPendingAgeSeconds float64   `json:"oldest_pending_age_seconds"`
		Paused                  bool      `json:"paused"`
		Deleted                 bool      `json:"deleted"`
	}
	st := must[struct {
		Data    []destStats `json:"data"`
		Pending int         `json:"pending"`
		Dead    int         `json:"dead"`
	}](t, b.do(t, "GET", "/api/v1/stats", nil), http.StatusOK)
	want := []destStats{
		{Destination: "audit", Dead: 1},
		{Destination: "billing", Pending: 2, OldestPendingAt: t0, OldestPendingAgeSeconds: 90, Paused: true},
		{Destination: "gone", Pending: 1, OldestPendingAt: t0.Add(30 * time.Second), OldestPendingAgeSeconds: 60, Deleted: true},
		{Destination: "idle"},
	}
	if len(st.Data) != len(want) {
		t.Fatalf("stats = %+v, want %d destinations", st.Data, len(want))
	}
	for i, w := range want {
		g := st.Data[i]
		if g.Destination != w.Destination || g.Pending != w.Pending || g.Dead != w.Dead || !g.OldestPendingAt.Equal(w.OldestPendingAt) ||
			g.OldestPendingAgeSeconds != w.OldestPendingAgeSeconds || g.Paused != w.Paused || g.Deleted != w.Deleted {
			t.Errorf("stats[%d] = %+v, want %+v", i, g, w)
		}
	}
	if st.Pending != 3 || st.Dead != 1 {
		t.Errorf("totals = %d pending, %d dead; want 3 and 1", st.Pending, st.Dead)
	}
}
