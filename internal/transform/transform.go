// Package transform runs the JavaScript transformations of connections: a
// script defines `function handler(request, event) { …; return request }`
// and mailroom delivers what it returns instead of the request it would
// have sent. It owns the engine (goja, pure Go) and its bounds: a time
// budget per run, a cap on the output and on the captured console log, a
// bounded call stack, and no I/O at all (no require, no timers, no
// network, no file system: the runtime has only the ECMAScript built-ins
// and a console that writes to the run's log).
//
// It does not decide which request a delivery sends (package deliver
// builds it and hands it here) nor where transformations are configured
// (package catalog compiles them once per catalog version).
//
// Memory is not accounted by goja; a run is bounded in memory only through
// its time budget, its call stack and its output cap. A transformation is
// operator configuration, as trusted as the destination it delivers to.
package transform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dop251/goja"
)

// Defaults for zero [Options] fields.
const (
	// DefaultTimeout is the time budget of one run.
	DefaultTimeout = 50 * time.Millisecond
	// CompileBudget bounds the run of a script's top level by [Compile].
	CompileBudget = time.Second
	// DefaultMaxOutputBytes caps the request a run returns, encoded as
	// JSON: the largest body mailroom accepts by default, so that a
	// script that passes any accepted body through is not refused.
	DefaultMaxOutputBytes = 10 << 20
	// DefaultMaxLogBytes caps the console log kept of one run.
	DefaultMaxLogBytes = 4 << 10
	// DefaultMaxCallStack caps the depth of JavaScript calls.
	DefaultMaxCallStack = 512
)

// ScriptName is the file name errors give the script ("transform.js:3:7").
const ScriptName = "transform.js"

