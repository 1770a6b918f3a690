package ingest_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/verify"
)

const stripeSecret = "whsec_test_secret"

type testBundle struct {
	store *sqlite.Store
	url   string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	return setupWith(t, nil)
}

// setupWith is setup with the handler's options.
func setupWith(t *testing.T, opts *ingest.Options) *testBundle {
	t.Helper()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	for _, src := range []*store.Source{
		{Name: "stripe", Verify: verify.Config{Type: "stripe", Secret: stripeSecret}},
		{Name: "custom", Verify: verify.Config{Type: "hmac", Header: "X-Signature", Secret: "k"}, Dedup: store.DedupConfig{Key: "body.id"}},
		{Name: "open"},
		{Name: "tiny", MaxBodyBytes: 16},
		{Name: "keyed", Dedup: store.DedupConfig{Key: "body.id"}},
	} {
		if err := s.SourceUpsert(ctx, src); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"billing", "audit"} {
		if err := s.DestinationUpsert(ctx, &store.Destination{Name: d, URL: "http://127.0.0.1:1/" + d}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*store.Connection{
		{Source: "stripe", Destination: "billing", Filter: `body.type.startsWith("checkout.session.")`},
		{Source: "stripe", Destination: "audit"},
		{Source: "open", Destination: "audit", Filter: `path == "/keep"`},
	} {
		if err := s.ConnectionUpsert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return &testBundle{store: s, url: serveIngest(t, s, opts)}
}

func post(t testing.TB, url string, body []byte, header http.Header) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("response %d is not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func stripeHeader(body []byte) http.Header {
	return http.Header{
		"Content-Type":     {"application/json"},
		"Stripe-Signature": {verify.SignStripe(stripeSecret, time.Now(), body)},
	}
}

func TestAcceptFanOutAndDedup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	body := []byte(`{"id":"evt_1","type":"checkout.session.completed","data":{"object":{"id":"cs_1"}}}`)
	code, res := post(t, b.url+"/e/stripe", body, stripeHeader(body))
	if code != 200 || res["duplicate"] != false || res["event_id"] == "" || res["request_id"] == "" {
		t.Fatalf("first: %d %v", code, res)
	}
	eventID := res["event_id"].(string)
	ev, err := b.store.EventGetByID(ctx, eventID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "checkout.session.completed" || ev.DedupKey != "evt_1" || ev.Deliveries != 2 {
		t.Errorf("event = %+v", ev)
	}
	req, err := b.store.RequestGetByID(ctx, res["request_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(req.Body, body) {
		t.Errorf("stored body differs: %q", req.Body)
	}

	// The provider retries: 200, flagged duplicate, same event, no deliveries.
	code, res = post(t, b.url+"/e/stripe", body, stripeHeader(body))
	if code != 200 || res["duplicate"] != true || res["event_id"] != eventID {
		t.Fatalf("retry: %d %v", code, res)
	}
	ds, err := b.store.DeliveryList(ctx, &store.DeliveryListParams{EventID: eventID})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 {
		t.Errorf("deliveries = %d, want 2", len(ds))
	}

	// Another type only reaches the unfiltered connection.
	other := []byte(`{"id":"evt_2","type":"charge.refunded"}`)
	code, res = post(t, b.url+"/e/stripe", other, stripeHeader(other))
	if code != 200 {
		t.Fatalf("other: %d %v", code, res)
	}
	ds, _ = b.store.DeliveryList(ctx, &store.DeliveryListParams{EventID: res["event_id"].(string)})
	if len(ds) != 1 || ds[0].Destination != "audit" {
		t.Errorf("deliveries for charge.refunded = %+v", ds)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	body := []byte(`{"id":"evt_x","type":"x"}`)
	for _, tt := range []struct {
		name, path string
		body       []byte
		header     http.Header
		code       int
		reason     string
	}{
		{"wrong signature", "/e/stripe", body, http.Header{"Stripe-Signature": {verify.SignStripe("whsec_other", time.Now(), body)}}, 401, "verification failed"},
		{"missing signature", "/e/stripe", body, nil, 401, "verification failed"},
		{"stale timestamp", "/e/stripe", body, http.Header{"Stripe-Signature": {verify.SignStripe(stripeSecret, time.Now().Add(-time.Hour), body)}}, 401, "tolerance"},
		{"unknown source", "/e/nope", body, nil, 404, "unknown source"},
		{"too large", "/e/tiny", bytes.Repeat([]byte("a"), 17), nil, 413, "exceeds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, res := post(t, b.url+tt.path, tt.body, tt.header)
			if code != tt.code {
				t.Fatalf("code = %d, want %d (%v)", code, tt.code, res)
			}
			if !strings.Contains(fmt.Sprint(res["error"]), tt.reason) {
				t.Errorf("error = %v, want it to mention %q", res["error"], tt.reason)
			}
			id, _ := res["request_id"].(string)
			rec, err := b.store.RequestGetByID(ctx, id)
			if err != nil {
				t.Fatalf("rejected request not recorded: %v", err)
			}
			if rec.Status != store.RequestRejected || rec.HTTPStatus != tt.code || !strings.Contains(rec.Reason, tt.reason) {
				t.Errorf("recorded = %+v", rec)
			}
		})
	}
	evs, err := b.store.EventList(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Errorf("rejected requests created %d events", len(evs))
	}
}

func TestOddBodiesAndPathSuffix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name, path string
		body       []byte
		ct         string
		routed     bool
	}{
		{"empty body", "/e/open", nil, "", false},
		{"not json", "/e/open", []byte("hello there"), "text/plain", false},
		{"invalid utf8", "/e/open", []byte{0xff, 0xfe, 0x00, 0x01}, "application/octet-stream", false},
		{"broken json", "/e/open", []byte(`{"a":`), "application/json", false},
		{"suffix routes", "/e/open/keep", []byte(`{}`), "application/json", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, res := post(t, b.url+tt.path, tt.body, http.Header{"Content-Type": {tt.ct}})
			if code != 200 {
				t.Fatalf("code = %d (%v)", code, res)
			}
			ev, err := b.store.EventGetByID(ctx, res["event_id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if got := ev.Status == store.EventRouted; got != tt.routed {
				t.Errorf("status = %s, routed want %v", ev.Status, tt.routed)
			}
			req, _ := b.store.RequestGetByID(ctx, res["request_id"].(string))
			if !bytes.Equal(req.Body, tt.body) {
				t.Errorf("body = %q, want %q", req.Body, tt.body)
			}
			if tt.path == "/e/open/keep" && req.Path != "/keep" {
				t.Errorf("path = %q, want /keep", req.Path)
			}
		})
	}
}

func TestConcurrentDuplicatesOverHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := []byte(`{"id":"same"}`)
	h := http.Header{"X-Signature": {hmacHex("k", body)}, "Content-Type": {"application/json"}}
	const n = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts, events := 0, map[string]bool{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, res := post(t, b.url+"/e/custom", body, h)
			mu.Lock()
			defer mu.Unlock()
			if code != 200 {
				t.Errorf("code %d", code)
				return
			}
			if res["duplicate"] == false {
				firsts++
			}
			events[res["event_id"].(string)] = true
		}()
	}
	wg.Wait()
	if firsts != 1 || len(events) != 1 {
		t.Errorf("first occurrences = %d, distinct events = %d; want 1 and 1", firsts, len(events))
	}
}

