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

// modernTasks is the Tasks wire form of protocol 2026-07-28 (the
// extension io.modelcontextprotocol/tasks, SEP-2663): the client declares
// the extension in each request's _meta and the server decides whether a
// call becomes a task (a flat CreateTaskResult with resultType "task");
// tasks/get carries the result or error inline; an isError tool result is
// "completed", "failed" is for JSON-RPC errors only; status goes out as
// notifications/tasks on a subscriptions/listen stream.
type modernTasks struct{ s *Server }

func toModern(t *store.Task) mcpwire.ModernTask {
	return mcpwire.NewModernTask(t.ID, t.Status, t.StatusMessage, t.CreatedAt, t.UpdatedAt, t.TTL, t.PollInterval, t.Result, t.Error)
}

// needExtension is the -32021 error of a client that did not declare the
// extension, or nil.
func needExtension(ctx context.Context) error {
	if callerFrom(ctx).tasksExt {
		return nil
	}
	return missingExtension()
}

// missingExtension is the -32021 error of a 2026-07-28 client that did not
// declare the Tasks extension.
func missingExtension() error {
	data, _ := json.Marshal(map[string]any{"requiredCapabilities": map[string]any{"extensions": map[string]any{TasksExtension: map[string]any{}}}})
	return &jsonrpc.Error{Code: mcp.CodeMissingRequiredClientCapabilities, Message: "Missing required client capability: " + TasksExtension, Data: data}
}

// taskRequested: with the extension declared, the server decides, and
// mailroom makes every call of a task tool a task.
func (modernTasks) taskRequested(c caller, _ *mcp.CallToolParamsRaw) (time.Duration, bool) {
	return 0, c.tasksExt
}

// refuseTask: the extension has no per-tool task support, so a tool that
// takes no task just runs.
func (modernTasks) refuseTask(string) error { return nil }

func (modernTasks) created(t *store.Task) mcp.Result {
	m := toModern(t)
	m.Result, m.Error = nil, nil
	body := objectOf(m)
	body["resultType"] = "task"
	return &rawResult{Body: body}
}

// endedAtOnce: the server decides whether a call becomes a task, and a
// call that ended at once is answered as the plain call is.
func (modernTasks) endedAtOnce(_ context.Context, _ caller, _ *mcp.CallToolParamsRaw, _ time.Duration, res *mcp.CallToolResult) (mcp.Result, error) {
	return res, nil
}

// patchInitialize: 2026-07-28 has no initialize; server/discover already
// declares the extension through the SDK.
func (modernTasks) patchInitialize(res mcp.Result) mcp.Result { return res }

// patchToolList: the extension has no per-tool task support field.
func (modernTasks) patchToolList(res mcp.Result, _ func(string) bool) mcp.Result { return res }

func complete() *rawResult { return &rawResult{Body: map[string]any{"resultType": "complete"}} }

func (w modernTasks) get(ctx context.Context, p *taskParams) (*rawResult, error) {
	if err := needExtension(ctx); err != nil {
		return nil, err
	}
	t, err := w.s.getOwned(ctx, p.TaskID)
	if err != nil {
		return nil, err
	}
	body := objectOf(toModern(t))
	body["resultType"] = "complete"
	return &rawResult{Body: body}, nil
}

func (modernTasks) result(context.Context, *taskParams) (*rawResult, error) {
	return nil, rpcError(jsonrpc.CodeMethodNotFound, "tasks/result is not part of the Tasks extension; use tasks/get")
}

func (modernTasks) list(context.Context, *listTasksParams) (*rawResult, error) {
	return nil, rpcError(jsonrpc.CodeMethodNotFound, "tasks/list is not part of the Tasks extension")
}

// cancel acknowledges, also for a task that is already terminal
// (cancellation is cooperative).
func (w modernTasks) cancel(ctx context.Context, p *taskParams) (*rawResult, error) {
	if err := needExtension(ctx); err != nil {
		return nil, err
	}
	if _, _, err := w.s.cancelOwned(ctx, p.TaskID); err != nil {
		return nil, err
	}
	return complete(), nil
}

// update: mailroom's tasks never enter input_required, so there is
// nothing outstanding to answer: the responses are acknowledged and
// ignored, as SEP-2663 says.
func (w modernTasks) update(ctx context.Context, p *taskParams) (*rawResult, error) {
	if err := needExtension(ctx); err != nil {
		return nil, err
	}
	if _, err := w.s.getOwned(ctx, p.TaskID); err != nil {
		return nil, err
	}
	return complete(), nil
}

// sessionNotification: 2026-07-28 has no sessions; status goes to
// subscriptions/listen streams ([listenerNotification]).
func (modernTasks) sessionNotification(*store.Task) []byte { return nil }

// listenerNotification is notifications/tasks for a listen stream.
func listenerNotification(t *store.Task, subID json.RawMessage) []byte {
	params := objectOf(toModern(t))
	params["_meta"] = map[string]any{"io.modelcontextprotocol/subscriptionId": subID}
	return notification("notifications/tasks", params)
}
