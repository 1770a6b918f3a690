package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/mailroomhq/mailroom/internal/alert"
	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/httpguard"
	ingesthttp "github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/reload"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/postgres/pgtest"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/task"
)

// specFile is the document as written, relative to this package.
const specFile = "internal/api/openapi.yaml"

// loadSpec loads the document the API serves and checks that it is a
// valid OpenAPI 3.1 document.
func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := api.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(doc)
	if err != nil {
		t.Fatalf("load %s: %v", specFile, err)
	}
	if !spec.IsOpenAPI31OrLater() || spec.IsOpenAPI32OrLater() {
		t.Fatalf("%s: openapi is %q, want 3.1.x", specFile, spec.OpenAPI)
	}
	if err := spec.Validate(loader.Context); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", specFile, err)
	}
	return spec
}

// specPath turns a route pattern of the router ("GET
// /api/v1/sources/{name}") into its method and its path in the document
// ("/sources/{name}").
func specPath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.TrimPrefix(path, strings.TrimSuffix(api.Prefix, "/"))
	return method, strings.ReplaceAll(path, "...}", "}")
}

// TestOpenAPIRoutes checks that the document and the router agree: every
// route the router serves is described, and every operation described is
// served.
func TestOpenAPIRoutes(t *testing.T) {
	spec := loadSpec(t)
	b := setup(t, nil)
	served := map[string]bool{}
	for _, p := range b.api.Patterns() {
		method, path := specPath(p)
		served[method+" "+path] = true
		item := spec.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf(`route %q is not in %s. Add it under paths:
  %s:
    %s:
      tags: [...]            # one of the tags at the top
      operationId: ...       # unique, lowerCamelCase
      summary: ...
      parameters: [...]      # path parameters, every query parameter it takes, headers it reads
      requestBody: ...       # if it reads a body: application/json with a schema under components/schemas
      responses:             # every status it answers: its success with its schema, and the errors
                             # (components/responses BadRequest, Unauthorized, Forbidden, NotFound,
                             # Conflict, TooLarge, UnsupportedMediaType, Unavailable, ...)
and call it in TestOpenAPIScenario (internal/api/openapi_test.go) with real data, so that its requests and responses are validated against the document`,
				p, specFile, path, strings.ToLower(method))
		}
	}
	for path, item := range spec.Paths.Map() {
		for method := range item.Operations() {
			if !served[method+" "+path] {
				t.Errorf("%s describes %s %s%s, which the router does not serve: remove it or add the route", specFile, method, strings.TrimSuffix(api.Prefix, "/"), path)
			}
		}
	}
}

// TestOpenAPIJSONServed checks that GET /api/v1/openapi.json serves the
// document, as JSON in the order written, behind the token like the rest
// of the API.
func TestOpenAPIJSONServed(t *testing.T) {
	b := setup(t, nil)
	r := b.do(t, "GET", "/api/v1/openapi.json", nil)
	want, err := api.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK || !bytes.Equal(r.body, want) {
		t.Fatalf("GET openapi.json: status %d, body of %d bytes, want 200 and the %d bytes of OpenAPIJSON", r.status, len(r.body), len(want))
	}
	if !bytes.HasPrefix(r.body, []byte("{\n  \"openapi\": \"3.1.0\",\n  \"info\"")) {
		t.Errorf("the keys are not in the order written: %.60s", r.body)
	}
	if r := b.doWith(t, "GET", "/api/v1/openapi.json", nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("without the token: status %d, want 401", r.status)
	}
}

// scenario drives a real server (the API, ingest and the guard on
// loopback, a dispatcher delivering to a local receiver, the alert
// monitor, the reloader, the task runner) and validates every request and
// response against the document.
type scenario struct {
	t      *testing.T
	spec   *openapi3.T
	router routers.Router
	url    string
	token  string
	client *http.Client
	// covered records the routes called and the statuses they answered.
	covered map[string][]int
	// sent records, per route, the parameters sent in valid requests
	// ("query limit", "header Last-Event-ID").
	sent map[string]map[string]bool
}

// call is one request of the scenario.
type call struct {
	method, path string
	// body is sent as JSON unless it is a string or []byte (sent as is);
	// nil sends none.
	body any
	// want is the status expected.
	want int
	// invalid marks a request that breaks the document on purpose (to
	// draw an error): only its response is validated.
	invalid bool
	// edit changes the request after it is matched to its route.
	edit func(*http.Request)
}

