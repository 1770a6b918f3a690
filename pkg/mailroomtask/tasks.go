package mailroomtask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/mcpwire"
)

// Defaults of [Options].
const (
	// DefaultOwner is the identity of callers without a token.
	DefaultOwner = "mcp"
	// DefaultSyncWait is how long a call without task support waits.
	DefaultSyncWait = 25 * time.Second
)

// Options configures [New]. The zero value is ready to use.
type Options struct {
	// Token is mailroom's admin API token (api.token). Empty sends none,
	// which a mailroom on loopback without a token accepts.
	Token string
	// HTTPClient calls mailroom. If nil, a client without timeout is used
	// (calls are bounded by their contexts).
	HTTPClient *http.Client
	// Owner is the identity of callers the go-sdk has no TokenInfo for.
	// If empty, [DefaultOwner].
	Owner string
	// SyncWait bounds how long a tool call without task support waits for
	// its webhook. If zero, [DefaultSyncWait].
	SyncWait time.Duration
	// Logger receives failures of background status watches. If nil,
	// they are discarded.
	Logger *slog.Logger
}

// Wait is what a started tool call waits for: mailroom's correlation rule.
type Wait struct {
	// Source is the mailroom source the webhook arrives on. Required.
	Source string
	// Type is the provider's event type, e.g. checkout.session.completed.
	Type string
	// Match holds dotted body paths and the values they must equal.
	Match map[string]any
	// Filter is a CEL expression over body, headers, query, path and
	// source that must be true.
	Filter string
	// Timeout fails the task when no event matched in time. If zero,
	// mailroom's default (1h).
	Timeout time.Duration
	// Message is the task's status message while it waits, e.g. where the
	// customer pays.
	Message string
}

// StartFunc starts the work of one tool call and says which webhook will
// finish it. An error fails the call before any task exists: an error tool
// result (isError), or for a 2025-11-25 task-augmented call a JSON-RPC
// error (-32603). A *jsonrpc.Error is sent as is in every form.
type StartFunc[In any] func(ctx context.Context, req *mcp.CallToolRequest, in In) (*Wait, error)

// Tasks serves mailroom-backed Tasks on go-sdk servers. Build it with
// [New], add tools with [AddTool], mount [Tasks.Handler], and [Tasks.Close]
// it on shutdown. It is safe for concurrent use.
type Tasks struct {
	api  *apiClient
	opts Options
	log  *slog.Logger

	ctx    context.Context // ends on Close; bounds status watches
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// servers are those Install has run on; tools the task tools by name.
	servers map[*mcp.Server]bool
	tools   map[string]bool
	// streams are the legacy sessions' GET streams, by session id.
	streams map[string]*mcpwire.SSEStream
}

// New returns Tasks backed by the mailroom at server (its base URL, e.g.
// http://127.0.0.1:8080).
func New(server string, opts *Options) (*Tasks, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Owner == "" {
		o.Owner = DefaultOwner
	}
	if o.SyncWait <= 0 {
		o.SyncWait = DefaultSyncWait
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	api, err := newAPIClient(server, o.Token, o.HTTPClient)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Tasks{api: api, opts: o, log: o.Logger, ctx: ctx, cancel: cancel,
		servers: map[*mcp.Server]bool{}, tools: map[string]bool{}, streams: map[string]*mcpwire.SSEStream{}}, nil
}

// Close stops the background status watches and waits for them. Tasks
// themselves live on in mailroom.
func (t *Tasks) Close() error {
	t.cancel()
	t.wg.Wait()
	return nil
}

// AddTool adds a tool to s whose calls become tasks: start runs, and the
// call completes when the webhook its [Wait] describes arrives. The input
// schema comes from In, as with [mcp.AddTool]. It calls [Tasks.Install]
// on s the first time.
func AddTool[In any](t *Tasks, s *mcp.Server, tool *mcp.Tool, start StartFunc[In]) {
	if err := t.Install(s); err != nil {
		panic(err) // only a programmer error: a method name the SDK reserves
	}
	t.mu.Lock()
	t.tools[tool.Name] = true
	t.mu.Unlock()
	mcp.AddTool(s, tool, func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, any, error) {
		h, asTask := ctx.Value(taskRequestKey{}).(*taskRequest)
		fail := func(err error) (*mcp.CallToolResult, any, error) {
			if asTask {
				h.err = err // the middleware answers a legacy task request with a JSON-RPC error
			}
			return nil, nil, err
		}
		w, err := start(ctx, req, in)
		if err != nil {
			return fail(err)
		}
		if w == nil || w.Source == "" {
			return fail(errors.New("mailroomtask: the start function returned no Wait with a Source"))
		}
		c := callerFrom(ctx)
		var ttl time.Duration
		if asTask {
			ttl = h.ttl
		}
		created, err := t.api.create(ctx, w, c.owner, tool.Name, ttl)
		if err != nil {
			return fail(err)
		}
		if asTask {
			h.task = created // the middleware answers with CreateTaskResult
			t.watch(created.ID, c.session)
			return &mcp.CallToolResult{}, nil, nil
		}
		return t.syncResult(ctx, created)
	})
}

