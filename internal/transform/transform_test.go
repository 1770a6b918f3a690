package transform

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func jsonRequest(body string) *Request {
	return &Request{
		Method: http.MethodPost,
		Path:   "/hooks",
		Query:  url.Values{"v": {"1"}},
		Header: http.Header{"Content-Type": {"application/json"}, "X-Team": {"a", "b"}},
		Body:   []byte(body),
	}
}

// mustCompile compiles script. A nil opts gives a time budget that no
// test script reaches on a loaded machine under -race, for the tests
// that are not about time; &Options{} gives the defaults.
func mustCompile(t testing.TB, script string, opts *Options) *Program {
	t.Helper()
	if opts == nil {
		opts = &Options{Timeout: 5 * time.Second}
	}
	p, err := Compile(script, opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func TestRunRewrites(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, `
function handler(request, event) {
  console.log("type", request.body.type, {n: 1});
  request.body = {kind: request.body.type, amount: request.body.data.amount, from: event.source, gh: event.headers["x-github-event"]};
  request.path = "/v2" + request.path;
  request.query.page = 2;
  request.query.tag = ["x", "y"];
  request.headers["x-kind"] = request.body.kind;
  request.headers["x-team"] = request.headers["x-team"].join("+");
  delete request.headers["content-type"];
  request.method = "put";
  return request;
}`, nil)
	res, err := p.Run(context.Background(), jsonRequest(`{"type":"invoice.paid","data":{"amount":1200}}`),
		&Event{ID: "evt_1", Source: "github", Header: http.Header{"X-Github-Event": {"push"}}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := &Request{
		Method: http.MethodPut,
		Path:   "/v2/hooks",
		Query:  url.Values{"v": {"1"}, "page": {"2"}, "tag": {"x", "y"}},
		Header: http.Header{"Content-Type": {"application/json"}, "X-Kind": {"invoice.paid"}, "X-Team": {"a+b"}},
		Body:   []byte(`{"kind":"invoice.paid","amount":1200,"from":"github","gh":"push"}`),
	}
	if diff := cmp.Diff(want, res.Request); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if got, want := res.Log, []string{`type invoice.paid {"n":1}`}; !cmp.Equal(got, want) {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func TestRunBodyNotJSONIsAString(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, `function handler(r) { r.body = typeof r.body + ":" + r.body.toUpperCase(); return r }`, nil)
	in := &Request{Method: "POST", Path: "/", Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, Body: []byte("a=1&b=2")}
	res, err := p.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := string(res.Request.Body), "string:A=1&B=2"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if got, want := res.Request.Header.Get("Content-Type"), "application/x-www-form-urlencoded"; got != want {
		t.Errorf("content type = %q, want %q (a string body keeps the headers as returned)", got, want)
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	// The cases not about time get a budget they cannot reach on a loaded
	// machine under -race: they must end by themselves, not by the clock.
	small := &Options{Timeout: 5 * time.Second, MaxOutputBytes: 1000}
	for _, tt := range []struct {
		name   string
		script string
		is     error
		msg    string
		// timeout, if set, replaces small's (the cases about the budget).
		timeout time.Duration
	}{
		{name: "throw", script: "function handler(r) {\n  throw new Error('no customer in ' + r.path)\n}", is: ErrThrown, msg: "Error: no customer in /hooks at handler (transform.js:2:"},
		{name: "type error", script: "function handler(r) { return r.body.missing.field }", is: ErrThrown, msg: "TypeError"},
		{name: "infinite loop", script: "function handler(r) { while (true) {} }", is: ErrTimeout, msg: "budget of 20ms", timeout: 20 * time.Millisecond},
		{name: "loop that catches", script: "function handler(r) { for (;;) { try { while (true) {} } catch (e) {} } }", is: ErrTimeout, timeout: 20 * time.Millisecond},
		{name: "oversized output", script: "function handler(r) { r.body = 'x'.repeat(5000); return r }", is: ErrOutputTooLarge, msg: "over the cap of 1000"},
		{name: "deep recursion", script: "function f(n) { return f(n + 1) + 1 }\nfunction handler(r) { return f(0) }", is: ErrThrown, msg: "call stack"},
		{name: "returns nothing", script: "function handler(r) { r.body = {} }", is: ErrBadOutput, msg: "returned undefined"},
		{name: "returns a string", script: "function handler(r) { return 'hi' }", is: ErrBadOutput},
		{name: "bad method", script: "function handler(r) { r.method = 'BREW'; return r }", is: ErrBadOutput, msg: `method "BREW"`},
		{name: "bad path", script: "function handler(r) { r.path = 'https://evil.example/x'; return r }", is: ErrBadOutput, msg: "absolute path"},
		{name: "header injection", script: "function handler(r) { r.headers['x-a'] = 'b\\r\\nX-Evil: 1'; return r }", is: ErrBadOutput, msg: "line break"},
		{name: "object header", script: "function handler(r) { r.headers['x-a'] = {a: 1}; return r }", is: ErrBadOutput, msg: `header "x-a"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := small
			if tt.timeout > 0 {
				opts = &Options{Timeout: tt.timeout, MaxOutputBytes: small.MaxOutputBytes}
			}
			p := mustCompile(t, tt.script, opts)
			res, err := p.Run(context.Background(), jsonRequest(`{"a":1}`), nil)
			if !errors.Is(err, tt.is) {
				t.Fatalf("Run error = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Run error = %q, want it to contain %q", err, tt.msg)
			}
			if res == nil || res.Request != nil {
				t.Errorf("Run result = %+v, want a result without a request", res)
			}
		})
	}
}

func TestRunStoppedByContext(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, "function handler(r) { while (true) {} }", &Options{Timeout: time.Hour})
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("dispatcher stopping"))
	_, err := p.Run(ctx, jsonRequest(`{}`), nil)
	if err == nil || !strings.Contains(err.Error(), "dispatcher stopping") {
		t.Fatalf("Run error = %v, want the context's cause", err)
	}
}

func TestNoIO(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, `
function handler(r) {
  r.body = {
    require: typeof require, setTimeout: typeof setTimeout, setInterval: typeof setInterval,
    fetch: typeof fetch, XMLHttpRequest: typeof XMLHttpRequest, process: typeof process,
    module: typeof module, Deno: typeof Deno, Bun: typeof Bun, WebSocket: typeof WebSocket,
  };
  return r;
}`, nil)
	res, err := p.Run(context.Background(), jsonRequest(`{}`), nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := `{"require":"undefined","setTimeout":"undefined","setInterval":"undefined","fetch":"undefined","XMLHttpRequest":"undefined","process":"undefined","module":"undefined","Deno":"undefined","Bun":"undefined","WebSocket":"undefined"}`
	if got := string(res.Request.Body); got != want {
		t.Errorf("globals = %s, want %s", got, want)
	}
	p = mustCompile(t, "function handler(r) { require('fs').readFileSync('/etc/passwd'); return r }", nil)
	if _, err := p.Run(context.Background(), jsonRequest(`{}`), nil); !errors.Is(err, ErrThrown) || !strings.Contains(err.Error(), "require is not defined") {
		t.Errorf("require: error = %v, want ReferenceError", err)
	}
}

func TestRunsAreIsolated(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, "var n = 0\nfunction handler(r) { n++; globalThis.seen = (globalThis.seen || 0) + 1; r.body = {n: n, seen: seen}; return r }", nil)
	for range 2 {
		res, err := p.Run(context.Background(), jsonRequest(`{}`), nil)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got, want := string(res.Request.Body), `{"n":1,"seen":1}`; got != want {
			t.Errorf("body = %s, want %s (no state kept between runs)", got, want)
		}
	}
}

func TestLogBounded(t *testing.T) {
	t.Parallel()
	// The budget is not what this test is about: 1000 calls under -race on
	// a loaded machine ran past the default 50 ms (go test -race ./... on a
	// 2-core box at load 12).
	p := mustCompile(t, "function handler(r) { for (let i = 0; i < 1000; i++) console.warn('line', i); return r }", &Options{MaxLogBytes: 100, Timeout: 5 * time.Second})
	res, err := p.Run(context.Background(), jsonRequest(`{}`), nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Log) == 0 || res.Log[0] != "warn: line 0" {
		t.Fatalf("log = %q, want it to start with %q", res.Log, "warn: line 0")
	}
	if got, want := res.Log[len(res.Log)-1], "(log truncated at 100 bytes)"; got != want {
		t.Errorf("last log line = %q, want %q", got, want)
	}
	size := 0
	for _, l := range res.Log[:len(res.Log)-1] {
		size += len(l)
	}
	if size > 100 {
		t.Errorf("log holds %d bytes, over its cap of 100", size)
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, script, msg string
	}{
		{name: "empty", script: "  \n", msg: "empty script"},
		{name: "syntax error", script: "function handler(r) {\n  return r +\n}", msg: "transform.js: Line 3:1"},
		{name: "no handler", script: "function handle(r) { return r }", msg: "defines no function handler"},
		{name: "handler not a function", script: "var handler = 3", msg: "defines no function handler"},
		{name: "top level throws", script: "throw new Error('bad top')\nfunction handler(r) { return r }", msg: "bad top"},
		{name: "top level loops", script: "while (true) {}\nfunction handler(r) { return r }", msg: "ran out of time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tt.script, &Options{Timeout: 20 * time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Compile error = %v, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func BenchmarkTransform(b *testing.B) {
	body := `{"id":"evt_1","type":"checkout.session.completed","data":{"object":{"id":"cs_test_1","amount_total":1200,"currency":"usd","customer":"cus_1","metadata":{"order":"42"}}}}`
	for _, bb := range []struct{ name, script string }{
		{"passthrough", "function handler(r) { return r }"},
		{"rewrite", "function handler(r) { const o = r.body.data.object; r.body = {order: o.metadata.order, amount: o.amount_total / 100, currency: o.currency.toUpperCase()}; r.headers['x-event-type'] = 'checkout'; return r }"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			// A budget no run reaches on a loaded machine.
			p := mustCompile(b, bb.script, &Options{Timeout: 5 * time.Second})
			in := jsonRequest(body)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Run(context.Background(), in, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
