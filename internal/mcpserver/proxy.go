package mcpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/task"
)

// Upstream is an MCP server that mailroom fronts: its tools and prompts
// appear as {Name}__{name}, its resources under their own URIs.
type Upstream struct {
	Name string
	// URL of a Streamable HTTP server, with Headers on every request.
	URL     string
	Headers map[string]string
	// Command runs a stdio server instead, with Env added.
	Command []string
	Env     map[string]string
	// Timeout bounds one forwarded call. Zero means 60s.
	Timeout time.Duration
}

// AsyncTool turns an upstream tool into a task-returning tool: when the
// forwarded call returns, Match's CEL expressions over `result` and
// `arguments` give the values that the completing event's body paths must
// equal.
type AsyncTool struct {
	// Tool is the namespaced name, upstream__tool.
	Tool    string
	Source  string
	Type    string
	Match   map[string]string
	Filter  string
	Timeout time.Duration
	// Fail, if set, names an event that fails the task.
	Fail *AsyncFail
}

// AsyncFail is the failure expectation of an [AsyncTool].
type AsyncFail struct {
	Source string
	Type   string
	Match  map[string]string
	Filter string
}

// nsSep separates the upstream name from the tool or prompt name.
const nsSep = "__"

// asyncOutputSchema is the output schema of a proxied async tool: its
// results carry the upstream result beside the event.
var asyncOutputSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"status":   map[string]any{"type": "string", "description": "matched, waiting or timed_out"},
		"event":    map[string]any{"type": "object", "description": "the webhook event that completed the call"},
		"upstream": map[string]any{"type": "object", "description": "the upstream tool's own result"},
		"message":  map[string]any{"type": "string"},
		"since":    map[string]any{"type": "string"},
		"next":     map[string]any{"type": "object", "description": "the wait_for_event call that keeps waiting"},
	},
}

// upstream is the live side of an [Upstream].
type upstream struct {
	cfg Upstream
	srv *Server

	connMu sync.Mutex // serializes connects
	mu     sync.Mutex // guards cs and the registered names
	cs     *mcp.ClientSession
	// registered names, so a re-sync can remove what disappeared.
	tools, prompts, resources, templates []string
}

// proxy holds the upstreams and async rules.
type proxy struct {
	srv       *Server
	upstreams map[string]*upstream
	async     map[string]*compiledAsync
	celEnv    *cel.Env

	mu       sync.Mutex
	progress map[string]progressRoute // forwarded token -> caller
}

type progressRoute struct {
	session *mcp.ServerSession
	token   any
}

type compiledAsync struct {
	cfg   AsyncTool
	match map[string]cel.Program
	fail  map[string]cel.Program
}

func newProxy(s *Server, ups []Upstream, asyncs []AsyncTool) (*proxy, error) {
	env, err := cel.NewEnv(cel.Variable("result", cel.DynType), cel.Variable("arguments", cel.DynType))
	if err != nil {
		return nil, fmt.Errorf("CEL environment for async tools: %w", err)
	}
	p := &proxy{srv: s, upstreams: map[string]*upstream{}, async: map[string]*compiledAsync{}, celEnv: env, progress: map[string]progressRoute{}}
	for _, u := range ups {
		if u.Timeout <= 0 {
			u.Timeout = 60 * time.Second
		}
		p.upstreams[u.Name] = &upstream{cfg: u, srv: s}
	}
	for _, a := range asyncs {
		if a.Timeout <= 0 {
			a.Timeout = 24 * time.Hour
		}
		ca := &compiledAsync{cfg: a}
		if ca.match, err = p.compileMatch(a.Tool, "match", a.Match); err != nil {
			return nil, err
		}
		if a.Fail != nil {
			if ca.fail, err = p.compileMatch(a.Tool, "fail.match", a.Fail.Match); err != nil {
				return nil, err
			}
		}
		for _, f := range []string{a.Filter, failFilter(a.Fail)} {
			if f == "" {
				continue
			}
			if err := s.catalog.Compiler().CheckFilter(f); err != nil {
				return nil, fmt.Errorf("async tool %s: filter: %w", a.Tool, err)
			}
		}
		p.async[a.Tool] = ca
	}
	return p, nil
}

func failFilter(f *AsyncFail) string {
	if f == nil {
		return ""
	}
	return f.Filter
}

