package store

import (
	"encoding/json"
	"time"
)

// Task statuses, as MCP names them.
const (
	TaskWorking       = "working"
	TaskInputRequired = "input_required"
	TaskCompleted     = "completed"
	TaskFailed        = "failed"
	TaskCancelled     = "cancelled"
)

// TaskTerminal reports whether a task in status can no longer change.
func TaskTerminal(status string) bool {
	return status == TaskCompleted || status == TaskFailed || status == TaskCancelled
}

// Task is a durable MCP task: a tool call whose result comes later, usually
// when a correlated webhook arrives. Tasks are bound to the identity that
// created them; every read checks Owner.
type Task struct {
	// ID is chosen by the caller (cryptographically random).
	ID string `json:"id"`
	// Owner is the auth identity that created the task.
	Owner string `json:"owner"`
	// Project is the project of the principal that created it (empty
	// means the default one); Wait.Source is a full name in it.
	Project string `json:"project"`
	// SessionID is the MCP session that created it, if any.
	SessionID string `json:"session_id,omitempty"`
	// Protocol is the MCP revision of the creating request.
	Protocol string `json:"protocol"`
	// Tool and Arguments are the call that created the task.
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments,omitempty"`

	Status        string    `json:"status"`
	StatusMessage string    `json:"status_message,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// TTL is how long the task is kept after creation; zero keeps it
	// until pruned. ExpiresAt is CreatedAt+TTL (zero when TTL is zero).
	TTL          time.Duration `json:"ttl,omitempty"`
	ExpiresAt    time.Time     `json:"expires_at,omitzero"`
	PollInterval time.Duration `json:"poll_interval,omitempty"`

	// Result is the tools/call result (JSON) once the task is terminal
	// with a result; Error a JSON-RPC error object when it failed with one.
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`

	// Wait is what the task waits for; nil when it waits for no event.
	Wait *TaskWait `json:"wait,omitempty"`
	// EventID is the event that completed the task.
	EventID string `json:"event_id,omitempty"`
}

// TaskWait is a task's correlation rule: the first event of Source (and
// Type, when set) received at or after Since for which Filter (a CEL
// expression over the event, empty for none) is true completes the task.
type TaskWait struct {
	Source string `json:"source"`
	Type   string `json:"type,omitempty"`
	Filter string `json:"filter,omitempty"`
	// Since is the look-back start: events received earlier do not count.
	Since time.Time `json:"since"`
	// Deadline fails the task when reached; zero waits until the TTL.
	Deadline time.Time `json:"deadline,omitzero"`
}

// TaskListParams filters and pages [Tasks.TaskList]. Tasks come newest
// first by creation time, ties broken by id; Cursor is the id of the last
// task of the previous page.
type TaskListParams struct {
	// Owner restricts the list to one identity; empty lists every owner
	// (admin views only).
	Owner string
	// Project restricts the list to one project; empty lists every
	// project.
	Project string
	Status  string
	// Open lists only tasks that are not terminal.
	Open   bool
	Cursor string
	// Limit caps the rows returned (see [PageLimit]).
	Limit int
	// Now hides tasks expired at Now; zero means the wall clock.
	Now time.Time
}

// TaskUpdateParams moves a non-terminal task. Zero fields are left as
// they are, except Status, which is required.
type TaskUpdateParams struct {
	ID            string
	Status        string
	StatusMessage string
	Result        json.RawMessage
	Error         json.RawMessage
	EventID       string
	Now           time.Time
}
