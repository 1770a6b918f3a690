package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/task"
)

// taskStatuses are the statuses GET /tasks filters on.
var taskStatuses = []string{store.TaskWorking, store.TaskInputRequired, store.TaskCompleted, store.TaskFailed, store.TaskCancelled}

// taskListParams are the query parameters GET /tasks takes.
var taskListParams = []string{"owner", "status", "open", "project", "cursor", "limit"}

// parseTaskListParams reads the query of GET /tasks: owner, status, open,
// cursor and limit. Like the other lists, an unknown, repeated or malformed
// parameter is a 400 naming it.
func parseTaskListParams(raw string) (store.TaskListParams, error) {
	p := store.TaskListParams{Limit: DefaultLimit}
	q, err := parseQuery(raw)
	if err != nil {
		return p, err
	}
	for key, vals := range q {
		if len(vals) > 1 {
			return p, badf("parameter %s is given %d times; give it once", key, len(vals))
		}
		v := vals[0]
		switch key {
		case "owner":
			if err := checkText(key, v); err != nil {
				return p, err
			}
			p.Owner = v
		case "status":
			if v != "" && !slices.Contains(taskStatuses, v) {
				return p, badf("parameter status: %q is not a task status (want one of %s)", v, strings.Join(taskStatuses, ", "))
			}
			p.Status = v
		case "open":
			if v == "" {
				continue
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return p, badf("parameter open: %q is not true or false", v)
			}
			p.Open = b
		case "project":
			// Read by the request's scope (scopeOf), which checks it.
		case "cursor":
			if err := checkTaskCursor(v); err != nil {
				return p, err
			}
			p.Cursor = v
		case "limit":
			if err := parseLimit(v, &p.Limit); err != nil {
				return p, err
			}
		default:
			return p, badf("unknown parameter %q for tasks (accepted: %s)", key, strings.Join(taskListParams, ", "))
		}
	}
	return p, nil
}

// checkTaskCursor accepts a task id handed out as next_cursor. Task ids
// are chosen by the MCP server, so they are checked as text rather than
// as row ids.
func checkTaskCursor(v string) error {
	if len(v) > 256 || !validText(v) {
		return badf("parameter cursor is not a cursor from next_cursor")
	}
	return nil
}

// taskList answers GET /tasks: every owner's tasks, newest first, one page
// at a time. This is the operator's view; the MCP server shows each
// identity only its own.
func (a *Server) taskList(w http.ResponseWriter, r *http.Request) {
	p, err := parseTaskListParams(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	sc, ok := a.scopeOrFail(w, r, "project not found")
	if !ok {
		return
	}
	p.Project = sc.project
	p.Now = a.now()
	ts, next, err := page(r.Context(), listParams{Cursor: p.Cursor, Limit: p.Limit}, func(ctx context.Context, lp listParams) ([]*store.Task, error) {
		q := p
		q.Cursor, q.Limit = lp.Cursor, lp.Limit
		return a.store.TaskList(ctx, &q)
	}, func(t *store.Task) string { return t.ID })
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, list[*store.Task]{Data: nonNil(ts), NextCursor: next})
}

// taskView is a waiting task with what its filter has cost so far.
type taskView struct {
	*store.Task
	FilterCost *task.FilterCost `json:"filter_cost"`
}

// taskGet answers GET /tasks/{id}, whatever its owner. With wait=DURATION
// (at most 30s) it first waits for the task to become terminal, so that a
// client hears of completion without polling fast.
func (a *Server) taskGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var wait time.Duration
	for key, vals := range r.URL.Query() {
		if key == "project" {
			continue // read by the request's scope
		}
		d, err := time.ParseDuration(vals[0])
		if key != "wait" || len(vals) > 1 || err != nil || d < 0 || d > maxTaskWait {
			a.fail(w, r, badf("parameter %s: the only parameter is wait, a duration of at most %s", key, maxTaskWait), "")
			return
		}
		wait = d
	}
	var t *store.Task
	var err error
	if wait > 0 {
		t, err = a.waitTask(r.Context(), id, wait)
	} else {
		t, err = a.store.TaskGet(r.Context(), id, a.now())
	}
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("task %q not found", id))
		return
	}
	if !a.visible(w, r, t.Project, fmt.Sprintf("task %q not found", id)) {
		return
	}
	if a.tasks != nil && !store.TaskTerminal(t.Status) {
		if fc := a.tasks.FilterCost(id); fc != nil {
			writeJSON(w, http.StatusOK, taskView{t, fc})
			return
		}
	}
	writeJSON(w, http.StatusOK, t)
}