// do sends c, validates the request (unless c.invalid) and the response
// against the document, checks the status and returns the body.
func (s *scenario) do(c call) []byte {
	s.t.Helper()
	var raw []byte
	switch v := c.body.(type) {
	case nil:
	case string:
		raw = []byte(v)
	case []byte:
		raw = v
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			s.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(c.method, s.url+c.path, bytes.NewReader(raw))
	if err != nil {
		s.t.Fatal(err)
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	rt, params, err := s.router.FindRoute(req)
	if err != nil {
		s.t.Fatalf("%s %s: no operation of the document matches: %v", c.method, c.path, err)
	}
	if c.edit != nil {
		c.edit(req)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: rt,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerPresent, IncludeResponseStatus: true}}
	if !c.invalid {
		s.checkQueryDocumented(rt, req)
		s.recordParams(rt, req)
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			s.t.Errorf("%s %s: the request does not match the document: %v\n%s", c.method, c.path, err, specHint)
		}
		req.Body = http.NoBody // validation read it
		if len(raw) > 0 {
			req.Body = io.NopCloser(bytes.NewReader(raw))
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	s.validateResponse(in, resp, body)
	if resp.StatusCode != c.want {
		s.t.Fatalf("%s %s: status %d, want %d; body %s", c.method, c.path, resp.StatusCode, c.want, body)
	}
	return body
}

// validateResponse checks resp (whose body is body) against the
// operation in answers and records the route as covered.
func (s *scenario) validateResponse(in *openapi3filter.RequestValidationInput, resp *http.Response, body []byte) {
	s.t.Helper()
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true,
			ExcludeResponseBody: strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")}}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		s.t.Errorf("%s %s: the %d response does not match the document: %v\nbody: %.2000s\n%s", in.Request.Method, in.Request.URL, resp.StatusCode, err, body, specHint)
	}
	key := in.Request.Method + " " + in.Route.Path
	s.covered[key] = append(s.covered[key], resp.StatusCode)
}

// specHint follows every mismatch between the API and the document.
const specHint = "If the API changed on purpose, describe the change in " + specFile +
	" (the operation's parameters, requestBody or responses, or the schema under components/schemas that the error names; " +
	"`false schema` at /field means the schema does not list that field); if not, the API broke its contract."

// checkQueryDocumented fails for a query parameter of req that the
// operation of rt does not describe: kin-openapi ignores those, but the
// API answers 400 to a parameter it does not take, so each one it takes
// must be in the document.
func (s *scenario) checkQueryDocumented(rt *routers.Route, req *http.Request) {
	s.t.Helper()
	for name := range req.URL.Query() {
		if rt.Operation.Parameters.GetByInAndName(openapi3.ParameterInQuery, name) == nil &&
			rt.PathItem.Parameters.GetByInAndName(openapi3.ParameterInQuery, name) == nil {
			s.t.Errorf("%s %s: query parameter %q is not in %s: add it under paths: %s: %s: parameters (name, in: query, description, schema)",
				req.Method, req.URL, name, specFile, rt.Path, strings.ToLower(req.Method))
		}
	}
}

// recordParams records the parameters of the operation of rt that req
// sends.
func (s *scenario) recordParams(rt *routers.Route, req *http.Request) {
	key := req.Method + " " + rt.Path
	if s.sent[key] == nil {
		s.sent[key] = map[string]bool{}
	}
	for name := range req.URL.Query() {
		s.sent[key]["query "+name] = true
	}
	for name := range req.Header {
		s.sent[key]["header "+name] = true
	}
}

// checkParamsSent fails for a query or header parameter of the document
// that no valid request of the scenario sent, since its values were then
// never validated. A parameter shared through components/parameters is
// checked once: sending it to one of its routes is enough.
func (s *scenario) checkParamsSent() {
	s.t.Helper()
	shared := map[string]bool{} // refs sent to some route
	for path, item := range s.spec.Paths.Map() {
		for method, op := range item.Operations() {
			for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
				if p.Ref != "" && s.paramSent(method, path, p.Value) {
					shared[p.Ref] = true
				}
			}
		}
	}
	for path, item := range s.spec.Paths.Map() {
		for method, op := range item.Operations() {
			for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
				in := p.Value.In
				if (in == openapi3.ParameterInQuery || in == openapi3.ParameterInHeader) && !shared[p.Ref] && !s.paramSent(method, path, p.Value) {
					s.t.Errorf("%s parameter %q of %s %s is in %s, but no step of TestOpenAPIScenario sends it: add one, so that the document's description of it is checked",
						in, p.Value.Name, method, path, specFile)
				}
			}
		}
	}
}

