package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/task"
)

// maxTaskWait caps the wait parameter of GET /tasks/{id}.
const maxTaskWait = 30 * time.Second

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

// taskCreate answers POST /tasks: it creates a task that completes with
// the first matching event, exactly like a task-augmented wait_for_event
// call, and answers 201 with the task at once. The look-back over events
// that already arrived runs afterwards and may complete the task a moment
// later.
func (a *Server) taskCreate(w http.ResponseWriter, r *http.Request) {
	if a.tasks == nil {
		writeError(w, http.StatusNotImplemented, "this server does not create tasks")
		return
	}
	sc, ok := a.scopeOrFail(w, r, "project not found")
	if !ok {
		return
	}
	var b taskCreateBody
	if err := decode(w, r, &b, false); err != nil {
		a.fail(w, r, err, "")
		return
	}
	p := &task.CreateParams{
		Wait:    task.Wait{Source: b.Source, Type: b.Type, Match: b.Match, Filter: b.Filter, Since: b.Since, Timeout: b.Timeout.D()},
		Project: sc.project,
		TTL:     b.TTL.D(), Owner: cmp.Or(b.Owner, "api"), Tool: cmp.Or(b.Tool, "wait_for_event"), StatusMessage: b.StatusMessage,
	}
	if err := checkText("owner", p.Owner); err != nil {
		a.fail(w, r, err, "")
		return
	}
	t, err := a.tasks.Create(r.Context(), p)
	if ie := (*task.InputError)(nil); errors.As(err, &ie) {
		err = badf("%s", ie.Msg)
	}
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	w.Header().Set("Location", Prefix+"tasks/"+t.ID)
	writeJSON(w, http.StatusCreated, t)
}

// taskCancel answers POST /tasks/{id}/cancel: a task that is not terminal
// becomes cancelled; a terminal one is a 409 with its status.
func (a *Server) taskCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cur, err := a.store.TaskGet(r.Context(), id, a.now())
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("task %q not found", id))
		return
	}
	if !a.visible(w, r, cur.Project, fmt.Sprintf("task %q not found", id)) {
		return
	}
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
