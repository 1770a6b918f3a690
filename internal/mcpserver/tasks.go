package mcpserver

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/mcpwire"
	"github.com/mailroomhq/mailroom/internal/store"
)

// Protocol revisions and the names the two Tasks wire forms use.
const (
	// ProtocolLegacy is the revision with experimental core Tasks.
	ProtocolLegacy = "2025-11-25"
	// ProtocolModern is the first revision with the Tasks extension.
	ProtocolModern = "2026-07-28"
	// TasksExtension is the Tasks extension identifier (SEP-2663).
	TasksExtension = "io.modelcontextprotocol/tasks"
	// relatedTaskKey is the _meta key that ties a result to its task.
	relatedTaskKey = mcpwire.RelatedTaskKey
	// internalTaskKey carries a legacy params.task through the SDK, which
	// drops unknown params; the HTTP and stdio layers move it there.
	internalTaskKey = "mailroom.internal/task"
)

// newTaskID returns a task id with 130 bits from crypto/rand.
func newTaskID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return "task_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// isModern reports whether a protocol revision uses the Tasks extension.
func isModern(protocol string) bool { return protocol >= ProtocolModern }

// modernTask is the SEP-2663 DetailedTask.
type modernTask struct {
	TaskID         string          `json:"taskId"`
	Status         string          `json:"status"`
	StatusMessage  string          `json:"statusMessage,omitempty"`
	CreatedAt      string          `json:"createdAt"`
	LastUpdatedAt  string          `json:"lastUpdatedAt"`
	TTLMs          *int64          `json:"ttlMs"`
	PollIntervalMs int64           `json:"pollIntervalMs,omitempty"`
	Result         json.RawMessage `json:"result,omitempty"`
	Error          json.RawMessage `json:"error,omitempty"`
}

func ttlMillis(t *store.Task) *int64 {
	if t.TTL <= 0 {
		return nil
	}
	ms := t.TTL.Milliseconds()
	return &ms
}

func toLegacy(t *store.Task) mcpwire.LegacyTask {
	return mcpwire.NewLegacyTask(t.ID, t.Status, t.StatusMessage, t.CreatedAt, t.UpdatedAt, t.TTL, t.PollInterval)
}

// rawResult and objectOf are mcpwire's, under short local names.
type rawResult = mcpwire.RawResult

func objectOf(v any) map[string]any { return mcpwire.ObjectOf(v) }

func stamp(t time.Time) string { return mcpwire.Stamp(t) }

func toModern(t *store.Task) modernTask {
	m := modernTask{
		TaskID: t.ID, Status: t.Status, StatusMessage: t.StatusMessage,
		CreatedAt: stamp(t.CreatedAt), LastUpdatedAt: stamp(t.UpdatedAt),
		TTLMs: ttlMillis(t), PollIntervalMs: t.PollInterval.Milliseconds(),
	}
	switch t.Status {
	case store.TaskCompleted:
		m.Result = t.Result
	case store.TaskFailed:
		m.Error = t.Error
		if len(m.Error) == 0 { // failed without a stored error: say why
			m.Error, _ = json.Marshal(map[string]any{"code": jsonrpc.CodeInternalError, "message": t.StatusMessage})
		}
	}
	return m
}

// legacyCreateResult is the 2025-11-25 CreateTaskResult: {task: Task}.
func legacyCreateResult(t *store.Task) *rawResult {
	return &rawResult{Body: map[string]any{"task": toLegacy(t)}}
}

// modernCreateResult is the flat SEP-2663 CreateTaskResult.
func modernCreateResult(t *store.Task) *rawResult {
	m := toModern(t)
	m.Result, m.Error = nil, nil
	body := objectOf(m)
	body["resultType"] = "task"
	return &rawResult{Body: body}
}

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

// missingExtension is the -32021 error of a 2026-07-28 client that did not
// declare the Tasks extension.
func missingExtension() error {
	data, _ := json.Marshal(map[string]any{"requiredCapabilities": map[string]any{"extensions": map[string]any{TasksExtension: map[string]any{}}}})
	return &jsonrpc.Error{Code: mcp.CodeMissingRequiredClientCapabilities, Message: "Missing required client capability: " + TasksExtension, Data: data}
}

