package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/preview"
	"github.com/mailroomhq/mailroom/internal/store"
)

// TestConnectionTransformValidated: a connection whose transformation
// does not compile, or defines no handler, is refused with a 400 naming
// the field; a good one is stored and shown.
func TestConnectionTransformValidated(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)
	for _, tt := range []struct{ script, want string }{
		{"function handler(r) {", "transform: compile: SyntaxError"},
		{"function handle(r) { return r }", "transform: the script defines no function handler"},
	} {
		r := b.do(t, http.MethodPost, "/api/v1/connections", map[string]string{"id": "x", "source": "github", "destination": "audit", "transform": tt.script})
		if r.status != http.StatusBadRequest || !strings.HasPrefix(r.errorMessage(t), tt.want) {
			t.Errorf("create with %q = %d %s, want 400 %q", tt.script, r.status, r.body, tt.want)
		}
	}
	const good = "function handler(r) { return r }"
	c := must[store.Connection](t, b.do(t, http.MethodPost, "/api/v1/connections", map[string]string{"source": "github", "destination": "audit", "transform": good}), http.StatusCreated)
	if c.Transform != good {
		t.Errorf("stored transform = %q, want %q", c.Transform, good)
	}
}

// TestTransformTest runs a connection's transformation, and an inline
// script, against a stored event: input, output and log are shown with
// credential headers masked, nothing is delivered, and a throw is an
// answer that says so.
func TestTransformTest(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)
	ctx := context.Background()
	if err := b.store.DestinationUpsert(ctx, &store.Destination{Name: "audit", URL: "http://127.0.0.1:1/audit?v=1", Headers: map[string]string{"Authorization": "Bearer dest-token"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "audit",
		Transform: "function handler(r, ev) { console.log('type', r.body.type); r.body = {t: r.body.type, src: ev.source}; r.path = '/v2'; return r }"}); err != nil {
		t.Fatal(err)
	}
	res := ingest(t, b.store, ingestOpts{source: "stripe", body: `{"type":"invoice.paid"}`, dests: []string{"audit"}})
	path := "/api/v1/connections/" + store.ConnectionID("stripe", "audit") + "/transform/test"

	got := must[preview.Result](t, b.do(t, http.MethodPost, path, map[string]string{"event_id": res.EventID}), http.StatusOK)
	if got.Error != "" || got.Output == nil {
		t.Fatalf("test = %+v, want an output", got)
	}
	if s := compact(t, got.Input.Body); s != `{"type":"invoice.paid"}` {
		t.Errorf("input body = %s", s)
	}
	if got.Input.Path != "/audit" || got.Input.Query["v"][0] != "1" || got.Input.Headers["authorization"][0] != "********" {
		t.Errorf("input = %+v, want the destination's path, query and masked Authorization", got.Input)
	}
	if s := compact(t, got.Output.Body); s != `{"t":"invoice.paid","src":"stripe"}` || got.Output.Path != "/v2" {
		t.Errorf("output = %s %s", got.Output.Path, s)
	}
	if len(got.Log) != 1 || got.Log[0] != "type invoice.paid" {
		t.Errorf("log = %q", got.Log)
	}

	got = must[preview.Result](t, b.do(t, http.MethodPost, path, map[string]string{"event_id": res.EventID, "transform": "function handler(r) { throw new TypeError('nope') }"}), http.StatusOK)
	if got.Output != nil || !strings.Contains(got.Error, "TypeError: nope") || got.Input == nil {
		t.Errorf("throwing test = %+v, want the error and the input", got)
	}
	for _, tt := range []struct {
		path   string
		body   any
		status int
		msg    string
	}{
		{path, map[string]string{}, http.StatusBadRequest, "event_id: required"},
		{path, map[string]string{"event_id": "evt_missing"}, http.StatusNotFound, `event "evt_missing" not found`},
		{path, map[string]string{"event_id": res.EventID, "transform": "function("}, http.StatusBadRequest, "transform: compile"},
		{"/api/v1/connections/nope/transform/test", map[string]string{"event_id": res.EventID}, http.StatusNotFound, `connection "nope" not found`},
		{"/api/v1/connections/" + store.ConnectionID("stripe", "billing") + "/transform/test", map[string]string{"event_id": res.EventID}, http.StatusBadRequest, "has no transform"},
	} {
		r := b.do(t, http.MethodPost, tt.path, tt.body)
		if r.status != tt.status || !strings.Contains(r.errorMessage(t), tt.msg) {
			t.Errorf("POST %s %v = %d %s, want %d %q", tt.path, tt.body, r.status, r.body, tt.status, tt.msg)
		}
	}
	d, err := b.store.DeliveryGetByID(ctx, res.DeliveryIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	if d.Attempts != 0 {
		t.Errorf("delivery attempts = %d after tests, want 0: a test delivers nothing", d.Attempts)
	}
}

func compact(t testing.TB, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("compact %s: %v", b, err)
	}
	return out.String()
}