// paramSent reports whether a valid request of the scenario sent p to
// method path.
func (s *scenario) paramSent(method, path string, p *openapi3.Parameter) bool {
	name := p.Name
	if p.In == openapi3.ParameterInHeader {
		name = http.CanonicalHeaderKey(name)
	}
	return s.sent[method+" "+path][p.In+" "+name]
}

// bearerPresent is the document's bearerAuth as the validator checks it:
// the request carries a bearer token (the server checks its value).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if _, ok := httpguard.BearerToken(in.RequestValidationInput.Request); !ok {
		return fmt.Errorf("no bearer token")
	}
	return nil
}

// decodeAs decodes body into a T.
func decodeAs[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// schemaCheck validates v (decoded JSON) against the named component
// schema.
func (s *scenario) schemaCheck(name string, data []byte) {
	s.t.Helper()
	ref := s.spec.Components.Schemas[name]
	if ref == nil {
		s.t.Fatalf("no schema %s in %s", name, specFile)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		s.t.Fatalf("decode %s: %v", data, err)
	}
	if err := s.spec.ValidateSchemaJSON(ref.Value, v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		s.t.Errorf("%s does not match schema %s: %v", data, name, err)
	}
}

// TestOpenAPIScenario calls every route of the API with real data, on
// each storage driver, and validates each request and response against the
// document.
func TestOpenAPIScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole scenario")
	}
	for _, driver := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"SQLite", func(t *testing.T) store.Store { return sqlitetest.Open(t, nil) }},
		{"PostgreSQL", func(t *testing.T) store.Store { return pgtest.Open(t, nil) }},
	} {
		t.Run(driver.name, func(t *testing.T) {
			t.Parallel()
			runOpenAPIScenario(t, driver.open(t))
		})
	}
}

