package deliver_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v84/github"

	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/transform"
)

// transforms maps connection ids to scripts, swappable while the
// dispatcher runs (as a catalog reload swaps them).
type transforms struct {
	mu    sync.Mutex
	progs map[string]*transform.Program
}

func (tf *transforms) set(t testing.TB, conn, script string, opts *transform.Options) {
	t.Helper()
	p, err := transform.Compile(script, opts)
	if err != nil {
		t.Fatal(err)
	}
	tf.mu.Lock()
	defer tf.mu.Unlock()
	if tf.progs == nil {
		tf.progs = map[string]*transform.Program{}
	}
	tf.progs[conn] = p
}

func (tf *transforms) lookup(conn string) (*transform.Program, error) {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	return tf.progs[conn], nil
}

// TestTransformRewritesDelivery: the destination receives what the
// transformation returned (path, query, headers, body), signed over the
// rewritten body, with mailroom's own headers still set; a destination of
// the same event without a transformation gets the original.
func TestTransformRewritesDelivery(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	var mu sync.Mutex
	var target string
	gh := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		target = r.Method + " " + r.URL.RequestURI()
		mu.Unlock()
	})
	plain := newReceiver(t, nil)
	var tf transforms
	tf.set(t, store.ConnectionID("src", "gh"), `
function handler(request, event) {
  request.body = {kind: request.body.type, provider: event.headers["x-provider"], event: event.id};
  request.path = "/v2" + request.path;
  request.query.team = "billing";
  request.headers["x-kind"] = request.body.kind;
  request.headers["webhook-id"] = "forged";
  request.method = "PUT";
  return request;
}`, nil)
	start(t, s, &deliver.Options{Transforms: tf.lookup})
	addDest(t, s, &store.Destination{Name: "gh", URL: gh.srv.URL + "/hooks?v=1", Sign: store.SignConfig{Type: "github", Secret: "gh-secret"}})
	addDest(t, s, &store.Destination{Name: "plain", URL: plain.srv.URL + "/p"})
	body := []byte(`{"type":"invoice.paid","data":{"amount":1200}}`)
	res := ingest(t, s, body, "application/json", "gh", "plain")
	for _, id := range res.DeliveryIDs {
		waitStatus(t, s, id, store.DeliverySucceeded)
	}
	hits := gh.all()
	if len(hits) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(hits))
	}
	h := hits[0]
	mu.Lock()
	if got, want := target, "PUT /v2/hooks?team=billing&v=1"; got != want {
		t.Errorf("request line = %q, want %q", got, want)
	}
	mu.Unlock()
	if got, want := string(h.body), fmt.Sprintf(`{"kind":"invoice.paid","provider":"test","event":%q}`, res.EventID); got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	if got := h.header.Get("X-Kind"); got != "invoice.paid" {
		t.Errorf("X-Kind = %q, want invoice.paid", got)
	}
	if got := h.header.Get("Webhook-Id"); got != res.EventID {
		t.Errorf("webhook-id = %q, want the event id %q (mailroom's headers are set after the script)", got, res.EventID)
	}
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(h.body))
	r.Header = h.header
	if _, err := github.ValidatePayload(r, []byte("gh-secret")); err != nil {
		t.Errorf("signature does not cover the rewritten body: %v", err)
	}
	if p := plain.all(); len(p) != 1 || !bytes.Equal(p[0].body, body) {
		t.Errorf("untransformed destination got %v, want the original body", p)
	}
}

