package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
)

// JSON-RPC error codes a wait task fails with. They are stored in the
// task's error, so every reader (tasks/get, tasks/result, the API) shows
// the same.
const (
	// CodeFailureEvent: the failure event of an async tool arrived.
	CodeFailureEvent = -32002
	// CodeBadWait: the stored wait cannot be evaluated (its filter does
	// not compile), so it could never match.
	CodeBadWait = -32003
)

// EventView is what a task result, a tool result, a resource and a
// channel message show of one event: its identity and the request that
// carried it.
type EventView struct {
	EventID    string            `json:"event_id"`
	Source     string            `json:"source"`
	Type       string            `json:"type,omitempty"`
	ReceivedAt time.Time         `json:"received_at"`
	Path       string            `json:"path,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	// Body is the decoded body: JSON as is, a form as an object, anything
	// else as a string.
	Body any `json:"body,omitempty"`
}

// LoadEvent fetches the request of ev and builds its view and its filter
// input. When the request was pruned since, both are nil and err is nil.
func LoadEvent(ctx context.Context, s store.History, ev *store.Event) (*EventView, *route.Input, error) {
	req, err := s.RequestGetByID(ctx, ev.RequestID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load request of event %s: %w", ev.ID, err)
	}
	query, _ := url.ParseQuery(req.Query)
	in := route.NewInput(ev.Source, req.Path, query, req.Headers, req.Body)
	h := make(map[string]string, len(req.Headers))
	for k, vs := range req.Headers {
		h[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	view := &EventView{
		EventID: ev.ID, Source: ev.Source, Type: ev.Type, ReceivedAt: ev.ReceivedAt,
		Path: req.Path, Headers: h, Body: in.Decoded(),
	}
	return view, in, nil
}

// WaitResult is the structured content of a wait's tool result: what a
// completed task stores and what wait_for_event returns.
type WaitResult struct {
	// Status is matched, waiting (a synchronous call ran out of time; call
	// again with since) or timed_out.
	Status  string     `json:"status" jsonschema:"matched, waiting or timed_out"`
	Event   *EventView `json:"event,omitempty" jsonschema:"the matching event"`
	Message string     `json:"message,omitempty"`
	// Since is the look-back start to pass to a repeated call.
	Since string `json:"since,omitempty"`
	// Upstream is, for a proxied async tool, the upstream tool's result.
	Upstream json.RawMessage `json:"upstream,omitempty" jsonschema:"the upstream tool's own result (proxied async tools)"`
	// Next is how to keep waiting after a synchronous call ran out of time.
	Next *NextCall `json:"next,omitempty"`
}

// NextCall is a tool call an agent can make to keep waiting.
type NextCall struct {
	Tool      string `json:"tool"`
	Arguments any    `json:"arguments"`
}

// EventResult is the tool result of a wait that ev satisfied.
func EventResult(ev *EventView) *mcp.CallToolResult {
	out := WaitResult{Status: "matched", Event: ev, Message: fmt.Sprintf("event %s (%s) arrived on %s", ev.EventID, ev.Type, ev.Source)}
	b, _ := json.Marshal(out)
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}, StructuredContent: out}
}

// CompletionResult is the result of a task completed by ev: the event,
// combined with the upstream tool's result for a proxied async tool.
func CompletionResult(ev *EventView, upstream json.RawMessage) *mcp.CallToolResult {
	r := EventResult(ev)
	if len(upstream) == 0 {
		return r
	}
	out := r.StructuredContent.(WaitResult)
	out.Upstream = upstream
	r.StructuredContent = out
	var up mcp.CallToolResult
	if json.Unmarshal(upstream, &up) == nil && len(up.Content) > 0 {
		r.Content = append(up.Content, r.Content...)
	}
	return r
}

// TimedOutResult is the tool result of a wait that ran out of time, the
// same for a plain call and a task: an error result (isError) saying what
// did not arrive.
func TimedOutResult(what string, timeout time.Duration) *mcp.CallToolResult {
	out := WaitResult{Status: "timed_out", Message: fmt.Sprintf("no matching %s event within %s", what, timeout)}
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: out.Message}}, StructuredContent: out}
}

// rpcError encodes a JSON-RPC error object for a task's Error.
func rpcError(code int, msg string, data any) json.RawMessage {
	e := map[string]any{"code": code, "message": msg}
	if data != nil {
		e["data"] = data
	}
	b, _ := json.Marshal(e)
	return b
}