// syncResult waits up to SyncWait for the task and answers the call.
func (t *Tasks) syncResult(ctx context.Context, created *apiTask) (*mcp.CallToolResult, any, error) {
	deadline := time.Now().Add(t.opts.SyncWait)
	task := created
	for !terminal(task.Status) && time.Until(deadline) > 0 {
		var err error
		if task, err = t.api.get(ctx, created.ID, min(time.Until(deadline), maxWait)); err != nil {
			return nil, nil, err
		}
	}
	if res, _ := mcpwire.Outcome(task.Status, task.StatusMessage, task.Result, task.Error); res != nil {
		var r mcp.CallToolResult // the tool result, a timed-out wait's isError one included
		if err := json.Unmarshal(res, &r); err != nil {
			return nil, nil, fmt.Errorf("mailroomtask: result of %s: %w", task.ID, err)
		}
		return &r, nil, nil
	}
	if terminal(task.Status) {
		return nil, nil, fmt.Errorf("task %s %s: %s", task.ID, task.Status, task.StatusMessage)
	}
	msg := fmt.Sprintf("Still waiting (%s). Task %s completes when the webhook arrives; call again to keep waiting.", task.StatusMessage, task.ID)
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: msg}},
		StructuredContent: map[string]any{"status": "waiting", "taskId": task.ID}}, nil, nil
}

// taskRequest is a legacy params.task carried from the middleware to the
// tool handler (which fills task, or err when the call failed before a
// task existed) and back.
type taskRequest struct {
	ttl  time.Duration
	task *apiTask
	err  error
}

type taskRequestKey struct{}

// caller is who sent a request, and in which Tasks wire form.
type caller struct {
	owner, session string
	// modern: the request is 2026-07-28 or later (the Tasks extension
	// form); tasksExt: it declared the extension.
	modern, tasksExt bool
}

func callerOf(req mcp.Request) caller {
	c := caller{}
	if ex := req.GetExtra(); ex != nil && ex.TokenInfo != nil {
		c.owner = ex.TokenInfo.UserID
	}
	if ss, ok := req.GetSession().(*mcp.ServerSession); ok && ss != nil {
		c.session = ss.ID()
	}
	meta := req.GetParams().GetMeta()
	v, _ := meta[mcp.MetaKeyProtocolVersion].(string)
	c.modern = v >= protocolModern
	caps, _ := meta[mcp.MetaKeyClientCapabilities].(map[string]any)
	exts, _ := caps["extensions"].(map[string]any)
	_, c.tasksExt = exts[mcpwire.TasksExtension]
	return c
}

// protocolModern is the first revision with the Tasks extension form.
const protocolModern = "2026-07-28"

// tasksCapability is the 2025-11-25 tasks server capability.
var tasksCapability = map[string]any{
	"cancel":   map[string]any{},
	"requests": map[string]any{"tools": map[string]any{"call": map[string]any{}}},
}

// Install adds the Tasks surface to s in both wire forms: for 2025-11-25,
// the tasks capability in the initialize result, taskSupport on task
// tools in tools/list, task creation for tools/call with params.task, and
// tasks/get, tasks/result and tasks/cancel; for 2026-07-28, the Tasks
// extension in server/discover, task creation for calls that declare it,
// and tasks/get, tasks/cancel and tasks/update. Calling it again for the
// same server does nothing.
func (t *Tasks) Install(s *mcp.Server) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.servers[s] {
		return nil
	}
	for method, h := range map[string]func(context.Context, *mcp.ServerSession, *taskParams) (*rawResult, error){
		"tasks/get": t.tasksGet, "tasks/result": t.tasksResult, "tasks/cancel": t.tasksCancel, "tasks/update": t.tasksUpdate,
	} {
		if err := mcp.AddReceivingCustomMethod(s, method, h); err != nil {
			return fmt.Errorf("mailroomtask: register %s: %w", method, err)
		}
	}
	s.AddReceivingMiddleware(t.middleware)
	t.servers[s] = true
	return nil
}

func (t *Tasks) isTaskTool(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tools[name]
}