// runOpenAPIScenario is TestOpenAPIScenario on st.
func runOpenAPIScenario(t *testing.T, st store.Store) {
	spec := loadSpec(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(st, compiler, &catalog.Options{Refresh: time.Hour})
	if err := cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// The config file declares a source, so that reload has something to
	// apply and the API something it must refuse to change.
	cfgPath := filepath.Join(t.TempDir(), "mailroom.yaml")
	writeCfg := func(s string) {
		if err := os.WriteFile(cfgPath, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("sources:\n  - name: from-file\n")
	load := func() (*config.Config, error) {
		data, err := os.ReadFile(cfgPath)
		if err != nil {
			return nil, err
		}
		return config.Parse(data, cfgPath, &config.Options{CheckExpr: compiler.Check})
	}
	running, err := load()
	if err != nil {
		t.Fatal(err)
	}
	reloader := reload.New(st, cat, load, running, &reload.Options{File: cfgPath})
	if _, err := reloader.Apply(ctx); err != nil {
		t.Fatal(err)
	}

	monitor := alert.New(st, &alert.Options{ConsecutiveFailures: 1})
	tasks := task.New(st, cat, nil)
	streams, endStreams := context.WithCancel(ctx)
	defer endStreams()
	done := make(chan error, 2)
	go func() { done <- tasks.Run(ctx) }()
	go func() {
		done <- deliver.New(st, &deliver.Options{PollInterval: 10 * time.Millisecond, OnAttempt: monitor.ObserveAttempt}).Run(ctx)
	}()
	defer func() { cancel(); <-done; <-done }()

	// The receiver answers 500 with a header, so that deliveries die,
	// an alert opens and attempts carry a response.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Receiver", "openapi-test")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "boom")
	}))
	defer receiver.Close()

	mux := http.NewServeMux()
	ingesthttp.New(st, cat, nil).Register(mux)
	apiSrv := api.New(st, cat, &api.Options{Token: testToken, Alerts: monitor, Tasks: tasks, Streams: streams, Reload: reloader.Reload})
	apiSrv.Register(mux)
	srv := httptest.NewServer(httpguard.New(&httpguard.Options{Listen: "127.0.0.1:0", Public: []string{"/e/"}}).Handler(mux))
	defer srv.Close()

	// The validator's router matches requests against the servers of the
	// document; this one is on a random port.
	spec.Servers = openapi3.Servers{{URL: srv.URL + strings.TrimSuffix(api.Prefix, "/")}}
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario{t: t, spec: spec, router: router, url: srv.URL + "/api/v1", token: testToken, client: srv.Client(), covered: map[string][]int{}, sent: map[string]map[string]bool{}}

	s.do(call{method: "GET", path: "/openapi.json", want: 200})

	// The guard and authentication.
	s.do(call{method: "GET", path: "/sources", want: 401, invalid: true, edit: func(r *http.Request) { r.Header.Del("Authorization") }})
	s.do(call{method: "GET", path: "/sources", want: 401, invalid: true, edit: func(r *http.Request) { r.Header.Set("Authorization", "Bearer wrong") }})
	s.do(call{method: "GET", path: "/sources", want: 403, edit: func(r *http.Request) { r.Host = "evil.example" }})
	s.do(call{method: "POST", path: "/destinations", want: 403, body: map[string]any{"name": "x", "url": "https://attacker.example/c"},
		edit: func(r *http.Request) {
			r.Header.Set("Origin", "https://evil.example")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}})
	s.do(call{method: "POST", path: "/sources", want: 415, invalid: true, body: `{"name":"x"}`, edit: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }})
	s.do(call{method: "POST", path: "/sources", want: 413, invalid: true,
		body: `{"name":"big","description":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`})

	// Sources.
	const whsec = "whsec_openapi"
	s.do(call{method: "POST", path: "/sources", want: 201, body: map[string]any{
		"name": "stripe", "verify": map[string]any{"type": "stripe", "secret": whsec}, "dedup": map[string]any{"window": "24h"}, "description": "Stripe account"}})
	s.do(call{method: "POST", path: "/sources", want: 409, body: map[string]any{"name": "stripe"}})
	s.do(call{method: "POST", path: "/sources", want: 400, body: map[string]any{"name": "bad", "verify": map[string]any{"type": "pigeon"}}})
	s.do(call{method: "POST", path: "/sources", want: 400, invalid: true, body: `{"name":"bad","verfy":{}}`})
	srcs := decodeAs[struct{ Data []store.Source }](t, s.do(call{method: "GET", path: "/sources?project=default", want: 200}))
	if len(srcs.Data) != 2 {
		t.Fatalf("sources: %+v, want from-file and stripe", srcs.Data)
	}
	got := s.do(call{method: "GET", path: "/sources/stripe", want: 200})
	var edited map[string]any
	if err := json.Unmarshal(got, &edited); err != nil {
		t.Fatal(err)
	}
	edited["description"] = "edited: GET, change, PUT back"
	s.do(call{method: "PUT", path: "/sources/stripe", want: 200, body: edited})
	s.do(call{method: "PUT", path: "/sources/github", want: 201, body: map[string]any{"verify": map[string]any{"type": "github", "secret": "gh"}}})
	s.do(call{method: "PUT", path: "/sources/from-file", want: 409, body: map[string]any{}})
	s.do(call{method: "DELETE", path: "/sources/github", want: 204})
	s.do(call{method: "DELETE", path: "/sources/from-file", want: 409})
	s.do(call{method: "GET", path: "/sources/github", want: 404})
	s.do(call{method: "DELETE", path: "/sources/github", want: 404})

	// Destinations.
	s.do(call{method: "POST", path: "/destinations", want: 201, body: map[string]any{
		"name": "billing", "url": receiver.URL + "/hooks", "timeout": "5s", "rate_limit": "50/s",
		"retry":           map[string]any{"max_attempts": 1},
		"sign":            map[string]any{"type": "standard-webhooks", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		"headers":         map[string]any{"Authorization": "Bearer dest-token", "X-Team": "payments"},
		"circuit_breaker": map[string]any{"failures": 100}}})
	s.do(call{method: "POST", path: "/destinations", want: 409, body: map[string]any{"name": "billing", "url": receiver.URL}})
	s.do(call{method: "POST", path: "/destinations", want: 400, body: map[string]any{"name": "bad", "url": "ftp://x"}})
	s.do(call{method: "GET", path: "/destinations", want: 200})
	dest := s.do(call{method: "GET", path: "/destinations/billing", want: 200})
	s.do(call{method: "PUT", path: "/destinations/billing", want: 200, body: dest})
	s.do(call{method: "PUT", path: "/destinations/spare", want: 201, body: map[string]any{"url": receiver.URL + "/spare"}})
	s.do(call{method: "POST", path: "/destinations/spare/pause", want: 200, body: map[string]any{"reason": "maintenance"}})
	s.do(call{method: "POST", path: "/destinations/spare/pause", want: 200})
	s.do(call{method: "POST", path: "/destinations/spare/resume", want: 200})
	s.do(call{method: "POST", path: "/destinations/nope/pause", want: 404})
	s.do(call{method: "POST", path: "/destinations/nope/resume", want: 404})
	s.do(call{method: "DELETE", path: "/destinations/spare", want: 204})
	s.do(call{method: "GET", path: "/destinations/spare", want: 404})

	// Connections.
	const script = `function handler(request, event) { request.headers["x-transformed"] = "yes"; return request; }`
	s.do(call{method: "POST", path: "/connections", want: 201, body: map[string]any{
		"source": "stripe", "destination": "billing", "filter": `body.type.startsWith("checkout.")`, "transform": script,
		"retry": []any{map[string]any{"types": []string{"checkout.session.*"}, "max_age": "72h"},
			map[string]any{"types": []string{"checkout.ping"}, "max_attempts": 1, "schedule": []string{"1m"}}}}})
	s.do(call{method: "POST", path: "/connections", want: 400, body: map[string]any{"id": "bad-retry", "source": "stripe", "destination": "billing",
		"retry": []any{map[string]any{"types": []string{"ping"}}}}})
	s.do(call{method: "POST", path: "/connections", want: 409, body: map[string]any{"source": "stripe", "destination": "billing"}})
	s.do(call{method: "POST", path: "/connections", want: 400, body: map[string]any{"source": "stripe", "destination": "nowhere"}})
	s.do(call{method: "GET", path: "/connections", want: 200})
	conn := s.do(call{method: "GET", path: "/connections/" + url.PathEscape("stripe->billing"), want: 200})
	s.do(call{method: "PUT", path: "/connections/" + url.PathEscape("stripe->billing"), want: 200, body: conn})
	s.do(call{method: "PUT", path: "/connections/extra", want: 201, body: map[string]any{"source": "from-file", "destination": "billing"}})
	s.do(call{method: "DELETE", path: "/connections/extra", want: 204})
	s.do(call{method: "GET", path: "/connections/extra", want: 404})

	// An event, received through ingest with a real Stripe signature.
	before := time.Now().Add(-time.Second).UTC()
	payload := `{"id":"evt_openapi_1","type":"checkout.session.completed","data":{"object":{"payment_link":"plink_1"}}}`
	ingestStripe(t, srv.URL, whsec, payload)
	evs := decodeAs[struct{ Data []store.Event }](t, s.do(call{method: "GET", path: "/events?source=stripe&status=routed&limit=10", want: 200}))
	if len(evs.Data) != 1 {
		t.Fatalf("events: %+v, want the one ingested", evs.Data)
	}
	ev := evs.Data[0]
	s.do(call{method: "GET", path: "/events?type=checkout.session.completed&since=" + url.QueryEscape(before.Format(time.RFC3339Nano)), want: 200})
	found := decodeAs[struct{ Data []store.Event }](t, s.do(call{method: "GET", want: 200, path: "/events?q=PLINK_1&where=" +
		url.QueryEscape("data.object.payment_link=plink_1") + "&where=" + url.QueryEscape(`id="evt_openapi_1"`)}))
	if len(found.Data) != 1 || found.Data[0].ID != ev.ID {
		t.Fatalf("search: %+v, want the one ingested", found.Data)
	}
	s.do(call{method: "GET", path: "/events?where=" + url.QueryEscape("data..id=1"), want: 400})
	s.do(call{method: "GET", path: "/events?limit=5000", want: 400, invalid: true})
	s.do(call{method: "GET", path: "/events?colour=blue", want: 400, invalid: true})
	s.do(call{method: "GET", path: "/events/" + ev.ID, want: 200})
	s.do(call{method: "GET", path: "/events/evt_none", want: 404})
	reqs := decodeAs[struct{ Data []store.Request }](t, s.do(call{method: "GET", path: "/requests?source=stripe&status=accepted", want: 200}))
	if len(reqs.Data) != 1 {
		t.Fatalf("requests: %+v, want the one ingested", reqs.Data)
	}
	s.do(call{method: "GET", path: "/requests?limit=1&event_id=" + ev.ID, want: 200})
	s.do(call{method: "GET", path: "/requests/" + reqs.Data[0].ID, want: 200})
	s.do(call{method: "GET", path: "/requests/req_none", want: 404})

	// A second event, which no connection routes.
	ingestStripe(t, srv.URL, whsec, `{"id":"evt_openapi_2","type":"customer.created","data":{"object":{"id":"cus_1"}}}`)
	later := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	evPage := decodeAs[struct {
		Data       []store.Event
		NextCursor string `json:"next_cursor"`
	}](t, s.do(call{method: "GET", path: "/events?limit=1&status=ignored", want: 200}))
	if len(evPage.Data) != 1 || evPage.Data[0].Status != store.EventIgnored {
		t.Fatalf("events?status=ignored: %+v, want the second event", evPage.Data)
	}
	ev2 := evPage.Data[0]
	evPage = decodeAs[struct {
		Data       []store.Event
		NextCursor string `json:"next_cursor"`
	}](t, s.do(call{method: "GET", path: "/events?limit=1", want: 200}))
	s.do(call{method: "GET", path: "/events?limit=1&cursor=" + evPage.NextCursor + "&until=" + later, want: 200})
	reqPage := decodeAs[struct {
		NextCursor string `json:"next_cursor"`
	}](t, s.do(call{method: "GET", path: "/requests?limit=1", want: 200}))
	s.do(call{method: "GET", path: "/requests?cursor=" + reqPage.NextCursor + "&since=" + strconv.FormatInt(before.Unix(), 10) + "&until=" + later, want: 200})

	// The stream: the open message, then an event, from a time, after an
	// event, or after the Last-Event-ID of a reconnection.
	s.stream("/events/stream?source=stripe&since="+strconv.FormatInt(before.Unix(), 10), nil, ev.ID)
	s.stream("/events/stream?source=*&after="+ev.ID, nil, ev2.ID)
	s.stream("/events/stream", map[string]string{"Last-Event-ID": ev.ID}, ev2.ID)
	s.do(call{method: "GET", path: "/events/stream?colour=blue", want: 400, invalid: true})
	s.do(call{method: "GET", path: "/events/stream?after=evt_none", want: 404})

	// The transformation, on the stored event.
	s.do(call{method: "POST", path: "/connections/" + url.PathEscape("stripe->billing") + "/transform/test", want: 200, body: map[string]any{"event_id": ev.ID}})
	s.do(call{method: "POST", path: "/connections/" + url.PathEscape("stripe->billing") + "/transform/test", want: 200,
		body: map[string]any{"event_id": ev.ID, "transform": `function handler() { throw new Error("no"); }`}})
	s.do(call{method: "POST", path: "/connections/" + url.PathEscape("stripe->billing") + "/transform/test", want: 400,
		body: map[string]any{"event_id": ev.ID, "transform": "function ("}})
	s.do(call{method: "POST", path: "/connections/" + url.PathEscape("stripe->billing") + "/transform/test", want: 404, body: map[string]any{"event_id": "evt_none"}})

	// The delivery to billing dies on its one attempt (the receiver
	// answers 500) and opens an alert.
	dead := s.waitDelivery("/deliveries?destination=billing&status=dead")
	s.do(call{method: "GET", path: "/deliveries?source=stripe&event_id=" + ev.ID + "&limit=1", want: 200})
	s.do(call{method: "GET", path: "/deliveries?status=lost", want: 400, invalid: true})
	s.do(call{method: "GET", path: "/deliveries/" + dead, want: 200})
	s.do(call{method: "GET", path: "/deliveries/dlv_none", want: 404})
	s.do(call{method: "GET", path: "/deliveries/" + dead + "/attempts", want: 200})
	s.do(call{method: "GET", path: "/deliveries/dlv_none/attempts", want: 404})
	s.do(call{method: "GET", path: "/alerts", want: 200})
	alerts := decodeAs[struct{ Data []alert.Alert }](t, s.do(call{method: "GET", path: "/alerts?open=true", want: 200}))
	if len(alerts.Data) == 0 {
		t.Error("no open alert after a failed attempt")
	}
	s.do(call{method: "GET", path: "/alerts?open=maybe", want: 400, invalid: true})
	s.do(call{method: "GET", path: "/stats", want: 200})
	s.do(call{method: "GET", path: "/projects", want: 200})
	s.do(call{method: "GET", path: "/projects?project=default", want: 200})
	s.do(call{method: "GET", path: "/projects?project=a/b", want: 400, invalid: true})

	// A forward of `mailroom listen`.
	s.do(call{method: "POST", path: "/events/" + ev.ID + "/listen-attempts", want: 201,
		body: map[string]any{"session": "a1b2c3d4", "status_code": 200, "duration_ms": 12.5, "response_body": "ok"}})
	s.do(call{method: "POST", path: "/events/" + ev.ID + "/listen-attempts", want: 400, invalid: true, body: map[string]any{"session": "a b"}})
	s.do(call{method: "POST", path: "/events/evt_none/listen-attempts", want: 404, body: map[string]any{"session": "a1"}})

	// Retry and replay.
	s.do(call{method: "POST", path: "/deliveries/" + dead + "/retry", want: 200})
	s.waitDelivery("/deliveries?destination=billing&status=dead")
	s.do(call{method: "POST", path: "/deliveries/dlv_none/retry", want: 404})
	s.do(call{method: "POST", path: "/deliveries/retry?destination=billing&source=stripe&status=dead&event_id=" + ev.ID +
		"&since=" + url.QueryEscape(before.Format(time.RFC3339Nano)) + "&until=" + later, want: 200})
	s.waitDelivery("/deliveries?destination=billing&status=dead")
	s.do(call{method: "POST", path: "/deliveries/retry", want: 200, body: map[string]any{"destination": "billing", "since": before.Unix()}})
	s.do(call{method: "POST", path: "/deliveries/retry?source=stripe", want: 400, body: map[string]any{"destination": "billing"}})
	s.do(call{method: "POST", path: "/events/" + ev.ID + "/replay", want: 200})
	s.do(call{method: "POST", path: "/events/evt_none/replay", want: 404})
	s.waitDelivery("/deliveries?destination=billing&status=dead")
	dlvPage := decodeAs[struct {
		NextCursor string `json:"next_cursor"`
	}](t, s.do(call{method: "GET", path: "/deliveries?limit=1", want: 200}))
	s.do(call{method: "GET", path: "/deliveries?status=dead&cursor=" + dlvPage.NextCursor + "&since=" + strconv.FormatInt(before.Unix(), 10) + "&until=" + later, want: 200})

	// Tasks: one that waits, one completed by the event received.
	created := decodeAs[store.Task](t, s.do(call{method: "POST", path: "/tasks", want: 201, body: map[string]any{
		"source": "stripe", "type": "invoice.paid", "match": map[string]any{"data.object.id": "in_1"}, "timeout": "1h", "owner": "payments-mcp", "tool": "create_invoice"}}))
	s.do(call{method: "POST", path: "/tasks", want: 400, body: map[string]any{"source": "stripe", "filter": `"x"`}})
	s.do(call{method: "GET", path: "/tasks/" + created.ID, want: 200})
	s.do(call{method: "GET", path: "/tasks?owner=payments-mcp&open=true&limit=10", want: 200})
	s.do(call{method: "GET", path: "/tasks?status=done", want: 400, invalid: true})
	s.do(call{method: "POST", path: "/tasks/" + created.ID + "/cancel", want: 200})
	s.do(call{method: "POST", path: "/tasks/" + created.ID + "/cancel", want: 409})
	s.do(call{method: "POST", path: "/tasks/task_none/cancel", want: 404})
	filtered := decodeAs[store.Task](t, s.do(call{method: "POST", path: "/tasks", want: 201, body: map[string]any{
		"source": "stripe", "filter": `body.data.object.payment_link == "plink_none"`, "since": "1h", "timeout": "1h"}}))
	s.do(call{method: "GET", path: "/tasks/" + filtered.ID, want: 200})
	completed := decodeAs[store.Task](t, s.do(call{method: "POST", path: "/tasks", want: 201, body: map[string]any{
		"source": "stripe", "type": "checkout.session.completed", "match": map[string]any{"data.object.payment_link": "plink_1"}, "since": "1h"}}))
	done2 := decodeAs[store.Task](t, s.do(call{method: "GET", path: "/tasks/" + completed.ID + "?wait=30s", want: 200}))
	if done2.Status != store.TaskCompleted || done2.EventID != ev.ID {
		t.Errorf("task %s: status %s, event %q; want completed by %s", completed.ID, done2.Status, done2.EventID, ev.ID)
	}
	s.do(call{method: "GET", path: "/tasks/task_none", want: 404})
	taskPage := decodeAs[struct {
		NextCursor string `json:"next_cursor"`
	}](t, s.do(call{method: "GET", path: "/tasks?limit=1", want: 200}))
	s.do(call{method: "GET", path: "/tasks?status=working&cursor=" + url.QueryEscape(taskPage.NextCursor), want: 200})

	// Reload: a good file, then a refused one.
	writeCfg("sources:\n  - name: from-file\n  - name: also-from-file\n")
	s.do(call{method: "POST", path: "/reload", want: 200})
	writeCfg("sources:\n  - name: from-file\n    max_body_bytes: -1\n")
	s.do(call{method: "POST", path: "/reload", want: 422})

	// Tokens: create (shown once), list, use, revoke; then the audit log
	// of everything above.
	tok := decodeAs[struct {
		ID string `json:"id"`
	}](t, s.do(call{method: "POST", path: "/tokens", want: 201, body: map[string]any{"name": "ci", "role": "viewer", "project": "default", "expires": "90d"}}))
	s.do(call{method: "POST", path: "/tokens", want: 400, invalid: true, body: map[string]any{"name": "ci", "role": "root"}})
	s.do(call{method: "GET", path: "/tokens", want: 200})
	s.do(call{method: "GET", path: "/tokens?all=true&project=default", want: 200})
	s.do(call{method: "DELETE", path: "/tokens/" + tok.ID, want: 200})
	s.do(call{method: "DELETE", path: "/tokens/tok_none", want: 404})
	auditPage := decodeAs[struct {
		NextCursor string `json:"next_cursor"`
	}](t, s.do(call{method: "GET", path: "/audit?limit=2", want: 200}))
	s.do(call{method: "GET", path: "/audit?" + url.Values{"actor": {"api.token"}, "token_id": {"api"}, "project": {"default"},
		"action": {"POST /api/v1/tokens"}, "target": {tok.ID}, "since": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "until": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339)},
		"cursor": {auditPage.NextCursor}}.Encode(), want: 200})

	// Deletions last.
	s.do(call{method: "DELETE", path: "/connections/" + url.PathEscape("stripe->billing"), want: 204})
	s.do(call{method: "DELETE", path: "/destinations/billing", want: 204})
	s.do(call{method: "GET", path: "/stats", want: 200}) // billing is deleted but holds dead deliveries

	// Every parameter was sent, every route was called and answered a
	// success at least once.
	s.checkParamsSent()
	for _, p := range apiSrv.Patterns() {
		method, path := specPath(p)
		statuses := s.covered[method+" "+path]
		if !slices.ContainsFunc(statuses, func(st int) bool { return st >= 200 && st < 300 }) {
			t.Errorf("route %q was not exercised with success by TestOpenAPIScenario (statuses seen: %v): add a step that calls it with real data", p, statuses)
		}
	}
}

