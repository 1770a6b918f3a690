package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/project"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

// as returns a copy of b whose requests act for p: the API is served
// behind a handler that puts p in each request's context, as the
// authentication in front of it does.
func (b *testBundle) as(t testing.TB, p access.Principal) *testBundle {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.api.ServeHTTP(w, r.WithContext(access.With(r.Context(), p)))
	}))
	t.Cleanup(srv.Close)
	c := *b
	c.url, c.client, c.token = srv.URL, srv.Client(), ""
	return &c
}

// projectA is what project a holds in the isolation tests.
type projectA struct {
	event, request, delivery, task string
}

// seedProjects creates in projects a and b a source stripe, a
// destination billing and a connection between them, and in a alone a
// source onlya; it ingests one event into each and creates a task in a.
func seedProjects(t *testing.T, b *testBundle) projectA {
	t.Helper()
	ctx := context.Background()
	for _, p := range []string{"a", "b"} {
		if err := b.store.SourceUpsert(ctx, &store.Source{Name: p + "/stripe"}); err != nil {
			t.Fatal(err)
		}
		if err := b.store.DestinationUpsert(ctx, &store.Destination{Name: p + "/billing", URL: "http://127.0.0.1:1/" + p}); err != nil {
			t.Fatal(err)
		}
		if err := b.store.ConnectionUpsert(ctx, &store.Connection{Source: p + "/stripe", Destination: p + "/billing"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.store.SourceUpsert(ctx, &store.Source{Name: "a/onlya"}); err != nil {
		t.Fatal(err)
	}
	if err := b.cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var a projectA
	for _, p := range []string{"a", "b"} {
		res := ingestInto(t, b, p)
		if p == "a" {
			a.event, a.request, a.delivery = res.EventID, res.RequestID, res.DeliveryIDs[0]
		}
	}
	tk := &store.Task{ID: "task_of_a", Owner: "api", Project: "a", Tool: "wait_for_event", Wait: &store.TaskWait{Source: "a/stripe", Since: t0}}
	if err := b.store.TaskCreate(ctx, tk); err != nil {
		t.Fatal(err)
	}
	a.task = tk.ID
	return a
}

// ingestInto stores one event of project p's stripe, delivered to its
// billing.
func ingestInto(t *testing.T, b *testBundle, p string) *store.RequestIngestResult {
	t.Helper()
	res, err := b.store.RequestIngest(context.Background(), &store.RequestIngestParams{
		Request:    &store.Request{Source: p + "/stripe", Method: "POST", Path: "", Body: []byte(`{"project":"` + p + `"}`)},
		Event:      &store.Event{Type: "t"},
		Deliveries: []*store.Delivery{{Destination: p + "/billing", ConnectionID: p + "/stripe->billing"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestProjectIsolation walks every route of the API as a principal of
// project b and checks that it neither sees nor changes anything of
// project a: lists hold none of a's rows, and every route that names an
// entry or row of a answers 404 (or, for a body naming a's entries, 400)
// as for a missing one. A route missing from the table fails the test.
func TestProjectIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t, &setupOpts{})
	a := seedProjects(t, b)
	before := snapshotA(t, b, a)
	pb := b.as(t, access.Principal{TokenID: "tok_b", Name: "b-operator", Role: access.RoleOperator, Project: "b"})

	esc := url.PathEscape
	type call struct {
		method, path string
		body         any
		want         int
	}
	table := map[string][]call{
		"GET /api/v1/sources":  {{"GET", "/sources", nil, 200}, {"GET", "/sources?project=a", nil, 404}},
		"POST /api/v1/sources": {{"POST", "/sources", map[string]any{"name": "x", "project": "a"}, 400}, {"POST", "/sources", map[string]any{"name": "a/x"}, 400}},
		"GET /api/v1/sources/{name}": {{"GET", "/sources/" + esc("a/stripe"), nil, 404}, {"GET", "/sources/onlya", nil, 404},
			{"GET", "/sources/stripe?project=a", nil, 404}},
		"PUT /api/v1/sources/{name}":    {{"PUT", "/sources/" + esc("a/stripe"), map[string]any{}, 404}},
		"DELETE /api/v1/sources/{name}": {{"DELETE", "/sources/" + esc("a/stripe"), nil, 404}, {"DELETE", "/sources/onlya", nil, 404}},

		"GET /api/v1/destinations":                {{"GET", "/destinations", nil, 200}},
		"POST /api/v1/destinations":               {{"POST", "/destinations", map[string]any{"name": "x", "project": "a", "url": "http://127.0.0.1:1/"}, 400}},
		"GET /api/v1/destinations/{name}":         {{"GET", "/destinations/" + esc("a/billing"), nil, 404}},
		"PUT /api/v1/destinations/{name}":         {{"PUT", "/destinations/" + esc("a/billing"), map[string]any{"url": "http://127.0.0.1:2/"}, 404}},
		"DELETE /api/v1/destinations/{name}":      {{"DELETE", "/destinations/" + esc("a/billing"), nil, 404}},
		"POST /api/v1/destinations/{name}/pause":  {{"POST", "/destinations/" + esc("a/billing") + "/pause", nil, 404}},
		"POST /api/v1/destinations/{name}/resume": {{"POST", "/destinations/" + esc("a/billing") + "/resume", nil, 404}},

		"GET /api/v1/connections":         {{"GET", "/connections", nil, 200}},
		"POST /api/v1/connections":        {{"POST", "/connections", map[string]any{"source": "a/stripe", "destination": "a/billing"}, 400}, {"POST", "/connections", map[string]any{"source": "stripe", "destination": "a/billing"}, 400}},
		"GET /api/v1/connections/{id}":    {{"GET", "/connections/" + esc("a/stripe->billing"), nil, 404}},
		"PUT /api/v1/connections/{id}":    {{"PUT", "/connections/" + esc("a/stripe->billing"), map[string]any{"source": "stripe", "destination": "billing"}, 404}},
		"DELETE /api/v1/connections/{id}": {{"DELETE", "/connections/" + esc("a/stripe->billing"), nil, 404}},
		"POST /api/v1/connections/{id}/transform/test": {{"POST", "/connections/" + esc("a/stripe->billing") + "/transform/test", map[string]any{"event_id": a.event}, 404},
			{"POST", "/connections/" + esc("stripe->billing") + "/transform/test", map[string]any{"event_id": a.event, "transform": "function handler(r) { return r }"}, 404}},

		"GET /api/v1/requests":      {{"GET", "/requests", nil, 200}, {"GET", "/requests?source=" + esc("a/stripe"), nil, 200}, {"GET", "/requests?event_id=" + a.event, nil, 200}},
		"GET /api/v1/requests/{id}": {{"GET", "/requests/" + a.request, nil, 404}},

		"GET /api/v1/events":                       {{"GET", "/events", nil, 200}, {"GET", "/events?source=onlya", nil, 200}},
		"GET /api/v1/events/stream":                nil, // TestProjectIsolationListen
		"GET /api/v1/events/{id}":                  {{"GET", "/events/" + a.event, nil, 404}},
		"POST /api/v1/events/{id}/listen-attempts": {{"POST", "/events/" + a.event + "/listen-attempts", map[string]any{"session": "s1", "status_code": 200}, 404}},
		"POST /api/v1/events/{id}/replay":          {{"POST", "/events/" + a.event + "/replay", nil, 404}},

		"GET /api/v1/deliveries":               {{"GET", "/deliveries", nil, 200}, {"GET", "/deliveries?destination=" + esc("a/billing"), nil, 200}},
		"POST /api/v1/deliveries/retry":        {{"POST", "/deliveries/retry", map[string]any{"status": "pending"}, 200}, {"POST", "/deliveries/retry", map[string]any{"destination": "a/billing", "status": "pending"}, 200}},
		"GET /api/v1/deliveries/{id}":          {{"GET", "/deliveries/" + a.delivery, nil, 404}},
		"GET /api/v1/deliveries/{id}/attempts": {{"GET", "/deliveries/" + a.delivery + "/attempts", nil, 404}},
		"POST /api/v1/deliveries/{id}/retry":   {{"POST", "/deliveries/" + a.delivery + "/retry", nil, 404}},
		"GET /api/v1/stats":                    {{"GET", "/stats", nil, 200}},
		"GET /api/v1/tasks":                    {{"GET", "/tasks", nil, 200}, {"GET", "/tasks?project=a", nil, 404}},
		"GET /api/v1/tasks/{id}":               {{"GET", "/tasks/" + a.task, nil, 404}},
		"POST /api/v1/tasks":                   {{"POST", "/tasks", map[string]any{"source": "a/stripe"}, 400}, {"POST", "/tasks", map[string]any{"source": "onlya"}, 400}},
		"POST /api/v1/tasks/{id}/cancel":       {{"POST", "/tasks/" + a.task + "/cancel", nil, 404}},
		"GET /api/v1/alerts":                   {{"GET", "/alerts", nil, 200}},
		"GET /api/v1/projects":                 {{"GET", "/projects", nil, 200}, {"GET", "/projects?project=a", nil, 404}},
		"POST /api/v1/reload":                  nil, // not a project's: who may reload is a role's question
		// Tokens and the audit log span projects: an admin's alone.
		"GET /api/v1/tokens":         {{"GET", "/tokens", nil, 403}},
		"POST /api/v1/tokens":        {{"POST", "/tokens", map[string]any{"name": "x", "role": "admin"}, 403}},
		"DELETE /api/v1/tokens/{id}": {{"DELETE", "/tokens/tok_x", nil, 403}},
		"GET /api/v1/audit":          {{"GET", "/audit", nil, 403}},
		"GET /api/v1/openapi.json":   nil, // the document, the same for everyone
	}
	// What of a must never show in b's answers.
	secrets := []string{a.event, a.request, a.delivery, a.task, "a/stripe", "a/billing", "a/onlya", `"project": "a"`}
	for _, pattern := range b.api.Patterns() {
		calls, ok := table[pattern]
		if !ok {
			t.Errorf("route %q is not in the isolation table: add what a principal of another project may and may not do on it", pattern)
			continue
		}
		for _, c := range calls {
			r := pb.do(t, c.method, "/api/v1"+c.path, c.body)
			if r.status != c.want {
				t.Errorf("%s %s as b: status %d, want %d; body %s", c.method, c.path, r.status, c.want, r.body)
			}
			sent, _ := json.Marshal(c.body)
			for _, s := range secrets {
				echoed := strings.Contains(c.path, url.PathEscape(s)) || strings.Contains(c.path, s) || strings.Contains(string(sent), s)
				if strings.Contains(string(r.body), s) && !echoed {
					t.Errorf("%s %s as b shows %q of project a: %s", c.method, c.path, s, r.body)
				}
			}
		}
	}
	// b's own lists do show b's rows.
	evs := must[struct{ Data []store.Event }](t, pb.do(t, "GET", "/api/v1/events", nil), 200)
	if len(evs.Data) != 1 || evs.Data[0].Source != "b/stripe" {
		t.Errorf("b's events: %+v", evs.Data)
	}
	srcs := must[struct{ Data []store.Source }](t, pb.do(t, "GET", "/api/v1/sources", nil), 200)
	if len(srcs.Data) != 1 || srcs.Data[0].Name != "b/stripe" || srcs.Data[0].Project != "b" {
		t.Errorf("b's sources: %+v", srcs.Data)
	}
	// A short name is b's own: b's stripe, not a's.
	if r := pb.do(t, "GET", "/api/v1/sources/stripe", nil); r.status != 200 || !strings.Contains(string(r.body), `"b/stripe"`) {
		t.Errorf("GET /sources/stripe as b: %d %s", r.status, r.body)
	}
	// And nothing of a changed.
	if after := snapshotA(t, b, a); after != before {
		t.Errorf("project a changed:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshotA is what the isolation test compares before and after: a's
// entries and rows as stored.
func snapshotA(t *testing.T, b *testBundle, a projectA) string {
	t.Helper()
	ctx := context.Background()
	var parts []any
	for _, get := range []func() (any, error){
		func() (any, error) { return b.store.SourceGet(ctx, "a/stripe") },
		func() (any, error) { return b.store.SourceGet(ctx, "a/onlya") },
		func() (any, error) { return b.store.DestinationGet(ctx, "a/billing") },
		func() (any, error) { return b.store.ConnectionGet(ctx, "a/stripe->billing") },
		func() (any, error) { return b.store.EventGetByID(ctx, a.event) },
		func() (any, error) { return b.store.DeliveryGetByID(ctx, a.delivery) },
		func() (any, error) { return b.store.DeliveryList(ctx, &store.DeliveryListParams{Project: "a"}) },
		func() (any, error) { return b.store.TaskGet(ctx, a.task, time.Time{}) },
	} {
		v, err := get()
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, v)
	}
	out, err := json.Marshal(parts)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestProjectIsolationListen checks the event stream `mailroom listen`
// follows: a principal of b receives b's events, past and new, and none
// of a's.
func TestProjectIsolationListen(t *testing.T) {
	t.Parallel()
	b := setup(t, &setupOpts{})
	a := seedProjects(t, b)
	pb := b.as(t, access.Principal{TokenID: "tok_b", Role: access.RoleViewer, Project: "b"})
	if r := pb.do(t, "GET", "/api/v1/events/stream?after="+a.event, nil); r.status != 404 {
		t.Errorf("stream after a's event: %d %s", r.status, r.body)
	}
	if r := pb.do(t, "GET", "/api/v1/events/stream?source="+url.QueryEscape("a/stripe"), nil); r.status != 404 {
		t.Errorf("stream of a's source: %d %s", r.status, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", pb.url+"/api/v1/events/stream?since=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := pb.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	next := func() string { // the id of the next streamed event
		for lines.Scan() {
			if id, ok := strings.CutPrefix(lines.Text(), "id: "); ok {
				return id
			}
		}
		t.Fatalf("stream ended: %v", lines.Err())
		return ""
	}
	// The past: b's one event, never a's.
	first := next()
	if ev, err := b.store.EventGetByID(ctx, first); err != nil || ev.Project != "b" {
		t.Fatalf("first streamed event %s: %+v, %v", first, ev, err)
	}
	// New events: one of a, then one of b; the next one streamed is b's.
	ingestInto(t, b, "a")
	newB := ingestInto(t, b, "b").EventID
	if got := next(); got != newB {
		t.Errorf("streamed %s, want b's new event %s", got, newB)
	}
}

// TestProjectLimitsAPI checks max_destinations (a clear 409 past the
// limit, per project) and GET /projects as an admin and as a principal
// of one project.
func TestProjectLimitsAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(s, compiler, &catalog.Options{Refresh: time.Hour})
	if err := cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	projects := project.New([]project.Config{{Name: "acme", MaxDestinations: 1, IngestRate: "5/s", Retention: store.Duration(72 * time.Hour)}})
	a := api.New(s, cat, &api.Options{Projects: projects})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b := &testBundle{store: s, cat: cat, api: a, url: srv.URL, client: srv.Client()}
	acme := b.as(t, access.Principal{TokenID: "t", Role: access.RoleOperator, Project: "acme"})

	if r := acme.do(t, "POST", "/api/v1/destinations", map[string]any{"name": "one", "url": "http://127.0.0.1:1/"}); r.status != 201 {
		t.Fatalf("first destination: %d %s", r.status, r.body)
	}
	r := acme.do(t, "POST", "/api/v1/destinations", map[string]any{"name": "two", "url": "http://127.0.0.1:1/"})
	if r.status != 409 || !strings.Contains(r.errorMessage(t), `max_destinations reached: project "acme" has 1 destinations and allows 1`) {
		t.Errorf("second destination: %d %s", r.status, r.body)
	}
	// Replacing the one it has is no new destination.
	if r := acme.do(t, "PUT", "/api/v1/destinations/one", map[string]any{"url": "http://127.0.0.1:2/"}); r.status != 200 {
		t.Errorf("replace: %d %s", r.status, r.body)
	}
	// The default project has no limit.
	for _, n := range []string{"d1", "d2"} {
		if r := b.do(t, "POST", "/api/v1/destinations", map[string]any{"name": n, "url": "http://127.0.0.1:1/"}); r.status != 201 {
			t.Errorf("default project's %s: %d %s", n, r.status, r.body)
		}
	}
	// A default-project source may not take a project's name, nor a
	// project hold sources while a default source has its name.
	if r := b.do(t, "POST", "/api/v1/sources", map[string]any{"name": "acme"}); r.status != 400 || !strings.Contains(r.errorMessage(t), "is the name of a project") {
		t.Errorf("default source named acme: %d %s", r.status, r.body)
	}
	if r := b.do(t, "POST", "/api/v1/sources", map[string]any{"name": "shop"}); r.status != 201 {
		t.Fatalf("source shop: %d %s", r.status, r.body)
	}
	if r := b.do(t, "POST", "/api/v1/sources", map[string]any{"name": "x", "project": "shop"}); r.status != 400 || !strings.Contains(r.errorMessage(t), "rename that source first") {
		t.Errorf("project shop's source: %d %s", r.status, r.body)
	}

	type view struct {
		Name            string `json:"name"`
		IngestRate      string `json:"ingest_rate"`
		MaxDestinations int    `json:"max_destinations"`
		Retention       string `json:"retention"`
		Declared        bool   `json:"declared"`
		Destinations    int    `json:"destinations"`
		Sources         int    `json:"sources"`
	}
	all := must[struct{ Data []view }](t, b.do(t, "GET", "/api/v1/projects", nil), 200)
	if len(all.Data) != 2 || all.Data[0].Name != "acme" || all.Data[0].MaxDestinations != 1 || all.Data[0].IngestRate != "5/s" ||
		all.Data[0].Retention != "72h0m0s" || !all.Data[0].Declared || all.Data[0].Destinations != 1 ||
		all.Data[1].Name != "default" || all.Data[1].Declared || all.Data[1].Destinations != 2 || all.Data[1].Sources != 1 {
		t.Errorf("projects as admin: %+v", all.Data)
	}
	own := must[struct{ Data []view }](t, acme.do(t, "GET", "/api/v1/projects", nil), 200)
	if len(own.Data) != 1 || own.Data[0].Name != "acme" {
		t.Errorf("projects as acme: %+v", own.Data)
	}
}