// middleware identifies callers and turns task-augmented calls into tasks.
func (t *Tasks) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		ctx = context.WithValue(ctx, callerKey{}, t.identify(req))
		switch method {
		case "initialize":
			res, err := next(ctx, method, req)
			if err != nil {
				return res, err
			}
			return patchObject(res, func(body map[string]any) {
				caps, _ := body["capabilities"].(map[string]any)
				if caps == nil {
					caps = map[string]any{}
					body["capabilities"] = caps
				}
				caps["tasks"] = tasksCapability
			}), nil
		case "server/discover":
			res, err := next(ctx, method, req)
			if err != nil {
				return res, err
			}
			return patchObject(res, func(body map[string]any) {
				caps, _ := body["capabilities"].(map[string]any)
				if caps == nil {
					caps = map[string]any{}
					body["capabilities"] = caps
				}
				exts, _ := caps["extensions"].(map[string]any)
				if exts == nil {
					exts = map[string]any{}
					caps["extensions"] = exts
				}
				exts[mcpwire.TasksExtension] = map[string]any{}
			}), nil
		case "tools/list":
			res, err := next(ctx, method, req)
			if err != nil || callerFrom(ctx).modern {
				return res, err
			}
			return patchObject(res, func(body map[string]any) {
				tools, _ := body["tools"].([]any)
				for _, tool := range tools {
					if tm, _ := tool.(map[string]any); tm != nil {
						if name, _ := tm["name"].(string); t.isTaskTool(name) {
							tm["execution"] = map[string]any{"taskSupport": "optional"}
						}
					}
				}
			}), nil
		case "tools/call":
			r, ok := req.(*mcp.CallToolRequest)
			if !ok || r.Params == nil {
				break
			}
			c := callerFrom(ctx)
			tr, ok := takeTaskParam(r.Params)
			if !t.isTaskTool(r.Params.Name) {
				if ok && !c.modern { // its taskSupport is forbidden: 2025-11-25 recommends -32601
					return nil, rpcError(jsonrpc.CodeMethodNotFound, "tool %q does not support tasks; call it without params.task", r.Params.Name)
				}
				break
			}
			if c.modern {
				tr, ok = &taskRequest{}, c.tasksExt // the server decides: every call of a task tool
			}
			if !ok {
				break
			}
			res, err := next(context.WithValue(ctx, taskRequestKey{}, tr), method, req)
			if err != nil || tr.task == nil {
				if err == nil && !c.modern {
					return nil, notAccepted(tr.err, res)
				}
				return res, err // 2026-07-28: the server may answer any call without a task
			}
			if c.modern {
				m := tr.task.modern()
				m.Result, m.Error = nil, nil
				body := mcpwire.ObjectOf(m)
				body["resultType"] = "task"
				return &rawResult{Body: body}, nil
			}
			return &rawResult{Body: map[string]any{"task": tr.task.legacy()}}, nil
		}
		return next(ctx, method, req)
	}
}

// notAccepted is the JSON-RPC error of a 2025-11-25 task-augmented call
// that failed before a task existed. That revision's receiver answers a
// request it accepts with a CreateTaskResult and creates tasks in status
// working, so a call it did not accept is a protocol error: the start
// function's (or mailroom's) error as -32603, or its own *jsonrpc.Error,
// and arguments the SDK refused (the handler never ran, res is its error
// result) as -32602.
func notAccepted(startErr error, res mcp.Result) error {
	var rpc *jsonrpc.Error
	if errors.As(startErr, &rpc) {
		return rpc
	}
	if startErr != nil {
		return rpcError(jsonrpc.CodeInternalError, "task not created: %v", startErr)
	}
	msg := "the tool call failed before a task was created"
	if r, ok := res.(*mcp.CallToolResult); ok && r != nil {
		for _, ct := range r.Content {
			if tc, ok := ct.(*mcp.TextContent); ok {
				msg = tc.Text
				break
			}
		}
	}
	return rpcError(jsonrpc.CodeInvalidParams, "task not created: %s", msg)
}

type callerKey struct{}

// identify returns the caller with the owner defaulted.
func (t *Tasks) identify(req mcp.Request) caller {
	if p := req.GetParams(); p == nil || reflect.ValueOf(p).IsNil() {
		return caller{owner: t.opts.Owner}
	}
	c := callerOf(req)
	if c.owner == "" {
		c.owner = t.opts.Owner
	}
	return c
}

