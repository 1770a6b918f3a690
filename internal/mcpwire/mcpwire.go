// Package mcpwire holds the pieces of MCP's 2025-11-25 Tasks wire form
// that go-sdk v1.8.0 does not provide and that both mailroom's MCP server
// and the pkg/mailroomtask library need: the Task object, a Result with a
// hand-built body, moving a tools/call params.task where the SDK keeps it,
// and an SSE stream that notifications can be injected into.
package mcpwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// RelatedTaskKey is the _meta key that ties a result to its task.
const RelatedTaskKey = "io.modelcontextprotocol/related-task"

// LegacyTask is the 2025-11-25 Task object.
type LegacyTask struct {
	TaskID        string `json:"taskId"`
	Status        string `json:"status"`
	StatusMessage string `json:"statusMessage,omitempty"`
	CreatedAt     string `json:"createdAt"`
	LastUpdatedAt string `json:"lastUpdatedAt"`
	// TTL is in milliseconds; null means unlimited (the TypeScript client
	// requires the field to be present).
	TTL          *int64 `json:"ttl"`
	PollInterval int64  `json:"pollInterval,omitempty"`
}

// NewLegacyTask builds the Task object; a zero ttl is unlimited.
func NewLegacyTask(id, status, message string, created, updated time.Time, ttl, poll time.Duration) LegacyTask {
	t := LegacyTask{TaskID: id, Status: status, StatusMessage: message,
		CreatedAt: Stamp(created), LastUpdatedAt: Stamp(updated), PollInterval: poll.Milliseconds()}
	if ttl > 0 {
		ms := ttl.Milliseconds()
		t.TTL = &ms
	}
	return t
}

// Stamp formats a task time.
func Stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// RawResult is a Result whose JSON is Body plus _meta.
type RawResult struct {
	mcp.ResultBase
	Body map[string]any
}

// MarshalJSON emits Body with _meta.
func (r *RawResult) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(r.Body)+1)
	for k, v := range r.Body {
		out[k] = v
	}
	if len(r.Meta) > 0 {
		out["_meta"] = r.Meta
	}
	return json.Marshal(out)
}

// ObjectOf re-encodes v as a JSON object map, numbers kept exact (see
// [DecodeObject]).
func ObjectOf(v any) map[string]any {
	b, _ := json.Marshal(v)
	m, _ := DecodeObject(b)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// DecodeObject decodes a JSON object to re-encode it after an edit. Numbers
// stay json.Number, so they are written back as they were read: a result
// carrying a webhook body with an integer id beyond 2^53 must not come out
// rounded.
func DecodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode json object: %w", err)
	}
	return m, nil
}

// Patch re-encodes res as an object, lets edit change it, and keeps its
// _meta.
func Patch(res mcp.Result, edit func(map[string]any)) *RawResult {
	body := ObjectOf(res)
	out := &RawResult{Body: body}
	if m, ok := body["_meta"].(map[string]any); ok {
		delete(body, "_meta")
		out.Meta = m
	}
	edit(body)
	return out
}

// MoveTaskParam rewrites a JSON-RPC tools/call so that its params.task
// travels in params._meta[key], where the SDK keeps it (it drops unknown
// params). A value a client put under key itself is dropped first. Other
// messages, batches and junk are returned unchanged.
func MoveTaskParam(body []byte, key string) []byte {
	var msg map[string]json.RawMessage
	if json.Unmarshal(body, &msg) != nil {
		return body
	}
	var method string
	if json.Unmarshal(msg["method"], &method) != nil || method != "tools/call" {
		return body
	}
	var params map[string]json.RawMessage
	if json.Unmarshal(msg["params"], &params) != nil || params == nil {
		return body
	}
	var meta map[string]json.RawMessage
	_ = json.Unmarshal(params["_meta"], &meta)
	_, spoofed := meta[key]
	task, hasTask := params["task"]
	if !spoofed && !hasTask {
		return body
	}
	if meta == nil {
		meta = map[string]json.RawMessage{}
	}
	delete(meta, key)
	if hasTask {
		meta[key] = task
		delete(params, "task")
	}
	params["_meta"], _ = json.Marshal(meta)
	msg["params"], _ = json.Marshal(params)
	out, err := json.Marshal(msg)
	if err != nil {
		return body
	}
	return out
}

// SSEStream is an SSE response that the SDK writes its events into and
// that notifications may be injected into. Every write holds mu, so
// injected events never interleave with the SDK's; after the handler
// returns, Close stops injection (writing then would race).
type SSEStream struct {
	http.ResponseWriter
	mu      sync.Mutex
	started bool
	closed  bool
}

// NewSSEStream wraps w. started says the response headers are already
// written (a stream the caller opened itself).
func NewSSEStream(w http.ResponseWriter, started bool) *SSEStream {
	return &SSEStream{ResponseWriter: w, started: started}
}

// WriteHeader implements http.ResponseWriter.
func (s *SSEStream) WriteHeader(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = true
	s.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (s *SSEStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, http.ErrHandlerTimeout
	}
	s.started = true
	return s.ResponseWriter.Write(p)
}

// Flush implements http.Flusher, which the SDK needs to stream.
func (s *SSEStream) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		_ = http.NewResponseController(s.ResponseWriter).Flush()
	}
}

// Close stops further writes; call it before the handler returns.
func (s *SSEStream) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// Send writes one JSON-RPC message as an SSE event and flushes it. It
// reports false when the stream is closed, not yet started, or broken.
func (s *SSEStream) Send(msg []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.started {
		return false
	}
	if _, err := fmt.Fprintf(s.ResponseWriter, "event: message\ndata: %s\n\n", msg); err != nil {
		return false
	}
	return http.NewResponseController(s.ResponseWriter).Flush() == nil
}

// LegacyTaskResult is the 2025-11-25 tasks/result answer of a terminal
// task: exactly what the tool call returned (its result, or its JSON-RPC
// error), tied to the task by the related-task _meta; a cancelled task is
// an internal error. done is false while the task runs.
func LegacyTaskResult(id, status, message string, result, rpcErr json.RawMessage) (res *RawResult, done bool, err error) {
	related := map[string]any{RelatedTaskKey: map[string]any{"taskId": id}}
	relatedData, _ := json.Marshal(map[string]any{"_meta": related})
	if status == "cancelled" {
		return nil, true, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "task " + id + " was cancelled", Data: relatedData}
	}
	out, e := Outcome(status, message, result, rpcErr)
	switch {
	case e != nil:
		e.Data = relatedData
		return nil, true, e
	case out != nil:
		body, err := DecodeObject(out)
		if err != nil {
			return nil, true, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("stored result of %s: %v", id, err)}
		}
		r := &RawResult{Body: body}
		r.Meta = related
		return r, true, nil
	}
	return nil, false, nil
}