func TestStorageDownIs503(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if err := b.store.Close(); err != nil {
		t.Fatal(err)
	}
	code, res := post(t, b.url+"/e/open", []byte(`{}`), nil)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("code = %d (%v), want 503", code, res)
	}
}

// syncBuffer is a log sink safe for the handler's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDedupErrorVisible sends requests whose dedup key cannot be computed:
// each is accepted without deduplication and says why in its answer and
// its event, each is counted, and the warning is logged once per source
// and interval. JSON sent with a form content type (curl -d) is keyed.
func TestDedupErrorVisible(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs syncBuffer
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	failures := map[string]int{}
	b := setupWith(t, &ingest.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Now:    func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		OnDedupError: func(source string) {
			mu.Lock()
			defer mu.Unlock()
			failures[source]++
		},
	})
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	warnings := func() int { return strings.Count(logs.String(), "level=WARN msg=\"ingest: dedup key not computed") }

	var events []string
	for range 3 {
		code, res := post(t, b.url+"/e/keyed", []byte("other=1"), form)
		msg, _ := res["dedup_error"].(string)
		if code != 200 || res["duplicate"] != false || !strings.Contains(msg, "no such key: id") {
			t.Fatalf("form without id: %d %v", code, res)
		}
		events = append(events, res["event_id"].(string))
	}
	if events[0] == events[1] || events[1] == events[2] {
		t.Errorf("requests without a key merged: %v", events)
	}
	ev, err := b.store.EventGetByID(ctx, events[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ev.DedupError, "no such key: id") || ev.DedupKey != "" {
		t.Errorf("event: dedup_key %q, dedup_error %q", ev.DedupKey, ev.DedupError)
	}
	if n := warnings(); n != 1 {
		t.Errorf("%d warnings after 3 failures within the interval, want 1:\n%s", n, logs.String())
	}

	mu.Lock()
	now = now.Add(ingest.DefaultDedupWarnEvery)
	mu.Unlock()
	post(t, b.url+"/e/keyed", []byte("other=2"), form)
	if n := warnings(); n != 2 || !strings.Contains(logs.String(), "since_last_warning=2") {
		t.Errorf("%d warnings after the interval, want 2 (the second counting 2 held back):\n%s", n, logs.String())
	}
	mu.Lock()
	if failures["keyed"] != 4 || len(failures) != 1 {
		t.Errorf("OnDedupError calls: %v, want keyed:4", failures)
	}
	mu.Unlock()

	// JSON sent as a form, as curl -d does, is keyed like JSON.
	_, first := post(t, b.url+"/e/keyed", []byte(`{"id":"a"}`), form)
	_, second := post(t, b.url+"/e/keyed", []byte(`{"id":"a"}`), form)
	if first["duplicate"] != false || second["duplicate"] != true || first["dedup_error"] != nil {
		t.Errorf("JSON as a form: %v then %v, want a duplicate", first, second)
	}
}