func (p *proxy) compileMatch(tool, field string, m map[string]string) (map[string]cel.Program, error) {
	out := map[string]cel.Program{}
	for path, expr := range m {
		ast, iss := p.celEnv.Compile(expr)
		if iss.Err() != nil {
			return nil, fmt.Errorf("async tool %s: %s[%s]: %w", tool, field, path, iss.Err())
		}
		prg, err := p.celEnv.Program(ast)
		if err != nil {
			return nil, fmt.Errorf("async tool %s: %s[%s]: %w", tool, field, path, err)
		}
		out[path] = prg
	}
	return out, nil
}

// evalMatch evaluates match expressions over the call's result and
// arguments.
func evalMatch(progs map[string]cel.Program, result, args any) (map[string]any, error) {
	out := map[string]any{}
	for _, path := range slices.Sorted(maps.Keys(progs)) {
		v, _, err := progs[path].Eval(map[string]any{"result": result, "arguments": args})
		if err != nil {
			return nil, fmt.Errorf("match[%s]: %w", path, err)
		}
		out[path] = v.Value()
	}
	return out, nil
}

// start connects every upstream and registers its features; an upstream
// that is down is retried on its first call.
func (p *proxy) start(ctx context.Context) {
	for _, u := range p.upstreams {
		if _, err := u.session(ctx); err != nil {
			p.srv.log.Warn("upstream MCP server unavailable; will retry on use", "upstream", u.cfg.Name, "err", err)
		}
	}
}

// session returns a live client session, connecting (and registering the
// upstream's features) when there is none.
func (u *upstream) session(ctx context.Context) (*mcp.ClientSession, error) {
	u.connMu.Lock() // one connect at a time
	defer u.connMu.Unlock()
	u.mu.Lock()
	cur := u.cs
	u.mu.Unlock()
	if cur != nil {
		return cur, nil
	}
	p := u.srv.proxy
	client := mcp.NewClient(&mcp.Implementation{Name: "mailroom-proxy", Version: buildinfo.Read().Version}, &mcp.ClientOptions{
		ToolListChangedHandler:     func(ctx context.Context, _ *mcp.ToolListChangedRequest) { go u.resync(context.WithoutCancel(ctx)) },
		PromptListChangedHandler:   func(ctx context.Context, _ *mcp.PromptListChangedRequest) { go u.resync(context.WithoutCancel(ctx)) },
		ResourceListChangedHandler: func(ctx context.Context, _ *mcp.ResourceListChangedRequest) { go u.resync(context.WithoutCancel(ctx)) },
		ProgressNotificationHandler: func(ctx context.Context, r *mcp.ProgressNotificationClientRequest) {
			p.forwardProgress(ctx, r.Params)
		},
		LoggingMessageHandler: func(ctx context.Context, r *mcp.LoggingMessageRequest) {
			params := *r.Params
			params.Logger = u.cfg.Name + "/" + params.Logger
			for ss := range u.srv.mcp.Sessions() {
				_ = ss.Log(ctx, &params)
			}
		},
	})
	var t mcp.Transport
	if u.cfg.URL != "" {
		t = &mcp.StreamableClientTransport{Endpoint: u.cfg.URL, HTTPClient: &http.Client{Transport: headerTransport{headers: u.cfg.Headers, next: http.DefaultTransport}}}
	} else {
		cmd := exec.Command(u.cfg.Command[0], u.cfg.Command[1:]...)
		cmd.Env = os.Environ()
		for k, v := range u.cfg.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		t = &mcp.CommandTransport{Command: cmd}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.cfg.Timeout)
	defer cancel()
	cs, err := client.Connect(cctx, t, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to upstream %s: %w", u.cfg.Name, err)
	}
	u.mu.Lock()
	u.cs = cs
	u.mu.Unlock()
	go func() {
		_ = cs.Wait()
		u.mu.Lock()
		if u.cs == cs {
			u.cs = nil
		}
		u.mu.Unlock()
		u.srv.log.Warn("upstream MCP session ended; reconnecting on next use", "upstream", u.cfg.Name)
	}()
	if err := u.register(cctx, cs); err != nil {
		u.srv.log.Warn("list upstream features", "upstream", u.cfg.Name, "err", err)
	}
	return cs, nil
}

