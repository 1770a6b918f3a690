package mcpwire

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// This file holds the pieces of the 2026-07-28 Tasks extension
// (io.modelcontextprotocol/tasks, SEP-2663) that mailroom's MCP server and
// pkg/mailroomtask share, and the outcome rule both wire forms follow.

// TasksExtension is the Tasks extension identifier.
const TasksExtension = "io.modelcontextprotocol/tasks"

// ModernTask is the extension's DetailedTask: the task with, once
// terminal, its result or JSON-RPC error inline.
type ModernTask struct {
	TaskID        string `json:"taskId"`
	Status        string `json:"status"`
	StatusMessage string `json:"statusMessage,omitempty"`
	CreatedAt     string `json:"createdAt"`
	LastUpdatedAt string `json:"lastUpdatedAt"`
	// TTLMs is in milliseconds; null means unlimited.
	TTLMs          *int64          `json:"ttlMs"`
	PollIntervalMs int64           `json:"pollIntervalMs,omitempty"`
	Result         json.RawMessage `json:"result,omitempty"`
	Error          *jsonrpc.Error  `json:"error,omitempty"`
}

// NewModernTask builds the DetailedTask of a task in status (mailroom's
// stored status) with its stored result and error. A tool result, isError
// included, makes the task "completed": the extension keeps "failed" for
// JSON-RPC errors.
func NewModernTask(id, status, message string, created, updated time.Time, ttl, poll time.Duration, result, rpcErr json.RawMessage) ModernTask {
	m := ModernTask{TaskID: id, Status: status, StatusMessage: message,
		CreatedAt: Stamp(created), LastUpdatedAt: Stamp(updated), PollIntervalMs: poll.Milliseconds()}
	if ttl > 0 {
		ms := ttl.Milliseconds()
		m.TTLMs = &ms
	}
	m.Result, m.Error = Outcome(status, message, result, rpcErr)
	if m.Result != nil {
		m.Status = "completed"
	}
	return m
}

// Outcome is how a terminal task ended, as the underlying tools/call would
// have answered: its tool result (isError when the tool failed; stored
// with status completed or failed), or its JSON-RPC error (status failed
// without a result; message stands in for an error not stored). Both are
// nil while the task runs and for a cancelled task.
func Outcome(status, message string, result, rpcErr json.RawMessage) (json.RawMessage, *jsonrpc.Error) {
	switch {
	case status == "completed", status == "failed" && len(result) > 0:
		return result, nil
	case status == "failed":
		var e jsonrpc.Error
		if err := json.Unmarshal(rpcErr, &e); err != nil || e.Code == 0 {
			e = jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: message}
		}
		return nil, &e
	}
	return nil, nil
}

// CheckTaskName enforces the extension's routing header on Streamable
// HTTP: tasks/get, tasks/update and tasks/cancel carry the task id in
// Mcp-Name (plain or in the =?base64?…?= form), and a missing or different
// one is -32020 (HTTP 400), as the SDK does for tools/call. Other methods
// pass.
func CheckTaskName(h http.Header, method, taskID string) error {
	switch method {
	case "tasks/get", "tasks/update", "tasks/cancel":
	default:
		return nil
	}
	raw := h.Get("Mcp-Name")
	if raw == "" {
		return &jsonrpc.Error{Code: mcp.CodeHeaderMismatch, Message: fmt.Sprintf("missing required Mcp-Name header for method %q (set it to params.taskId)", method)}
	}
	name := raw
	if enc, ok := strings.CutPrefix(raw, "=?base64?"); ok {
		if enc, ok = strings.CutSuffix(enc, "?="); ok {
			if b, err := base64.StdEncoding.DecodeString(enc); err == nil {
				name = string(b)
			}
		}
	}
	if name != taskID {
		return &jsonrpc.Error{Code: mcp.CodeHeaderMismatch, Message: fmt.Sprintf("header mismatch: Mcp-Name header value '%s' does not match body value '%s'", raw, taskID)}
	}
	return nil
}