func callerFrom(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// taskParams is the params of tasks/get, tasks/result and tasks/cancel.
type taskParams struct {
	mcp.ParamsBase
	TaskID string `json:"taskId"`
}

func rpcError(code int64, format string, args ...any) error {
	return &jsonrpc.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// getOwned reads a task and hides other callers' tasks as unknown.
func (t *Tasks) getOwned(ctx context.Context, id string, wait time.Duration) (*apiTask, error) {
	if id == "" {
		return nil, rpcError(jsonrpc.CodeInvalidParams, "taskId is required")
	}
	task, err := t.api.get(ctx, id, wait)
	if errors.Is(err, errNotFound) || (err == nil && task.Owner != callerFrom(ctx).owner) {
		return nil, rpcError(jsonrpc.CodeInvalidParams, "unknown or expired task %q", id)
	}
	if err != nil {
		return nil, rpcError(jsonrpc.CodeInternalError, "read task: %v", err)
	}
	return task, nil
}

// missingExtension is the -32021 error of a 2026-07-28 client that did
// not declare the Tasks extension.
func missingExtension() error {
	data, _ := json.Marshal(map[string]any{"requiredCapabilities": map[string]any{"extensions": map[string]any{mcpwire.TasksExtension: map[string]any{}}}})
	return &jsonrpc.Error{Code: mcp.CodeMissingRequiredClientCapabilities, Message: "Missing required client capability: " + mcpwire.TasksExtension, Data: data}
}

func complete() *rawResult { return &rawResult{Body: map[string]any{"resultType": "complete"}} }

// tasksGet answers the Task (2025-11-25) or the DetailedTask with its
// result or error inline (2026-07-28).
func (t *Tasks) tasksGet(ctx context.Context, _ *mcp.ServerSession, p *taskParams) (*rawResult, error) {
	c := callerFrom(ctx)
	if c.modern && !c.tasksExt {
		return nil, missingExtension()
	}
	task, err := t.getOwned(ctx, p.TaskID, 0)
	if err != nil {
		return nil, err
	}
	if c.modern {
		body := mcpwire.ObjectOf(task.modern())
		body["resultType"] = "complete"
		return &rawResult{Body: body}, nil
	}
	return &rawResult{Body: mcpwire.ObjectOf(task.legacy())}, nil
}

// tasksUpdate acknowledges (2026-07-28): these tasks never ask for input.
func (t *Tasks) tasksUpdate(ctx context.Context, _ *mcp.ServerSession, p *taskParams) (*rawResult, error) {
	c := callerFrom(ctx)
	if !c.modern {
		return nil, rpcError(jsonrpc.CodeMethodNotFound, "tasks/update needs protocol %s or later", protocolModern)
	}
	if !c.tasksExt {
		return nil, missingExtension()
	}
	if _, err := t.getOwned(ctx, p.TaskID, 0); err != nil {
		return nil, err
	}
	return complete(), nil
}

// tasksResult blocks until the task is terminal and returns what the tool
// call would have returned.
func (t *Tasks) tasksResult(ctx context.Context, _ *mcp.ServerSession, p *taskParams) (*rawResult, error) {
	if callerFrom(ctx).modern {
		return nil, rpcError(jsonrpc.CodeMethodNotFound, "tasks/result is not part of the Tasks extension; use tasks/get")
	}
	for {
		task, err := t.getOwned(ctx, p.TaskID, maxWait)
		if err != nil {
			return nil, err
		}
		if res, done, err := mcpwire.LegacyTaskResult(task.ID, task.Status, task.StatusMessage, task.Result, task.Error); done {
			return res, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// tasksCancel cancels the task in mailroom. 2025-11-25 returns the
// cancelled task and refuses a terminal one; 2026-07-28 acknowledges,
// terminal or not.
func (t *Tasks) tasksCancel(ctx context.Context, _ *mcp.ServerSession, p *taskParams) (*rawResult, error) {
	c := callerFrom(ctx)
	if c.modern && !c.tasksExt {
		return nil, missingExtension()
	}
	if _, err := t.getOwned(ctx, p.TaskID, 0); err != nil {
		return nil, err
	}
	task, err := t.api.cancel(ctx, p.TaskID)
	if c.modern && (err == nil || errors.Is(err, errConflict)) {
		return complete(), nil
	}
	if errors.Is(err, errConflict) {
		return nil, rpcError(jsonrpc.CodeInvalidParams, "task %s is already terminal and cannot be cancelled", p.TaskID)
	}
	if err != nil {
		return nil, rpcError(jsonrpc.CodeInternalError, "cancel task: %v", err)
	}
	return &rawResult{Body: mcpwire.ObjectOf(task.legacy())}, nil
}

// watch follows a task until it is terminal and pushes its status to the
// session's GET stream.
func (t *Tasks) watch(id, session string) {
	if session == "" {
		return
	}
	t.wg.Go(func() {
		for t.ctx.Err() == nil {
			task, err := t.api.get(t.ctx, id, maxWait)
			if err != nil {
				if t.ctx.Err() == nil {
					t.log.Warn("mailroomtask: watch task", "task", id, "err", err)
					select {
					case <-t.ctx.Done():
					case <-time.After(time.Second):
					}
				}
				if errors.Is(err, errNotFound) {
					return
				}
				continue
			}
			if terminal(task.Status) {
				t.notify(session, task)
				return
			}
		}
	})
}