// headerTransport adds configured headers to upstream requests.
type headerTransport struct {
	headers map[string]string
	next    http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(t.headers) > 0 {
		r = r.Clone(r.Context())
		for k, v := range t.headers {
			r.Header.Set(k, v)
		}
	}
	return t.next.RoundTrip(r)
}

func (u *upstream) resync(ctx context.Context) {
	u.mu.Lock()
	cs := u.cs
	u.mu.Unlock()
	if cs == nil {
		return
	}
	if err := u.register(ctx, cs); err != nil {
		u.srv.log.Warn("re-list upstream features", "upstream", u.cfg.Name, "err", err)
	}
}

// register mirrors the upstream's tools, prompts and resources on
// mailroom's server, replacing what was registered before.
func (u *upstream) register(ctx context.Context, cs *mcp.ClientSession) error {
	s := u.srv
	init := cs.InitializeResult()
	var caps *mcp.ServerCapabilities
	if init != nil {
		caps = init.Capabilities
	}
	var tools, prompts, resources, templates []string
	var errs []error
	if caps == nil || caps.Tools != nil {
		for t, err := range cs.Tools(ctx, nil) {
			if err != nil {
				errs = append(errs, err)
				break
			}
			name := u.cfg.Name + nsSep + t.Name
			tool := *t
			tool.Name = name
			tool.Description = fmt.Sprintf("[%s] %s", u.cfg.Name, t.Description)
			if _, ok := s.proxy.async[name]; ok {
				tool.OutputSchema = asyncOutputSchema
				tool.Description += " (mailroom: returns a task that completes when the correlated webhook arrives)"
			}
			s.mcp.AddTool(&tool, u.forwardTool(t.Name))
			tools = append(tools, name)
		}
	}
	if caps == nil || caps.Prompts != nil {
		for pr, err := range cs.Prompts(ctx, nil) {
			if err != nil {
				errs = append(errs, err)
				break
			}
			name := u.cfg.Name + nsSep + pr.Name
			prompt := *pr
			prompt.Name = name
			orig := pr.Name
			s.mcp.AddPrompt(&prompt, func(ctx context.Context, r *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
				cs, err := u.session(ctx)
				if err != nil {
					return nil, upstreamError(u.cfg.Name, err)
				}
				params := *r.Params
				params.Name = orig
				res, err := cs.GetPrompt(ctx, &params)
				return res, upstreamError(u.cfg.Name, err)
			})
			prompts = append(prompts, name)
		}
	}
	if caps == nil || caps.Resources != nil {
		for r, err := range cs.Resources(ctx, nil) {
			if err != nil {
				errs = append(errs, err)
				break
			}
			res := *r
			res.Name = u.cfg.Name + "/" + r.Name
			s.mcp.AddResource(&res, u.forwardRead)
			resources = append(resources, r.URI)
		}
		for rt, err := range cs.ResourceTemplates(ctx, nil) {
			if err != nil {
				errs = append(errs, err)
				break
			}
			tmpl := *rt
			tmpl.Name = u.cfg.Name + "/" + rt.Name
			s.mcp.AddResourceTemplate(&tmpl, u.forwardRead)
			templates = append(templates, rt.URITemplate)
		}
	}
	u.mu.Lock()
	gone := func(old, cur []string) []string {
		var out []string
		for _, n := range old {
			if !slices.Contains(cur, n) {
				out = append(out, n)
			}
		}
		return out
	}
	s.mcp.RemoveTools(gone(u.tools, tools)...)
	s.mcp.RemovePrompts(gone(u.prompts, prompts)...)
	s.mcp.RemoveResources(gone(u.resources, resources)...)
	s.mcp.RemoveResourceTemplates(gone(u.templates, templates)...)
	u.tools, u.prompts, u.resources, u.templates = tools, prompts, resources, templates
	u.mu.Unlock()
	return errors.Join(errs...)
}

// upstreamError turns a failed forward into a clear MCP error.
func upstreamError(name string, err error) error {
	if err == nil {
		return nil
	}
	var rpcErr *jsonrpc.Error
	if errors.As(err, &rpcErr) { // keep the code and data, name the upstream
		return &jsonrpc.Error{Code: rpcErr.Code, Message: fmt.Sprintf("upstream MCP server %q: %s", name, rpcErr.Message), Data: rpcErr.Data}
	}
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out: " + msg
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("upstream MCP server %q failed: %s", name, msg)}
}