// Options bounds the runs of a [Program]. The zero value is ready to use.
type Options struct {
	// Timeout is the time budget of one run, from the creation of its
	// runtime to its output. A run over it is interrupted and fails with
	// [ErrTimeout]. If zero, [DefaultTimeout].
	Timeout time.Duration
	// MaxOutputBytes caps the returned request encoded as JSON; a larger
	// one fails with [ErrOutputTooLarge]. If zero, [DefaultMaxOutputBytes].
	MaxOutputBytes int
	// MaxLogBytes caps the console log kept of one run; later lines are
	// dropped and the drop noted. If zero, [DefaultMaxLogBytes].
	MaxLogBytes int
	// MaxCallStack caps the depth of JavaScript calls; deeper recursion
	// fails the run. If zero, [DefaultMaxCallStack].
	MaxCallStack int
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxOutputBytes <= 0 {
		c.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if c.MaxLogBytes <= 0 {
		c.MaxLogBytes = DefaultMaxLogBytes
	}
	if c.MaxCallStack <= 0 {
		c.MaxCallStack = DefaultMaxCallStack
	}
	return c
}

// Errors a run fails with, wrapped with the details.
var (
	// ErrTimeout: the run went over its time budget and was stopped.
	ErrTimeout = errors.New("transformation ran out of time")
	// ErrThrown: the script threw (or the runtime raised an error, a
	// stack overflow among them).
	ErrThrown = errors.New("transformation threw")
	// ErrOutputTooLarge: the returned request is over the output cap.
	ErrOutputTooLarge = errors.New("transformation output too large")
	// ErrBadOutput: the handler returned something that is not a request
	// mailroom can send.
	ErrBadOutput = errors.New("transformation returned an invalid request")
)

// Request is an HTTP request as a transformation sees and returns it.
type Request struct {
	// Method is the HTTP method (POST unless the script changes it).
	Method string
	// Path is the URL path, starting with "/".
	Path string
	// Query holds the URL query parameters.
	Query url.Values
	// Header holds the headers.
	Header http.Header
	// Body is the body as sent.
	Body []byte
}

// Event is what a handler gets as its second argument: the event being
// delivered and the headers of the request that carried it (as stored,
// credentials masked).
type Event struct {
	ID     string
	Source string
	Header http.Header
}

// Result is the outcome of one run.
type Result struct {
	// Request is the request the handler returned; nil when the run
	// failed.
	Request *Request
	// Log holds the console lines the run wrote, within the log cap.
	Log []string
	// Duration is how long the run took.
	Duration time.Duration
}

// Program is a compiled transformation. It is safe for concurrent use:
// each run gets a runtime of its own, so no state survives from one run
// to the next.
type Program struct {
	prg  *goja.Program
	opts Options
}

// Compile compiles script and checks that it defines a handler function,
// running its top level once within the time budget. The error says what
// is wrong (a syntax error with its line and column, a missing handler).
// opts may be nil.
//
// The script's top level runs once here, within [CompileBudget] (or the
// time budget when that is longer): the budget is wall-clock time, and a
// check at config load or reload must not refuse a good script because
// the machine was busy for a few tens of milliseconds. A top level that
// never ends is still refused.
func Compile(script string, opts *Options) (*Program, error) {
	if strings.TrimSpace(script) == "" {
		return nil, errors.New("empty script: define function handler(request) { …; return request }")
	}
	prg, err := goja.Compile(ScriptName, script, false)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	if err := checkSyntax(script); err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	p := &Program{prg: prg, opts: opts.withDefaults()}
	r := p.newRun(context.Background(), max(p.opts.Timeout, CompileBudget))
	defer r.stop()
	if _, err := r.handler(); err != nil {
		return nil, err
	}
	return p, nil
}

// Options returns the bounds p runs within, defaults filled in.
func (p *Program) Options() Options { return p.opts }

// Run calls the handler with in and ev and returns the request it
// returned. It stops the script when ctx ends or the time budget is
// spent, whichever is first. The returned Result is never nil: on error it
// still carries the log and the duration.
func (p *Program) Run(ctx context.Context, in *Request, ev *Event) (*Result, error) {
	r := p.newRun(ctx, p.opts.Timeout)
	defer r.stop()
	res := &Result{}
	out, err := r.call(in, ev)
	res.Log, res.Duration = r.log.lines, time.Since(r.start)
	if err != nil {
		return res, err
	}
	res.Request = out
	return res, nil
}

// run is one runtime with its log and the stops of its budget.
type run struct {
	p     *Program
	vm    *goja.Runtime
	log   *consoleLog
	start time.Time
	// stops end the timer and the context watch.
	stops []func() bool
	// meter is what the run's built-ins have charged (limits.go).
	meter *meter
	// wrapped are the metered built-ins, by the function a proxy of the
	// run wraps, and traps the proxies' handler (limits.go).
	wrapped map[*goja.Object]wrapped
	traps   *goja.ProxyTrapConfig
}

// newRun makes a runtime with a console, interrupted when budget is
// spent or ctx ends. An interrupt stops JavaScript code at once, and a
// built-in that walks or builds something large (a JSON.stringify, a
// spread) at its next charge to the run's meter (limits.go).
func (p *Program) newRun(ctx context.Context, budget time.Duration) *run {
	boundRegexps()
	r := &run{p: p, vm: goja.New(), log: &consoleLog{max: p.opts.MaxLogBytes}, start: time.Now()}
	r.vm.SetMaxCallStackSize(p.opts.MaxCallStack)
	r.restrict()
	console := r.vm.NewObject()
	for _, name := range []string{"log", "info", "warn", "error", "debug"} {
		console.Set(name, r.log.write(r.vm, name))
	}
	r.vm.Set("console", console)
	t := time.AfterFunc(budget, func() {
		r.meter.stop(fmt.Errorf("%w: stopped after its budget of %s", ErrTimeout, budget))
	})
	r.stops = append(r.stops, t.Stop, context.AfterFunc(ctx, func() {
		r.meter.stop(fmt.Errorf("transformation stopped: %w", context.Cause(ctx)))
	}))
	return r
}

func (r *run) stop() {
	for _, s := range r.stops {
		s()
	}
}

// handler runs the script's top level and returns its handler.
func (r *run) handler() (goja.Callable, error) {
	if _, err := r.vm.RunProgram(r.p.prg); err != nil {
		return nil, r.explain(err)
	}
	h, ok := goja.AssertFunction(r.vm.Get("handler"))
	if !ok {
		return nil, errors.New("the script defines no function handler(request) { …; return request }")
	}
	return h, nil
}

// call runs the handler on in and reads what it returned.
func (r *run) call(in *Request, ev *Event) (*Request, error) {
	h, err := r.handler()
	if err != nil {
		return nil, err
	}
	parse, _ := goja.AssertFunction(r.vm.Get("JSON").ToObject(r.vm).Get("parse"))
	stringify, _ := goja.AssertFunction(r.vm.Get("JSON").ToObject(r.vm).Get("stringify"))
	req, err := parse(goja.Undefined(), r.vm.ToValue(string(encodeRequest(in))))
	if err != nil {
		return nil, r.explain(err)
	}
	evv, err := parse(goja.Undefined(), r.vm.ToValue(string(encodeEvent(ev))))
	if err != nil {
		return nil, r.explain(err)
	}
	ret, err := h(goja.Undefined(), req, evv)
	if err != nil {
		return nil, r.explain(err)
	}
	if goja.IsUndefined(ret) || goja.IsNull(ret) {
		return nil, fmt.Errorf("%w: handler returned %s; return the request (or a new one)", ErrBadOutput, ret)
	}
	if _, ok := ret.(*goja.Object); !ok {
		return nil, fmt.Errorf("%w: handler returned %s, not an object", ErrBadOutput, ret.ExportType())
	}
	js, err := stringify(goja.Undefined(), ret)
	if err != nil {
		return nil, r.explain(err)
	}
	text := js.String()
	if len(text) > r.p.opts.MaxOutputBytes {
		return nil, fmt.Errorf("%w: %d bytes as JSON, over the cap of %d", ErrOutputTooLarge, len(text), r.p.opts.MaxOutputBytes)
	}
	out, err := decodeRequest([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOutput, err)
	}
	return out, nil
}

// explain turns an error of the runtime into the run's error.
func (r *run) explain(err error) error {
	if err := r.meter.reason(); err != nil {
		return err // whatever the script did after: it cannot catch it
	}
	var intr *goja.InterruptedError
	if errors.As(err, &intr) {
		if e, ok := intr.Value().(error); ok {
			return e
		}
		return fmt.Errorf("%w: interrupted", ErrTimeout)
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		// One line: the message, then the stack frames.
		return fmt.Errorf("%w: %s", ErrThrown, strings.Join(strings.Fields(ex.String()), " "))
	}
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return fmt.Errorf("%w: call stack deeper than %d", ErrThrown, r.p.opts.MaxCallStack)
	}
	return fmt.Errorf("%w: %v", ErrThrown, err)
}