// TestTransformFailureFailsAttempt: a script that throws, or loops past
// its budget, fails the attempt with its reason (and console log) on the
// attempt and the delivery; the delivery is retried, and once the script
// is fixed the retry delivers.
func TestTransformFailureFailsAttempt(t *testing.T) {
	t.Parallel()
	// The budget is wall-clock time: only the looping script gets a short
	// one, so that the others do not run out of it on a loaded machine
	// under -race.
	const roomy = 10 * time.Second
	for _, tt := range []struct {
		name, script, want string
		budget             time.Duration
	}{
		{"throw", "function handler(r) {\n  console.log('checking', r.body.n);\n  throw new Error('no customer for ' + r.body.n)\n}",
			"transform: transformation threw: Error: no customer for 7 at handler (transform.js:3:", roomy},
		{"infinite loop", "function handler(r) { while (true) {} }",
			"transform: transformation ran out of time: stopped after its budget of 30ms", 30 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			rc := newReceiver(t, nil)
			var tf transforms
			conn := store.ConnectionID("src", "d")
			tf.set(t, conn, tt.script, &transform.Options{Timeout: tt.budget})
			start(t, s, &deliver.Options{Transforms: tf.lookup})
			addDest(t, s, &store.Destination{Name: "d", URL: rc.srv.URL, Retry: store.RetryPolicy{Initial: store.Duration(time.Hour)}})
			res := ingest(t, s, []byte(`{"n":7}`), "application/json", "d")
			id := res.DeliveryIDs[0]
			waitFor(t, "a failed attempt", func() bool { return getDelivery(t, s, id).LastError != "" })
			dl := getDelivery(t, s, id)
			if dl.Status != store.DeliveryPending || !strings.HasPrefix(dl.LastError, tt.want) {
				t.Fatalf("delivery = %s %q, want pending with %q", dl.Status, dl.LastError, tt.want)
			}
			if tt.name == "throw" && !strings.HasSuffix(dl.LastError, "; console: checking 7") {
				t.Errorf("error %q does not quote the console log", dl.LastError)
			}
			if a := listAttempts(t, s, id); len(a) != 1 || a[0].Error != dl.LastError || a[0].StatusCode != 0 {
				t.Errorf("attempts = %+v, want one with the error and no status", a)
			}
			if rc.count() != 0 {
				t.Errorf("destination got %d requests, want none", rc.count())
			}
			tf.set(t, conn, "function handler(r) { r.body.fixed = true; return r }", &transform.Options{Timeout: roomy})
			if _, err := s.DeliveryRetry(context.Background(), id, time.Now()); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, s, id, store.DeliverySucceeded)
			if h := rc.all(); len(h) != 1 || string(h[0].body) != `{"n":7,"fixed":true}` {
				t.Errorf("after the fix the destination got %v", h)
			}
		})
	}
}

// BenchmarkDelivery measures deliveries end to end (claim, send to a
// loopback receiver, record) without and with a transformation, so that
// their ratio is the cost a transformation adds to a delivery.
func BenchmarkDelivery(b *testing.B) {
	for _, bb := range []struct{ name, script string }{
		{"plain", ""},
		{"transform", "function handler(r) { const o = r.body.data.object; r.body = {order: o.metadata.order, amount: o.amount_total / 100}; r.headers['x-event-type'] = r.body.type || 'checkout'; return r }"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			s := newStore(b)
			var got atomic.Int64
			rc := newReceiver(b, func(w http.ResponseWriter, r *http.Request, n int) { got.Add(1) })
			var tf transforms
			if bb.script != "" {
				tf.set(b, store.ConnectionID("src", "d"), bb.script, nil)
			}
			addDest(b, s, &store.Destination{Name: "d", URL: rc.srv.URL, MaxConcurrency: 8})
			body := []byte(`{"id":"evt_1","type":"checkout.session.completed","data":{"object":{"id":"cs_1","amount_total":1200,"currency":"usd","metadata":{"order":"42"}}}}`)
			ingestConcurrently(b, s, b.N, func(int) []byte { return body }, "d")
			b.ResetTimer()
			cpu := cpuTime(b)
			start(b, s, &deliver.Options{Transforms: tf.lookup, PollInterval: time.Millisecond})
			for got.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/delivery")
			b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/delivery")
		})
	}
}

// TestTransformLookupErrorFailsAttempt: a connection whose script does not
// compile (as the catalog reports it) fails its attempts with that error
// rather than deliver the request untransformed.
func TestTransformLookupErrorFailsAttempt(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	rc := newReceiver(t, nil)
	lookup := func(conn string) (*transform.Program, error) {
		return nil, fmt.Errorf("connection %s: transform: the script defines no function handler", conn)
	}
	start(t, s, &deliver.Options{Transforms: lookup})
	addDest(t, s, &store.Destination{Name: "d", URL: rc.srv.URL, Retry: store.RetryPolicy{Initial: store.Duration(time.Hour)}})
	id := ingest(t, s, []byte(`{}`), "application/json", "d").DeliveryIDs[0]
	waitFor(t, "a failed attempt", func() bool { return getDelivery(t, s, id).LastError != "" })
	if got, want := getDelivery(t, s, id).LastError, "transform: connection src->d: transform: the script defines no function handler"; got != want {
		t.Errorf("last error = %q, want %q", got, want)
	}
	if rc.count() != 0 {
		t.Errorf("the destination got %d requests, want none", rc.count())
	}
}