// caller is who sent a request: set by the receiving middleware.
type caller struct {
	owner    string
	session  string
	protocol string
	// tasksExt: the request declared the Tasks extension (2026-07-28).
	tasksExt bool
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

// tasksGet serves tasks/get in both wire forms.
func (s *Server) tasksGet(ctx context.Context, _ *mcp.ServerSession, p *taskParams) (*rawResult, error) {
	c := callerFrom(ctx)
	if isModern(c.protocol) && !c.tasksExt {
		return nil, missingExtension()
	}
	t, err := s.getOwned(ctx, p.TaskID)
	if err != nil {
		return nil, err
	}
	if isModern(c.protocol) {
		body := objectOf(toModern(t))
		body["resultType"] = "complete"
		return &rawResult{Body: body}, nil
	}
	return &rawResult{Body: objectOf(toLegacy(t))}, nil
}

// tasksResult serves 2025-11-25 tasks/result: it blocks until the task is
// terminal and returns what the tool call would have returned.
func (s *Server) tasksResult(ctx context.Context, _ *mcp.ServerSession, p *taskParams) (*rawResult, error) {
	if isModern(callerFrom(ctx).protocol) {
		return nil, rpcError(jsonrpc.CodeMethodNotFound, "tasks/result is not part of the Tasks extension; use tasks/get")
	}
	for {
		t, err := s.getOwned(ctx, p.TaskID)
		if err != nil {
			return nil, err
		}
		related := map[string]any{relatedTaskKey: map[string]any{"taskId": t.ID}}
		switch t.Status {
		case store.TaskCompleted:
			var body map[string]any
			if err := json.Unmarshal(t.Result, &body); err != nil {
				return nil, rpcError(jsonrpc.CodeInternalError, "stored result of %s: %v", t.ID, err)
			}
			r := &rawResult{Body: body}
			r.Meta = related
			return r, nil
		case store.TaskFailed:
			var e jsonrpc.Error
			if err := json.Unmarshal(t.Error, &e); err != nil || e.Code == 0 {
				e = jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: t.StatusMessage}
			}
			e.Data, _ = json.Marshal(map[string]any{"_meta": related})
			return nil, &e
		case store.TaskCancelled:
			data, _ := json.Marshal(map[string]any{"_meta": related})
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "task " + t.ID + " was cancelled", Data: data}
		}
		if err := s.waitChange(ctx, t.ID, t.PollInterval); err != nil {
			return nil, err
		}
	}
}

// tasksList serves 2025-11-25 tasks/list: the caller's tasks, newest first.
func (s *Server) tasksList(ctx context.Context, _ *mcp.ServerSession, p *listTasksParams) (*rawResult, error) {
	c := callerFrom(ctx)
	if isModern(c.protocol) {
		return nil, rpcError(jsonrpc.CodeMethodNotFound, "tasks/list is not part of the Tasks extension")
	}
	var cursor string
	if p != nil {
		cursor = p.Cursor
	}
	const pageSize = 50
	ts, err := s.store.TaskList(ctx, &store.TaskListParams{Owner: c.owner, Cursor: cursor, Limit: pageSize, Now: s.now()})
	if err != nil {
		return nil, rpcError(jsonrpc.CodeInternalError, "list tasks: %v", err)
	}
	out := make([]mcpwire.LegacyTask, len(ts))
	for i, t := range ts {
		out[i] = toLegacy(t)
	}
	body := map[string]any{"tasks": out}
	if len(ts) == pageSize {
		body["nextCursor"] = ts[len(ts)-1].ID
	}
	return &rawResult{Body: body}, nil
}

// tasksCancel serves tasks/cancel. Legacy returns the cancelled task and
// refuses terminal ones; the extension acknowledges with an empty result.
func (s *Server) tasksCancel(ctx context.Context, _ *mcp.ServerSession, p *taskParams) (*rawResult, error) {
	c := callerFrom(ctx)
	if isModern(c.protocol) && !c.tasksExt {
		return nil, missingExtension()
	}
	t, err := s.getOwned(ctx, p.TaskID)
	if err != nil {
		return nil, err
	}
	t, err = s.store.TaskUpdate(ctx, &store.TaskUpdateParams{ID: t.ID, Status: store.TaskCancelled, StatusMessage: "cancelled by the client", Now: s.now()})
	if errors.Is(err, store.ErrTaskTerminal) {
		if isModern(c.protocol) {
			return &rawResult{Body: map[string]any{"resultType": "complete"}}, nil
		}
		return nil, rpcError(jsonrpc.CodeInvalidParams, "task %s is already %s and cannot be cancelled", p.TaskID, t.Status)
	}
	if err != nil {
		return nil, rpcError(jsonrpc.CodeInternalError, "cancel task: %v", err)
	}
	s.correlator.remove(t.ID)
	s.correlator.remove(t.ID + failSuffix)
	if isModern(c.protocol) {
		return &rawResult{Body: map[string]any{"resultType": "complete"}}, nil
	}
	return &rawResult{Body: objectOf(toLegacy(t))}, nil
}

// tasksUpdate serves the extension's tasks/update. mailroom's tasks never
// enter input_required, so there is nothing outstanding to answer: the
// responses are acknowledged and ignored, as SEP-2663 says.
func (s *Server) tasksUpdate(ctx context.Context, _ *mcp.ServerSession, p *taskParams) (*rawResult, error) {
	c := callerFrom(ctx)
	if !isModern(c.protocol) {
		return nil, rpcError(jsonrpc.CodeMethodNotFound, "tasks/update needs protocol %s or later", ProtocolModern)
	}
	if !c.tasksExt {
		return nil, missingExtension()
	}
	if _, err := s.getOwned(ctx, p.TaskID); err != nil {
		return nil, err
	}
	return &rawResult{Body: map[string]any{"resultType": "complete"}}, nil
}

// registerTaskMethods adds the tasks/* methods to the SDK server.
func (s *Server) registerTaskMethods() error {
	for method, h := range map[string]func(context.Context, *mcp.ServerSession, *taskParams) (*rawResult, error){
		"tasks/get": s.tasksGet, "tasks/result": s.tasksResult, "tasks/cancel": s.tasksCancel, "tasks/update": s.tasksUpdate,
	} {
		if err := mcp.AddReceivingCustomMethod(s.mcp, method, h); err != nil {
			return fmt.Errorf("register %s: %w", method, err)
		}
	}
	if err := mcp.AddReceivingCustomMethod(s.mcp, "tasks/list", s.tasksList); err != nil {
		return fmt.Errorf("register tasks/list: %w", err)
	}
	return nil
}