// consoleLog keeps the lines a run writes to console, up to max bytes.
type consoleLog struct {
	max, size int
	lines     []string
	dropped   int
}

func (l *consoleLog) write(vm *goja.Runtime, level string) func(goja.FunctionCall) goja.Value {
	return func(c goja.FunctionCall) goja.Value {
		parts := make([]string, len(c.Arguments))
		for i, a := range c.Arguments {
			parts[i] = show(vm, a)
		}
		line := strings.Join(parts, " ")
		if level != "log" && level != "info" {
			line = level + ": " + line
		}
		l.add(line)
		return goja.Undefined()
	}
}

func (l *consoleLog) add(line string) {
	if l.dropped > 0 || l.size+len(line) > l.max {
		if l.dropped == 0 {
			l.lines = append(l.lines, fmt.Sprintf("(log truncated at %d bytes)", l.max))
		}
		l.dropped++
		return
	}
	l.size += len(line)
	l.lines = append(l.lines, line)
}

// show formats a console argument: strings as they are, objects as JSON.
func show(vm *goja.Runtime, v goja.Value) string {
	if o, ok := v.(*goja.Object); ok && o.ClassName() != "Function" && o.ClassName() != "Error" {
		if b, err := json.Marshal(o); err == nil {
			return string(b)
		}
	}
	return v.String()
}

// ---- the request as JSON ----

// IsJSON reports whether a Content-Type names JSON (application/json or a
// +json type). A body is decoded for the script only then.
func IsJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// wireRequest is a request as the script sees it.
type wireRequest struct {
	Method  string                     `json:"method"`
	Path    string                     `json:"path"`
	Query   map[string]json.RawMessage `json:"query"`
	Headers map[string]json.RawMessage `json:"headers"`
	Body    json.RawMessage            `json:"body"`
}

// encodeRequest encodes in as the script sees it: header names in lower
// case, a header or query parameter with one value as a string and with
// several as an array, the body decoded when it is JSON and a string
// otherwise.
func encodeRequest(in *Request) []byte {
	w := wireRequest{Method: in.Method, Path: in.Path, Query: map[string]json.RawMessage{}, Headers: map[string]json.RawMessage{}}
	for k, vs := range in.Query {
		w.Query[k] = values(vs)
	}
	for k, vs := range in.Header {
		k = strings.ToLower(k)
		w.Headers[k] = values(append(valuesOf(w.Headers[k]), vs...))
	}
	w.Body = encodeBody(in.Body, in.Header.Get("Content-Type"))
	b, _ := json.Marshal(w)
	return b
}

