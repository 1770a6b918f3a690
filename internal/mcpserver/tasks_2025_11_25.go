package mcpserver

import (
	"context"
	"encoding/json"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/mcpwire"
	"github.com/mailroomhq/mailroom/internal/store"
)

// legacyTasks is the Tasks wire form of protocol 2025-11-25 (experimental
// core Tasks): the server declares capabilities.tasks in initialize and
// execution.taskSupport per tool; a client asks for a task with
// params.task on tools/call; tasks/result blocks and returns exactly what
// the call would have; tasks/list pages the caller's tasks; status goes
// out as notifications/tasks/status on the session's GET stream.
type legacyTasks struct{ s *Server }

// legacyTasksCapability is the 2025-11-25 server capability for Tasks.
var legacyTasksCapability = map[string]any{
	"list": map[string]any{}, "cancel": map[string]any{},
	"requests": map[string]any{"tools": map[string]any{"call": map[string]any{}}},
}

// legacyTaskRequest is the params.task a 2025-11-25 client sends.
type legacyTaskRequest struct {
	TTL *int64 `json:"ttl"`
}

func toLegacy(t *store.Task) mcpwire.LegacyTask {
	return mcpwire.NewLegacyTask(t.ID, t.Status, t.StatusMessage, t.CreatedAt, t.UpdatedAt, t.TTL, t.PollInterval)
}

// taskRequested reads the params.task the transport layer moved into
// _meta, and removes it so that the tool never sees it.
func (legacyTasks) taskRequested(_ caller, p *mcp.CallToolParamsRaw) (time.Duration, bool) {
	meta := p.GetMeta()
	raw, ok := meta[internalTaskKey]
	if !ok || raw == nil {
		return 0, false
	}
	delete(meta, internalTaskKey)
	var tr legacyTaskRequest
	b, _ := json.Marshal(raw)
	_ = json.Unmarshal(b, &tr)
	if tr.TTL != nil && *tr.TTL > 0 {
		return time.Duration(*tr.TTL) * time.Millisecond, true
	}
	return 0, true
}

// refuseTask: a tool whose taskSupport is forbidden must not run as a
// task, and the revision recommends -32601.
func (legacyTasks) refuseTask(tool string) error {
	return rpcError(jsonrpc.CodeMethodNotFound, "tool %q does not support tasks (execution.taskSupport is forbidden); call it without params.task", tool)
}

func (legacyTasks) created(t *store.Task) mcp.Result {
	return &rawResult{Body: map[string]any{"task": toLegacy(t)}}
}

// endedAtOnce: the client expects a task, so it gets one that is already
// terminal and holds the plain call's result (failed for isError, as the
// revision says).
func (w legacyTasks) endedAtOnce(ctx context.Context, c caller, p *mcp.CallToolParamsRaw, ttl time.Duration, res *mcp.CallToolResult) (mcp.Result, error) {
	t, err := w.s.storeEndedTask(ctx, c, p, ttl, res)
	if err != nil {
		return nil, err
	}
	return w.created(t), nil
}

// patchInitialize adds the tasks capability and drops the extensions
// map, which this revision does not know.
func (legacyTasks) patchInitialize(res mcp.Result) mcp.Result {
	ir, ok := res.(*mcp.InitializeResult)
	if !ok {
		return res
	}
	return mcpwire.Patch(ir, func(body map[string]any) {
		caps, _ := body["capabilities"].(map[string]any)
		if caps == nil {
			caps = map[string]any{}
			body["capabilities"] = caps
		}
		delete(caps, "extensions")
		caps["tasks"] = legacyTasksCapability
	})
}

// patchToolList marks which tools take tasks ("optional") and which do
// not ("forbidden").
func (legacyTasks) patchToolList(res mcp.Result, takesTasks func(string) bool) mcp.Result {
	lr, ok := res.(*mcp.ListToolsResult)
	if !ok {
		return res
	}
	return mcpwire.Patch(lr, func(body map[string]any) {
		tools, _ := body["tools"].([]any)
		for _, t := range tools {
			tm, _ := t.(map[string]any)
			if tm == nil {
				continue
			}
			support := "forbidden"
			if name, _ := tm["name"].(string); takesTasks(name) {
				support = "optional"
			}
			tm["execution"] = map[string]any{"taskSupport": support}
		}
	})
}

func (w legacyTasks) get(ctx context.Context, p *taskParams) (*rawResult, error) {
	t, err := w.s.getOwned(ctx, p.TaskID)
	if err != nil {
		return nil, err
	}
	return &rawResult{Body: objectOf(toLegacy(t))}, nil
}

// result blocks until the task is terminal and returns exactly what the
// tool call would have returned: its result, isError included, or its
// JSON-RPC error; each carries the related-task _meta.
func (w legacyTasks) result(ctx context.Context, p *taskParams) (*rawResult, error) {
	for {
		t, err := w.s.getOwned(ctx, p.TaskID)
		if err != nil {
			return nil, err
		}
		if res, done, err := mcpwire.LegacyTaskResult(t.ID, t.Status, t.StatusMessage, t.Result, t.Error); done {
			return res, err
		}
		if err := w.s.waitChange(ctx, t.ID, t.PollInterval); err != nil {
			return nil, err
		}
	}
}

// list pages the caller's tasks, newest first. The cursor is the last
// task id of the previous page; anything else is -32602.
func (w legacyTasks) list(ctx context.Context, p *listTasksParams) (*rawResult, error) {
	if p.Cursor != "" && !taskIDPattern.MatchString(p.Cursor) {
		return nil, rpcError(jsonrpc.CodeInvalidParams, "invalid cursor %q: pass the nextCursor of a previous tasks/list", p.Cursor)
	}
	const pageSize = 50
	ts, err := w.s.store.TaskList(ctx, &store.TaskListParams{Owner: callerFrom(ctx).owner, Cursor: p.Cursor, Limit: pageSize, Now: w.s.now()})
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

// cancel returns the cancelled task; a terminal task is -32602.
func (w legacyTasks) cancel(ctx context.Context, p *taskParams) (*rawResult, error) {
	t, wasTerminal, err := w.s.cancelOwned(ctx, p.TaskID)
	if err != nil {
		return nil, err
	}
	if wasTerminal {
		return nil, rpcError(jsonrpc.CodeInvalidParams, "task %s is already %s and cannot be cancelled", p.TaskID, t.Status)
	}
	return &rawResult{Body: objectOf(toLegacy(t))}, nil
}

func (legacyTasks) update(context.Context, *taskParams) (*rawResult, error) {
	return nil, rpcError(jsonrpc.CodeMethodNotFound, "tasks/update needs protocol %s or later", ProtocolModern)
}

func (legacyTasks) sessionNotification(t *store.Task) []byte {
	return notification("notifications/tasks/status", toLegacy(t))
}
