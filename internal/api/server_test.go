package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/postgres/pgtest"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/task"
	"github.com/mailroomhq/mailroom/internal/verify"
)

const testToken = "s3cret-admin-token"

// t0 is the receive time of the first test event; later ones follow it.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type testBundle struct {
	store  store.Store
	cat    *catalog.Catalog
	api    *api.Server
	url    string
	token  string
	client *http.Client
}

type setupOpts struct {
	token string
	now   func() time.Time
	// postgres runs the server on a PostgreSQL store (a fresh schema of
	// the test server) instead of SQLite.
	postgres bool
}

func setup(t testing.TB, o *setupOpts) *testBundle {
	t.Helper()
	if o == nil {
		o = &setupOpts{token: testToken}
	}
	ctx := context.Background()
	var s store.Store
	if o.postgres {
		s = pgtest.Open(t, nil)
	} else {
		s = sqlitetest.Open(t, nil)
	}
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(s, compiler, &catalog.Options{Refresh: time.Hour})
	if err := cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	tasks := task.New(s, cat, &task.Options{Now: o.now})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tasks.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	a := api.New(s, cat, &api.Options{Token: o.token, Now: o.now, Tasks: tasks})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testBundle{store: s, cat: cat, api: a, url: srv.URL, token: o.token, client: srv.Client()}
}