// TestRejectedBodyBounded: a request refused before verification keeps
// its headers, reason, size, the SHA-256 of its body and only a prefix of
// it; a text body is cut on a character boundary.
func TestRejectedBodyBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name       string
		path       string
		body       []byte
		wantPrefix int
		wantHash   bool
	}{
		{"LargeForgery", "/e/stripe", bytes.Repeat([]byte("x"), 1<<20), ingest.DefaultRejectedBodyBytes, true},
		{"SmallForgeryKeptWhole", "/e/stripe", []byte(`{"forged":true}`), len(`{"forged":true}`), false},
		// "é" is two bytes: at an odd offset the cut would split one.
		{"TextCutOnRune", "/e/stripe", append([]byte("x"), bytes.Repeat([]byte("é"), 4096)...), ingest.DefaultRejectedBodyBytes - 1, true},
		{"TooLarge", "/e/tiny", bytes.Repeat([]byte("a"), 17), 16, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, res := post(t, b.url+tt.path, tt.body, http.Header{"X-Probe": {tt.name}, "Stripe-Signature": {"t=1,v1=00"}})
			if code != http.StatusUnauthorized && code != http.StatusRequestEntityTooLarge {
				t.Fatalf("code = %d (%v)", code, res)
			}
			rec, err := b.store.RequestGetByID(ctx, res["request_id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Body) != tt.wantPrefix || !bytes.Equal(rec.Body, tt.body[:tt.wantPrefix]) {
				t.Errorf("stored %d body bytes, want the first %d", len(rec.Body), tt.wantPrefix)
			}
			if rec.BodySize != int64(len(tt.body)) {
				t.Errorf("body_size = %d, want %d", rec.BodySize, len(tt.body))
			}
			sum := sha256.Sum256(tt.body)
			if want := hex.EncodeToString(sum[:]); tt.wantHash && rec.BodySHA256 != want {
				t.Errorf("body_sha256 = %q, want %q", rec.BodySHA256, want)
			} else if !tt.wantHash && rec.BodySHA256 != "" {
				t.Errorf("body_sha256 = %q for a body kept whole or not read whole", rec.BodySHA256)
			}
			if rec.Headers.Get("X-Probe") != tt.name || rec.Reason == "" {
				t.Errorf("headers or reason lost: %v %q", rec.Headers, rec.Reason)
			}
		})
	}
}