// ingestStripe posts payload to /e/stripe signed as Stripe does.
func ingestStripe(t *testing.T, base, secret, payload string) {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + payload))
	req, err := http.NewRequest("POST", base+"/e/stripe", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", "t="+ts+",v1="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest: status %d: %s", resp.StatusCode, body)
	}
}

// waitDelivery waits until the list at path holds a delivery and returns
// the newest one's id.
func (s *scenario) waitDelivery(path string) string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds := decodeAs[struct{ Data []store.Delivery }](s.t, s.do(call{method: "GET", path: path, want: 200}))
		pending := decodeAs[struct{ Data []store.Delivery }](s.t, s.do(call{method: "GET", path: "/deliveries?destination=billing&status=pending", want: 200}))
		if len(ds.Data) > 0 && len(pending.Data) == 0 {
			return ds.Data[0].ID
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: still empty (or billing still has pending deliveries) after 30s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stream opens the event stream at path with header, validates the
// response and its first two messages (open, then the event wantID)
// against the document, and hangs up.
func (s *scenario) stream(path string, header map[string]string, wantID string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.url+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rt, params, err := s.router.FindRoute(req)
	if err != nil {
		s.t.Fatalf("GET %s: no operation of the document matches: %v", path, err)
	}
	s.checkQueryDocumented(rt, req)
	s.recordParams(rt, req)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: rt,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerPresent}}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		s.t.Errorf("GET %s: the request does not match the document: %v\n%s", path, err, specHint)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	s.validateResponse(in, resp, nil)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var event, id string
	var messages int
	for messages < 2 && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data := []byte(strings.TrimPrefix(line, "data: "))
			switch event {
			case "open":
				s.schemaCheck("StreamOpen", data)
			case "event":
				s.schemaCheck("StreamedEvent", data)
				if id != wantID {
					s.t.Errorf("stream: event id %q, want %q", id, wantID)
				}
			default:
				s.t.Errorf("stream: unexpected message %q", event)
			}
			messages++
		}
	}
	if messages < 2 {
		s.t.Fatalf("stream ended after %d messages: %v", messages, sc.Err())
	}
}
