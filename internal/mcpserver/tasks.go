package mcpserver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/mcpwire"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/task"
)

// Protocol revisions and the names the two Tasks wire forms use.
const (
	// ProtocolLegacy is the revision with experimental core Tasks.
	ProtocolLegacy = "2025-11-25"
	// ProtocolModern is the first revision with the Tasks extension.
	ProtocolModern = "2026-07-28"
	// TasksExtension is the Tasks extension identifier (SEP-2663).
	TasksExtension = mcpwire.TasksExtension
	// relatedTaskKey is the _meta key that ties a result to its task.
	relatedTaskKey = mcpwire.RelatedTaskKey
	// internalTaskKey carries a legacy params.task through the SDK, which
	// drops unknown params; the HTTP and stdio layers move it there.
	internalTaskKey = "mailroom.internal/task"
)

// tasksWire is one protocol revision's Tasks wire form: how a tools/call
// asks for a task, how a task and its outcome are shown, and what each
// tasks/* method answers. The receiving middleware picks one per request
// ([Server.wireFor]); nothing else branches on the revision. The two
// implementations live in tasks_2025_11_25.go and tasks_2026_07_28.go.
type tasksWire interface {
	// taskRequested reports whether a tools/call asks for a task, and
	// the TTL it asks for (zero for the default).
	taskRequested(c caller, p *mcp.CallToolParamsRaw) (ttl time.Duration, ok bool)
	// refuseTask is the error for a task request to a tool that takes
	// none, or nil when such a call simply runs synchronously.
	refuseTask(tool string) error
	// created answers the call that created task t.
	created(t *store.Task) mcp.Result
	// endedAtOnce answers a task request whose call ended before any
	// work could start (bad arguments): res is what the plain call
	// returns, ttl the lifetime the request asked for (zero: the default).
	endedAtOnce(ctx context.Context, c caller, p *mcp.CallToolParamsRaw, ttl time.Duration, res *mcp.CallToolResult) (mcp.Result, error)
	// patchInitialize and patchToolList add what the revision declares
	// about Tasks to the initialize and tools/list results.
	patchInitialize(res mcp.Result) mcp.Result
	patchToolList(res mcp.Result, takesTasks func(string) bool) mcp.Result
	// The tasks/* methods.
	get(ctx context.Context, p *taskParams) (*rawResult, error)
	result(ctx context.Context, p *taskParams) (*rawResult, error)
	list(ctx context.Context, p *listTasksParams) (*rawResult, error)
	cancel(ctx context.Context, p *taskParams) (*rawResult, error)
	update(ctx context.Context, p *taskParams) (*rawResult, error)
	// sessionNotification is the status notification of t for the
	// session that created it, or nil when the revision has none.
	sessionNotification(t *store.Task) []byte
}

// wireFor returns the Tasks wire form of a protocol revision: the
// extension form from 2026-07-28 on, the core form before.
func (s *Server) wireFor(protocol string) tasksWire {
	if protocol >= ProtocolModern {
		return modernTasks{s}
	}
	return legacyTasks{s}
}

// taskIDPattern is the shape of the ids [task.NewID] makes.
var taskIDPattern = regexp.MustCompile(`^task_[a-z2-7]{26}$`)

// rawResult and objectOf are mcpwire's, under short local names.
type rawResult = mcpwire.RawResult

func objectOf(v any) map[string]any { return mcpwire.ObjectOf(v) }

// taskParams is the params of tasks/get, tasks/result, tasks/cancel and
// tasks/update.
type taskParams struct {
	mcp.ParamsBase
	TaskID string `json:"taskId"`
	// InputResponses is tasks/update's payload; mailroom's tasks never ask
	// for input, so it is accepted and ignored as the extension allows.
	InputResponses map[string]any `json:"inputResponses,omitempty"`
}

// listTasksParams is the params of tasks/list.
type listTasksParams struct {
	mcp.ParamsBase
	Cursor string `json:"cursor,omitempty"`
}

