package api_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
)

func TestTasks(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	for i, tk := range []*store.Task{
		{ID: "task_a", Owner: "alice", Tool: "pay", Status: store.TaskWorking},
		{ID: "task_b", Owner: "bob", Tool: "deploy", Status: store.TaskCompleted, EventID: "evt_1"},
		{ID: "task_c", Owner: "bob", Tool: "ship", Status: store.TaskInputRequired},
	} {
		if err := b.store.TaskCreate(ctx, tk); err != nil {
			t.Fatalf("create task %d: %v", i, err)
		}
	}
	ids := func(ts []*store.Task) string {
		s := ""
		for _, tk := range ts {
			s += tk.ID + " "
		}
		return s
	}

	t.Run("ListAllOwnersNewestFirst", func(t *testing.T) {
		got := must[page[*store.Task]](t, b.do(t, http.MethodGet, "/api/v1/tasks", nil), http.StatusOK)
		if ids(got.Data) != "task_c task_b task_a " || got.NextCursor != "" {
			t.Errorf("tasks = %q cursor %q", ids(got.Data), got.NextCursor)
		}
	})
	t.Run("Filters", func(t *testing.T) {
		for _, tt := range []struct{ query, want string }{
			{"owner=bob", "task_c task_b "},
			{"open=true", "task_c task_a "},
			{"status=completed", "task_b "},
			{"owner=bob&open=1", "task_c "},
		} {
			got := must[page[*store.Task]](t, b.do(t, http.MethodGet, "/api/v1/tasks?"+tt.query, nil), http.StatusOK)
			if ids(got.Data) != tt.want {
				t.Errorf("%s: tasks = %q, want %q", tt.query, ids(got.Data), tt.want)
			}
		}
	})
	t.Run("Paging", func(t *testing.T) {
		var all string
		cursor := ""
		for range 4 {
			got := must[page[*store.Task]](t, b.do(t, http.MethodGet, "/api/v1/tasks?limit=2&cursor="+cursor, nil), http.StatusOK)
			all += ids(got.Data)
			if got.NextCursor == "" {
				break
			}
			cursor = got.NextCursor
		}
		if all != "task_c task_b task_a " {
			t.Errorf("paged tasks = %q", all)
		}
	})
	t.Run("BadParameters", func(t *testing.T) {
		for _, q := range []string{"status=done", "open=maybe", "limit=0", "color=red", "owner=a&owner=b"} {
			r := b.do(t, http.MethodGet, "/api/v1/tasks?"+q, nil)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", q, r.status)
			}
		}
	})
	t.Run("Get", func(t *testing.T) {
		got := must[store.Task](t, b.do(t, http.MethodGet, "/api/v1/tasks/task_b", nil), http.StatusOK)
		if got.Owner != "bob" || got.Status != store.TaskCompleted || got.EventID != "evt_1" {
			t.Errorf("task = %+v", got)
		}
		r := b.do(t, http.MethodGet, "/api/v1/tasks/task_zzz", nil)
		if r.status != http.StatusNotFound || r.errorMessage(t) != fmt.Sprintf("task %q not found", "task_zzz") {
			t.Errorf("missing task: %d %s", r.status, r.body)
		}
	})
	t.Run("NeedsToken", func(t *testing.T) {
		r := b.doWith(t, http.MethodGet, "/api/v1/tasks", nil, nil)
		if r.status != http.StatusUnauthorized {
			t.Errorf("without token: %d", r.status)
		}
	})
}

// TestTaskPagingAtMaxLimit: at the largest page the task list probes for
// a next row as every other list does, so exactly 1000 tasks give no
// cursor to an empty page.
func TestTaskPagingAtMaxLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	for i := range 1000 {
		if err := b.store.TaskCreate(ctx, &store.Task{ID: fmt.Sprintf("task_%04d", i), Owner: "alice", Tool: "pay", Status: store.TaskWorking}); err != nil {
			t.Fatalf("create task %d: %v", i, err)
		}
	}
	l := must[page[*store.Task]](t, b.do(t, http.MethodGet, "/api/v1/tasks?limit=1000", nil), http.StatusOK)
	if len(l.Data) != 1000 || l.NextCursor != "" {
		t.Fatalf("exactly 1000 tasks: got %d, next_cursor %q; want 1000 and none", len(l.Data), l.NextCursor)
	}
	if err := b.store.TaskCreate(ctx, &store.Task{ID: "task_1000", Owner: "alice", Tool: "pay", Status: store.TaskWorking}); err != nil {
		t.Fatal(err)
	}
	l = must[page[*store.Task]](t, b.do(t, http.MethodGet, "/api/v1/tasks?limit=1000", nil), http.StatusOK)
	if len(l.Data) != 1000 || l.NextCursor == "" {
		t.Fatalf("1001 tasks: got %d, next_cursor %q; want 1000 and a cursor", len(l.Data), l.NextCursor)
	}
	l = must[page[*store.Task]](t, b.do(t, http.MethodGet, "/api/v1/tasks?limit=1000&cursor="+l.NextCursor, nil), http.StatusOK)
	if len(l.Data) != 1 || l.NextCursor != "" {
		t.Errorf("last page: %d tasks, next_cursor %q; want 1 and none", len(l.Data), l.NextCursor)
	}
}