func (u *upstream) forwardRead(ctx context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	cs, err := u.session(ctx)
	if err != nil {
		return nil, upstreamError(u.cfg.Name, err)
	}
	res, err := cs.ReadResource(ctx, r.Params)
	return res, upstreamError(u.cfg.Name, err)
}

// call forwards one tool call, passing progress through.
func (u *upstream) call(ctx context.Context, r *mcp.CallToolRequest, tool string) (*mcp.CallToolResult, error) {
	cs, err := u.session(ctx)
	if err != nil {
		return nil, upstreamError(u.cfg.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	defer cancel()
	params := &mcp.CallToolParams{Name: tool, Arguments: r.Params.Arguments}
	if tok := r.Params.GetProgressToken(); tok != nil && r.Session != nil {
		fwd := u.srv.proxy.routeProgress(r.Session, tok)
		defer u.srv.proxy.dropProgress(fwd)
		params.SetProgressToken(fwd)
	}
	res, err := cs.CallTool(ctx, params)
	return res, upstreamError(u.cfg.Name, err)
}

// forwardTool returns the handler of a plain proxied tool: the result is
// returned unchanged.
func (u *upstream) forwardTool(tool string) mcp.ToolHandler {
	return func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if ca, ok := u.srv.proxy.async[r.Params.Name]; ok {
			return u.srv.proxy.callAsyncSync(ctx, r, u, tool, ca)
		}
		return u.call(ctx, r, tool)
	}
}

func (p *proxy) routeProgress(ss *mcp.ServerSession, tok any) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	fwd := "mailroom-" + hex.EncodeToString(b[:])
	p.mu.Lock()
	p.progress[fwd] = progressRoute{session: ss, token: tok}
	p.mu.Unlock()
	return fwd
}

func (p *proxy) dropProgress(fwd string) {
	p.mu.Lock()
	delete(p.progress, fwd)
	p.mu.Unlock()
}

func (p *proxy) forwardProgress(ctx context.Context, params *mcp.ProgressNotificationParams) {
	fwd, _ := params.ProgressToken.(string)
	p.mu.Lock()
	route, ok := p.progress[fwd]
	p.mu.Unlock()
	if !ok {
		return
	}
	out := *params
	out.ProgressToken = route.token
	_ = route.session.NotifyProgress(ctx, &out)
}

// resolved is an async call's expectation, built from its result.
type resolved struct {
	args     json.RawMessage
	upstream json.RawMessage
	match    map[string]any
	fail     *task.FailRule
	start    time.Time
}

// forwardAsync makes the upstream call of an async tool and resolves the
// expectation. A nil resolved with a result means the upstream's error
// result, returned as is.
func (p *proxy) forwardAsync(ctx context.Context, r *mcp.CallToolRequest, ca *compiledAsync) (*mcp.CallToolResult, *resolved, error) {
	up, tool, _ := strings.Cut(ca.cfg.Tool, nsSep)
	u := p.upstreams[up]
	if u == nil {
		return nil, nil, rpcError(jsonrpc.CodeInternalError, "upstream %q is not configured", up)
	}
	start := p.srv.now()
	res, err := u.call(ctx, r, tool)
	if err != nil {
		return nil, nil, err
	}
	if res.IsError {
		return res, nil, nil
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, nil, rpcError(jsonrpc.CodeInternalError, "encode upstream result: %v", err)
	}
	// Decoded as CEL sees a webhook body, so that an id taken from the
	// result or the arguments keeps its exact value.
	resultVal, _ := route.DecodeJSON(raw)
	argsVal, _ := route.DecodeJSON(r.Params.Arguments)
	rv := &resolved{args: r.Params.Arguments, upstream: raw, start: start}
	if rv.match, err = evalMatch(ca.match, resultVal, argsVal); err != nil {
		return nil, nil, rpcError(jsonrpc.CodeInternalError, "async tool %s: the upstream result does not give the expectation: %v", ca.cfg.Tool, err)
	}
	if f := ca.cfg.Fail; f != nil {
		fm, err := evalMatch(ca.fail, resultVal, argsVal)
		if err != nil {
			return nil, nil, rpcError(jsonrpc.CodeInternalError, "async tool %s: fail: %v", ca.cfg.Tool, err)
		}
		rv.fail = &task.FailRule{Source: cmpOr(f.Source, ca.cfg.Source), Type: f.Type, Match: fm, Filter: f.Filter}
	}
	return res, rv, nil
}