// rpcError builds a JSON-RPC error.
func rpcError(code int64, format string, args ...any) error {
	return &jsonrpc.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// caller is who sent a request and in which wire form: set by the
// receiving middleware.
type caller struct {
	owner string
	// project is the one project the caller acts in; empty for a caller
	// of every project (an admin token, or no token on loopback or stdio).
	project  string
	session  string
	protocol string
	// tasksExt: the request declared the Tasks extension (2026-07-28).
	tasksExt bool
	// wire is the Tasks wire form of protocol.
	wire tasksWire
}

// sees reports whether a row or entry of project is the caller's.
func (c caller) sees(project string) bool {
	return c.project == "" || store.ProjectOrDefault(project) == c.project
}

// qualify returns the full name a name the caller gives means: a short
// name is in the caller's project, a full one must be in it; a caller of
// every project gives full names. ok is false when name cannot be the
// caller's.
func (c caller) qualify(name string) (string, bool) {
	if c.project == "" || name == "" {
		return name, true
	}
	full, err := store.Qualify(c.project, name)
	return full, err == nil
}

type callerKey struct{}

func callerFrom(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// metaProtocol reads the per-request protocol version of a 2026-07-28 request.
func metaProtocol(m map[string]any) string {
	v, _ := m[mcp.MetaKeyProtocolVersion].(string)
	return v
}

// metaHasTasks reports whether per-request client capabilities declare the
// Tasks extension.
func metaHasTasks(m map[string]any) bool {
	caps, _ := m[mcp.MetaKeyClientCapabilities].(map[string]any)
	exts, _ := caps["extensions"].(map[string]any)
	_, ok := exts[TasksExtension]
	return ok
}

// getOwned loads a task and checks it belongs to the caller. A task of
// someone else is reported as unknown, like an expired one.
func (s *Server) getOwned(ctx context.Context, id string) (*store.Task, error) {
	if id == "" {
		return nil, rpcError(jsonrpc.CodeInvalidParams, "taskId is required")
	}
	t, err := s.store.TaskGet(ctx, id, s.now())
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Owner != callerFrom(ctx).owner) {
		return nil, rpcError(jsonrpc.CodeInvalidParams, "unknown or expired task %q", id)
	}
	if err != nil {
		return nil, rpcError(jsonrpc.CodeInternalError, "read task: %v", err)
	}
	return t, nil
}

// cancelOwned cancels the caller's task t. It reports whether the task
// was already terminal (and left as it was).
func (s *Server) cancelOwned(ctx context.Context, id string) (t *store.Task, wasTerminal bool, err error) {
	if _, err := s.getOwned(ctx, id); err != nil {
		return nil, false, err
	}
	t, err = s.store.TaskUpdate(ctx, &store.TaskUpdateParams{ID: id, Status: store.TaskCancelled, StatusMessage: "cancelled by the client", Now: s.now()})
	if errors.Is(err, store.ErrTaskTerminal) {
		return t, true, nil
	}
	if err != nil {
		return nil, false, rpcError(jsonrpc.CodeInternalError, "cancel task: %v", err)
	}
	s.tasks.Forget(t.ID)
	return t, false, nil
}

// outcome is how a terminal task ended: see [mcpwire.Outcome].
func outcome(t *store.Task) (json.RawMessage, *jsonrpc.Error) {
	return mcpwire.Outcome(t.Status, t.StatusMessage, t.Result, t.Error)
}

// storeEndedTask records a task whose call ended at once with res, so
// that a client that asked for a task still gets one, holding exactly
// what the plain call returned.
// Its lifetime is ttl (an hour when zero, at most [task.MaxTTL]).
func (s *Server) storeEndedTask(ctx context.Context, c caller, p *mcp.CallToolParamsRaw, ttl time.Duration, res *mcp.CallToolResult) (*store.Task, error) {
	b, err := json.Marshal(res)
	if err != nil {
		return nil, rpcError(jsonrpc.CodeInternalError, "encode result: %v", err)
	}
	t := &store.Task{
		ID: task.NewID(), Owner: c.owner, SessionID: c.session, Protocol: c.protocol, Tool: p.Name,
		Arguments: p.Arguments, TTL: min(cmp.Or(ttl, time.Hour), task.MaxTTL), PollInterval: s.opts.PollInterval,
		Status: store.TaskCompleted, StatusMessage: "the call ended at once", Result: b,
	}
	if res.IsError {
		t.Status, t.StatusMessage = store.TaskFailed, toolErrorText(res)
	}
	if err := s.store.TaskCreate(ctx, t); err != nil {
		return nil, rpcError(jsonrpc.CodeInternalError, "create task: %v", err)
	}
	return t, nil
}

// toolErrorText is the text of an error tool result, for a status message.
func toolErrorText(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			return tc.Text
		}
	}
	return "the tool returned an error"
}

// registerTaskMethods adds the tasks/* methods to the SDK server. Each
// answers in the wire form the middleware chose for the request.
func (s *Server) registerTaskMethods() error {
	for method, h := range map[string]func(tasksWire, context.Context, *taskParams) (*rawResult, error){
		"tasks/get": tasksWire.get, "tasks/result": tasksWire.result, "tasks/cancel": tasksWire.cancel, "tasks/update": tasksWire.update,
	} {
		err := mcp.AddReceivingCustomMethod(s.mcp, method, func(ctx context.Context, _ *mcp.ServerSession, p *taskParams) (*rawResult, error) {
			if p == nil {
				p = &taskParams{}
			}
			return h(callerFrom(ctx).wire, ctx, p)
		})
		if err != nil {
			return fmt.Errorf("register %s: %w", method, err)
		}
	}
	err := mcp.AddReceivingCustomMethod(s.mcp, "tasks/list", func(ctx context.Context, _ *mcp.ServerSession, p *listTasksParams) (*rawResult, error) {
		if p == nil {
			p = &listTasksParams{}
		}
		return callerFrom(ctx).wire.list(ctx, p)
	})
	if err != nil {
		return fmt.Errorf("register tasks/list: %w", err)
	}
	return nil
}