// seed creates sources stripe and github, destinations billing and audit,
// and connections stripe->billing (checkout.* only) and stripe->audit.
func (b *testBundle) seed(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	for _, src := range []*store.Source{
		{Name: "stripe", Verify: verify.Config{Type: "stripe", Secret: "whsec_stripe"}},
		{Name: "github", Verify: verify.Config{Type: "github", Secret: "gh_secret"}},
	} {
		if err := b.store.SourceUpsert(ctx, src); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"billing", "audit"} {
		if err := b.store.DestinationUpsert(ctx, &store.Destination{Name: d, URL: "http://127.0.0.1:1/" + d}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*store.Connection{
		{Source: "stripe", Destination: "billing", Filter: `body.type.startsWith("checkout.")`},
		{Source: "stripe", Destination: "audit"},
	} {
		if err := b.store.ConnectionUpsert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
}

// response is one API answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorMessage returns the "error" field of a JSON error body.
func (r *response) errorMessage(t testing.TB) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Fatalf("status %d body %q is not a JSON error: %v", r.status, r.body, err)
	}
	return e.Error
}

// do sends one request with the bundle's token. body is sent as is when
// it is a string, else marshalled as JSON; nil sends none.
func (b *testBundle) do(t testing.TB, method, path string, body any) *response {
	t.Helper()
	return b.doWith(t, method, path, body, func(r *http.Request) {
		if b.token != "" {
			r.Header.Set("Authorization", "Bearer "+b.token)
		}
	})
}

func (b *testBundle) doWith(t testing.TB, method, path string, body any, edit func(*http.Request)) *response {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if edit != nil {
		edit(req)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusNoContent && ct != "application/json" {
		t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}
}

// must checks the status and decodes the body into a T.
func must[T any](t testing.TB, r *response, status int) T {
	t.Helper()
	var v T
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

// page is the shape of every list.
type page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// ingestOpts describes one accepted request for [ingest].
type ingestOpts struct {
	source, body, key, typ, path, query string
	header                              http.Header
	at                                  time.Time
	dests                               []string
}

// ingest stores an accepted request with its event and deliveries, as the
// ingest handler would.
func ingest(t testing.TB, s store.Store, o ingestOpts) *store.RequestIngestResult {
	t.Helper()
	h := o.header
	if h == nil {
		h = http.Header{"Content-Type": {"application/json"}}
	}
	p := &store.RequestIngestParams{
		Request: &store.Request{Source: o.source, ReceivedAt: o.at, Method: "POST", Path: o.path, Query: o.query, Headers: h, Body: []byte(o.body)},
		Event:   &store.Event{Type: o.typ, DedupKey: o.key},
	}
	for _, d := range o.dests {
		p.Deliveries = append(p.Deliveries, &store.Delivery{Destination: d, ConnectionID: store.ConnectionID(o.source, d)})
	}
	res, err := s.RequestIngest(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// killAll claims every due delivery of dest and records a failed final
// attempt for each, so they end dead. It returns their ids.
func killAll(t testing.TB, s store.Store, dest string) []string {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	ds, err := s.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Destination: dest, Now: now.Add(time.Hour), LeaseUntil: now.Add(2 * time.Hour), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range ds {
		err := s.AttemptRecord(ctx, &store.AttemptRecordParams{
			Attempt: &store.Attempt{DeliveryID: d.ID, EventID: d.EventID, Destination: d.Destination, Number: d.Attempts,
				StartedAt: now, DurationMS: 12.5, StatusCode: 500, ResponseBody: []byte("boom"), Error: "HTTP 500"},
			Status: store.DeliveryDead, Now: now,
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	return ids
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, tt := range []struct {
		name   string
		header string
		want   int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"token prefix", "Bearer " + testToken[:5], http.StatusUnauthorized},
		{"token with suffix", "Bearer " + testToken + "x", http.StatusUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"bare token", testToken, http.StatusUnauthorized},
		{"right token", "Bearer " + testToken, http.StatusOK},
		{"scheme case-insensitive", "bearer " + testToken, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, path := range []string{"/api/v1/sources", "/api/v1/events", "/api/v1/nope"} {
				r := b.doWith(t, http.MethodGet, path, nil, func(r *http.Request) {
					if tt.header != "" {
						r.Header.Set("Authorization", tt.header)
					}
				})
				want := tt.want
				if want == http.StatusOK && path == "/api/v1/nope" {
					want = http.StatusNotFound
				}
				if r.status != want {
					t.Errorf("GET %s: status = %d, want %d; body %s", path, r.status, want, r.body)
				}
				if want == http.StatusUnauthorized {
					if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
						t.Errorf("WWW-Authenticate = %q, want Bearer", got)
					}
					r.errorMessage(t)
				}
			}
		})
	}
	t.Run("no token configured", func(t *testing.T) {
		t.Parallel()
		open := setup(t, &setupOpts{})
		r := open.do(t, http.MethodGet, "/api/v1/sources", nil)
		if r.status != http.StatusOK {
			t.Errorf("status = %d, want 200 without a configured token", r.status)
		}
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)
	for _, tt := range []struct {
		name, method, path string
		body               any
		want               int
		wantMsg            string
	}{
		{"unknown endpoint", "GET", "/api/v1/nothing", nil, 404, "no such endpoint"},
		{"method not allowed", "DELETE", "/api/v1/events", nil, 405, "not allowed"},
		{"missing event", "GET", "/api/v1/events/evt_nope", nil, 404, `event "evt_nope" not found`},
		{"missing delivery", "GET", "/api/v1/deliveries/dlv_nope", nil, 404, `delivery "dlv_nope" not found`},
		{"missing request", "GET", "/api/v1/requests/req_nope", nil, 404, `request "req_nope" not found`},
		{"missing source", "GET", "/api/v1/sources/nope", nil, 404, `source "nope" not found`},
		{"empty body", "POST", "/api/v1/sources", "", 400, "empty"},
		{"not json", "POST", "/api/v1/sources", "{name:", 400, "invalid JSON"},
		{"trailing data", "POST", "/api/v1/sources", `{"name":"x"} {}`, 400, "after the JSON object"},
		{"unknown field named", "POST", "/api/v1/sources", `{"name":"x","verfy":{}}`, 400, `"verfy"`},
		{"wrong type named", "POST", "/api/v1/destinations", `{"name":"x","url":"http://a","max_concurrency":"ten"}`, 400, "max_concurrency"},
		{"too large", "POST", "/api/v1/sources", `{"name":"x","description":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`, 413, "exceeds"},
		{"unknown field on action", "POST", "/api/v1/destinations/billing/pause", `{"reasn":"x"}`, 400, `"reasn"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := b.do(t, tt.method, tt.path, tt.body)
			if r.status != tt.want {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.want, r.body)
			}
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.wantMsg)
			}
			if tt.want == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow header")
			}
		})
	}
}

func TestStorageErrorIs503(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)
	if err := b.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ method, path string }{
		{"GET", "/api/v1/events"},
		{"GET", "/api/v1/sources"},
		{"POST", "/api/v1/deliveries/retry"},
		{"GET", "/api/v1/stats"},
	} {
		r := b.do(t, tt.method, tt.path, nil)
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("%s %s: status = %d, want 503; body %s", tt.method, tt.path, r.status, r.body)
			continue
		}
		if msg := r.errorMessage(t); strings.Contains(msg, "closed") {
			t.Errorf("503 leaks the storage error: %q", msg)
		}
	}
}

// FuzzListParams throws arbitrary query strings at every list and at the
// bulk retry: the answer must be 200 or 400 with a JSON body, never a 5xx.
func FuzzListParams(f *testing.F) {
	for _, q := range []string{
		"", "limit=1", "limit=1000", "limit=0", "limit=-1", "limit=1001", "limit=99999999999999999999",
		"status=dead", "status=pending&destination=billing", "status=routed&type=x", "event_id=evt_1",
		"since=2025-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since=1700000000", "since=1e300", "until=-1e20",
		"since=0x10", "since=NaN", "since=Inf", "cursor=evt_01", "cursor=%00", "cursor=' OR 1=1 --",
		"source=%ff%fe", "a=1", "status=dead&status=pending", "%zz", "=&=", "type=" + strings.Repeat("x", 600),
	} {
		f.Add(q)
	}
	b := setup(f, nil)
	b.seed(f)
	ingest(f, b.store, ingestOpts{source: "stripe", body: `{"type":"checkout.x"}`, typ: "checkout.x", at: t0, dests: []string{"billing", "audit"}})
	ingest(f, b.store, ingestOpts{source: "github", body: `{}`, at: t0.Add(time.Second)})
	killAll(f, b.store, "audit")
	f.Fuzz(func(t *testing.T, query string) {
		for _, target := range []struct{ method, path string }{
			{"GET", "/api/v1/requests"}, {"GET", "/api/v1/events"}, {"GET", "/api/v1/deliveries"}, {"POST", "/api/v1/deliveries/retry"},
		} {
			req := httptest.NewRequest(target.method, target.path, nil)
			req.URL.RawQuery = query
			req.Header.Set("Authorization", "Bearer "+testToken)
			rec := httptest.NewRecorder()
			b.api.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
				t.Fatalf("%s %s?%s: status %d, body %s", target.method, target.path, query, rec.Code, rec.Body)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s %s?%s: body is not JSON: %q", target.method, target.path, query, rec.Body)
			}
			if rec.Code == http.StatusBadRequest && !strings.Contains(rec.Body.String(), `"error"`) {
				t.Fatalf("400 without an error message: %s", rec.Body)
			}
		}
	})
}

// pathf formats an API path.
func pathf(format string, args ...any) string { return "/api/v1/" + fmt.Sprintf(format, args...) }

// TestRegisterDisabled: where the API is off, every path under /api/ says
// why, as JSON, with a 403.
func TestRegisterDisabled(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	api.RegisterDisabled(mux, "set api.token")
	for _, path := range []string{"/api/v1/sources", "/api/v1/tasks/x", "/api/other"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
		var body struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusForbidden || body.Error != "admin API disabled: set api.token" {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
}