// summarize renders a tool result compactly for a task's status message,
// so that an agent sees what the upstream returned (the payment link to
// show the customer) while the task waits.
func summarize(res *mcp.CallToolResult) string {
	var b []byte
	if res.StructuredContent != nil {
		b, _ = json.Marshal(res.StructuredContent)
	} else {
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				b = []byte(tc.Text)
				break
			}
		}
	}
	const limit = 1000
	if len(b) > limit {
		b = append(b[:limit], "…"...)
	}
	return string(b)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// createAsyncTask forwards the call and, unless the upstream answered an
// error result, stores a task waiting for the correlated event.
func (p *proxy) createAsyncTask(ctx context.Context, r *mcp.CallToolRequest, ca *compiledAsync, ttl time.Duration) (mcp.Result, error) {
	c := callerFrom(ctx)
	res, rv, err := p.forwardAsync(ctx, r, ca)
	if err != nil {
		return nil, err
	}
	if rv == nil { // the upstream's error result: the call ended at once
		return c.wire.endedAtOnce(ctx, c, r.Params, ttl, res)
	}
	s := p.srv
	t, err := s.tasks.Create(ctx, &task.CreateParams{
		Wait: task.Wait{Source: ca.cfg.Source, Type: ca.cfg.Type, Match: rv.match, Filter: ca.cfg.Filter,
			Since: rv.start.Add(-time.Second).UTC().Format(time.RFC3339Nano), Timeout: ca.cfg.Timeout},
		TTL: ttl, Owner: c.owner, SessionID: c.session, Protocol: c.protocol, Tool: ca.cfg.Tool, PollInterval: s.opts.PollInterval,
		StatusMessage: fmt.Sprintf("%s returned %s; waiting for a %s %s event", ca.cfg.Tool, summarize(res), ca.cfg.Source, ca.cfg.Type),
		CallArguments: rv.args, Upstream: rv.upstream, Fail: rv.fail,
	})
	if err != nil {
		return nil, createError(err)
	}
	return c.wire.created(t), nil
}

// callAsyncSync serves an async tool for a client without task support:
// forward, then wait a bounded time for the event, then say how to keep
// waiting with wait_for_event.
func (p *proxy) callAsyncSync(ctx context.Context, r *mcp.CallToolRequest, _ *upstream, _ string, ca *compiledAsync) (*mcp.CallToolResult, error) {
	res, rv, err := p.forwardAsync(ctx, r, ca)
	if err != nil || rv == nil {
		return res, err
	}
	s := p.srv
	spec := task.Spec{Source: ca.cfg.Source, Type: ca.cfg.Type, Match: task.MatchStrings(rv.match), Filter: ca.cfg.Filter, Since: rv.start.Add(-time.Second)}
	ev, err := s.tasks.WaitSync(ctx, callerFrom(ctx).owner, spec, min(s.opts.SyncWait, ca.cfg.Timeout))
	if err != nil {
		return nil, err
	}
	if ev != nil {
		return task.CompletionResult(ev, rv.upstream), nil
	}
	since := spec.Since.UTC().Format(time.RFC3339Nano)
	out := waitResult{
		Status: "waiting", Since: since, Upstream: rv.upstream,
		Message: fmt.Sprintf("%s succeeded; its %s %s event has not arrived yet. Call wait_for_event with the arguments in next to keep waiting.", ca.cfg.Tool, ca.cfg.Source, ca.cfg.Type),
		Next:    &task.NextCall{Tool: toolWaitForEvent, Arguments: waitArgs{Source: ca.cfg.Source, Type: ca.cfg.Type, Match: rv.match, Filter: ca.cfg.Filter, Since: since}},
	}
	b, _ := json.Marshal(out)
	return &mcp.CallToolResult{Content: append(res.Content, &mcp.TextContent{Text: string(b)}), StructuredContent: out}, nil
}