// View is a request as JSON, the way the handler sees it: header names
// in lower case, the body decoded when it is JSON and a string otherwise.
type View struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   map[string][]string `json:"query"`
	Headers map[string][]string `json:"headers"`
	Body    json.RawMessage     `json:"body"`
}

// View returns r as JSON, each header value replaced by show(name, value)
// (to mask credentials); show may be nil.
func (r *Request) View(show func(name, value string) string) *View {
	v := &View{Method: r.Method, Path: r.Path, Query: map[string][]string{}, Headers: map[string][]string{}}
	for k, vs := range r.Query {
		v.Query[k] = vs
	}
	for k, vs := range r.Header {
		name := strings.ToLower(k)
		for _, val := range vs {
			if show != nil {
				val = show(k, val)
			}
			v.Headers[name] = append(v.Headers[name], val)
		}
	}
	v.Body = encodeBody(r.Body, r.Header.Get("Content-Type"))
	return v
}

// encodeBody returns body as the script sees it, JSON: the body itself
// when contentType names JSON and it parses, else a JSON string.
func encodeBody(body []byte, contentType string) json.RawMessage {
	if len(body) > 0 && IsJSON(contentType) && json.Valid(body) {
		return body
	}
	b, _ := json.Marshal(string(body))
	return b
}

func values(vs []string) json.RawMessage {
	var b []byte
	if len(vs) == 1 {
		b, _ = json.Marshal(vs[0])
	} else {
		b, _ = json.Marshal(vs)
	}
	return b
}

func valuesOf(m json.RawMessage) []string {
	if m == nil {
		return nil
	}
	var s string
	if json.Unmarshal(m, &s) == nil {
		return []string{s}
	}
	var ss []string
	json.Unmarshal(m, &ss)
	return ss
}

func encodeEvent(ev *Event) []byte {
	if ev == nil {
		ev = &Event{}
	}
	h := map[string]json.RawMessage{}
	for k, vs := range ev.Header {
		h[strings.ToLower(k)] = values(vs)
	}
	b, _ := json.Marshal(struct {
		ID      string                     `json:"id"`
		Source  string                     `json:"source"`
		Headers map[string]json.RawMessage `json:"headers"`
	}{ev.ID, ev.Source, h})
	return b
}

// methods are the methods a handler may return.
var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// decodeRequest reads the request a handler returned, as JSON.
func decodeRequest(b []byte) (*Request, error) {
	var w wireRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("read the returned request: %w", err)
	}
	out := &Request{Method: strings.ToUpper(w.Method), Path: w.Path, Query: url.Values{}, Header: http.Header{}}
	if out.Method == "" {
		out.Method = http.MethodPost
	}
	if !slices.Contains(methods, out.Method) {
		return nil, fmt.Errorf("method %q: want one of %s", w.Method, strings.Join(methods, ", "))
	}
	if out.Path == "" {
		out.Path = "/"
	}
	if !strings.HasPrefix(out.Path, "/") || strings.ContainsAny(out.Path, "?#\r\n") {
		return nil, fmt.Errorf("path %q: want an absolute path such as /hooks, without query or fragment", w.Path)
	}
	for k, raw := range w.Query {
		vs, err := scalars(raw)
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", k, err)
		}
		out.Query[k] = vs
	}
	for k, raw := range w.Headers {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("header name %q is not a valid HTTP header name", k)
		}
		vs, err := scalars(raw)
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", k, err)
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, fmt.Errorf("header %q: value holds a line break or NUL", k)
			}
			out.Header.Add(k, v)
		}
	}
	switch {
	case len(w.Body) == 0 || string(w.Body) == "null":
		// No body.
	case w.Body[0] == '"':
		var s string
		if err := json.Unmarshal(w.Body, &s); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		out.Body = []byte(s)
	default:
		out.Body = w.Body
		if out.Header.Get("Content-Type") == "" {
			out.Header.Set("Content-Type", "application/json")
		}
	}
	return out, nil
}

// scalars reads a header or query value: a string, number or boolean, or
// an array of them.
func scalars(raw json.RawMessage) ([]string, error) {
	var one any
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	list, ok := one.([]any)
	if !ok {
		list = []any{one}
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case float64, bool:
			b, _ := json.Marshal(v)
			out = append(out, string(b))
		default:
			return nil, fmt.Errorf("want a string, number or boolean, or an array of them, not %s", strings.TrimSpace(string(raw)))
		}
	}
	return out, nil
}

// validHeaderName reports whether s is an HTTP token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
