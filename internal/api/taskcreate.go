package api

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Limits of tasks created through POST /tasks.
const (
	// defaultTaskTimeout is how long a task waits when the body sets no
	// timeout.
	defaultTaskTimeout = time.Hour
	// maxTaskTTL caps how long a task is kept.
	maxTaskTTL = 7 * 24 * time.Hour
	// maxTaskWait caps the wait parameter of GET /tasks/{id}.
	maxTaskWait = 30 * time.Second
)

// taskCreateBody is the body of POST /tasks: what an MCP server built on
// mailroom (see pkg/mailroomtask) waits for. The fields mean what
// wait_for_event's arguments mean.
type taskCreateBody struct {
	Source string         `json:"source"`
	Type   string         `json:"type,omitempty"`
	Match  map[string]any `json:"match,omitempty"`
	Filter string         `json:"filter,omitempty"`
	// Since is a duration ago ("10m", the default), an RFC 3339 time or
	// an event id: events received since then count.
	Since string `json:"since,omitempty"`
	// Timeout fails the task when no event matched in time (default 1h).
	Timeout store.Duration `json:"timeout,omitempty"`
	// TTL is how long the task is kept (default timeout + 1h, at most 7
	// days).
	TTL store.Duration `json:"ttl,omitempty"`
	// Owner is the identity the task is bound to (default "api"); Tool
	// names the tool call that created it (default "wait_for_event");
	// StatusMessage is shown while it waits.
	Owner         string `json:"owner,omitempty"`
	Tool          string `json:"tool,omitempty"`
	StatusMessage string `json:"status_message,omitempty"`
}

// newTaskID returns a task id with 130 random bits, like the MCP server's.
func newTaskID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	return "task_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// taskCreate answers POST /tasks: it stores a task that the correlator
// completes with the first matching event, exactly like a task-augmented
// wait_for_event call, and answers 201 with the task.
func (a *Server) taskCreate(w http.ResponseWriter, r *http.Request) {
	var b taskCreateBody
	if err := decode(w, r, &b, false); err != nil {
		a.fail(w, r, err, "")
		return
	}
	t, err := a.newWaitTask(r.Context(), &b)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	if err := a.store.TaskCreate(r.Context(), t); err != nil {
		a.fail(w, r, fmt.Errorf("create task: %w", err), "")
		return
	}
	if a.watchTask != nil {
		if err := a.watchTask(r.Context(), t); err != nil {
			a.log.Warn("api: look back for task", "task", t.ID, "err", err)
		}
		if fresh, err := a.store.TaskGet(r.Context(), t.ID, a.now()); err == nil {
			t = fresh // the look-back may have completed it already
		}
	}
	w.Header().Set("Location", Prefix+"tasks/"+t.ID)
	writeJSON(w, http.StatusCreated, t)
}

// newWaitTask validates b against the catalog and builds the task.
func (a *Server) newWaitTask(ctx context.Context, b *taskCreateBody) (*store.Task, error) {
	snap := a.catalog.Current()
	switch {
	case b.Source == "":
		return nil, badf("source is required")
	case snap.Sources[b.Source] == nil:
		return nil, badf("source: %q does not exist", b.Source)
	case b.Timeout < 0 || b.TTL < 0:
		return nil, badf("timeout and ttl must not be negative")
	}
	if b.Filter != "" {
		if err := a.catalog.Compiler().Check(b.Filter); err != nil {
			return nil, badf("filter: %v", err)
		}
	}
	for path := range b.Match {
		if path == "" || strings.Contains(path, "..") {
			return nil, badf("match: %q is not a dotted body path", path)
		}
	}
	now := a.now()
	since, err := a.parseSince(ctx, b.Since, now)
	if err != nil {
		return nil, err
	}
	timeout := b.Timeout.D()
	if timeout == 0 {
		timeout = defaultTaskTimeout
	}
	ttl := b.TTL.D()
	if ttl == 0 {
		ttl = timeout + time.Hour
	}
	ttl = min(ttl, maxTaskTTL)
	timeout = min(timeout, ttl)
	args, err := json.Marshal(map[string]any{"source": b.Source, "type": b.Type, "match": b.Match, "filter": b.Filter,
		"since": since.UTC().Format(time.RFC3339Nano), "timeout": timeout.String()})
	if err != nil {
		return nil, badf("match: %v", err)
	}
	t := &store.Task{
		ID: newTaskID(), Owner: b.Owner, Tool: b.Tool, Arguments: args, TTL: ttl, PollInterval: time.Second,
		StatusMessage: b.StatusMessage,
		Wait:          &store.TaskWait{Source: b.Source, Type: b.Type, Filter: b.Filter, Since: since, Deadline: now.Add(timeout)},
	}
	if t.Owner == "" {
		t.Owner = "api"
	}
	if t.Tool == "" {
		t.Tool = "wait_for_event"
	}
	if t.StatusMessage == "" {
		t.StatusMessage = strings.TrimSpace("waiting for a " + b.Source + " " + b.Type + " event")
	}
	if err := checkText("owner", t.Owner); err != nil {
		return nil, err
	}
	return t, nil
}

// parseSince reads a duration ago, an RFC 3339 time, or an event id.
func (a *Server) parseSince(ctx context.Context, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return now.Add(-10 * time.Minute), nil
	}
	if strings.HasPrefix(v, "evt_") {
		ev, err := a.store.EventGetByID(ctx, v)
		if errors.Is(err, store.ErrNotFound) {
			return time.Time{}, badf("since: event %q does not exist", v)
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("read event %s: %w", v, err)
		}
		return ev.ReceivedAt.Add(time.Microsecond), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, badf("since: %q is not a duration (10m), an RFC 3339 time or an event id", v)
}

// taskCancel answers POST /tasks/{id}/cancel: a task that is not terminal
// becomes cancelled; a terminal one is a 409 with its status.
func (a *Server) taskCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := a.store.TaskUpdate(r.Context(), &store.TaskUpdateParams{ID: id, Status: store.TaskCancelled,
		StatusMessage: "cancelled through the API", Now: a.now()})
	if errors.Is(err, store.ErrTaskTerminal) {
		writeError(w, http.StatusConflict, fmt.Sprintf("task %s is already %s", id, t.Status))
		return
	}
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("task %q not found", id))
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// waitTask blocks until task id is terminal, the wait elapses, or ctx
// ends, and returns the task as it then is. Store notifications wake it;
// a poll each second covers missed ones.
func (a *Server) waitTask(ctx context.Context, id string, wait time.Duration) (*store.Task, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	notes := a.store.Subscribe(ctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		t, err := a.store.TaskGet(context.WithoutCancel(ctx), id, a.now())
		if err != nil || store.TaskTerminal(t.Status) {
			return t, err
		}
	idle:
		for {
			select {
			case <-ctx.Done():
				return t, nil
			case n, ok := <-notes:
				if !ok {
					return t, nil
				}
				if n.Kind == store.NotifyTaskChanged && n.ID == id {
					break idle
				}
			case <-tick.C:
				break idle
			}
		}
	}
}
