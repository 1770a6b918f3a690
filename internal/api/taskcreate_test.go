package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

func TestTaskCreate(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)

	t.Run("CreatesAWaitTask", func(t *testing.T) {
		got := must[store.Task](t, b.do(t, http.MethodPost, "/api/v1/tasks", map[string]any{
			"source": "stripe", "type": "checkout.session.completed", "match": map[string]any{"data.object.payment_link": "plink_1"},
			"timeout": "30m", "owner": "payments-mcp", "tool": "create_payment_link", "status_message": "waiting for plink_1",
		}), http.StatusCreated)
		if !strings.HasPrefix(got.ID, "task_") || got.Status != store.TaskWorking || got.Owner != "payments-mcp" ||
			got.Tool != "create_payment_link" || got.Wait == nil || got.Wait.Source != "stripe" || got.TTL != 90*time.Minute {
			t.Fatalf("task = %+v", got)
		}
		if !strings.Contains(strings.Join(strings.Fields(string(got.Arguments)), ""), `"data.object.payment_link":"plink_1"`) {
			t.Fatalf("arguments %s do not carry the match", got.Arguments)
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		for _, tt := range []struct {
			body map[string]any
			want string
		}{
			{map[string]any{}, "source is required"},
			{map[string]any{"source": "paypal"}, `source: "paypal" does not exist`},
			{map[string]any{"source": "stripe", "filter": "body.("}, "filter:"},
			{map[string]any{"source": "stripe", "filter": `"x"`}, "want bool"},
			{map[string]any{"source": "stripe", "since": "yesterday"}, "since:"},
			{map[string]any{"source": "stripe", "colour": "red"}, "unknown field"},
		} {
			r := b.do(t, http.MethodPost, "/api/v1/tasks", tt.body)
			if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), tt.want) {
				t.Errorf("%v: %d %s, want 400 with %q", tt.body, r.status, r.body, tt.want)
			}
		}
	})
	t.Run("WaitAndCancel", func(t *testing.T) {
		created := must[store.Task](t, b.do(t, http.MethodPost, "/api/v1/tasks", map[string]any{"source": "github"}), http.StatusCreated)
		done := make(chan *response, 1)
		go func() {
			done <- b.do(t, http.MethodGet, "/api/v1/tasks/"+created.ID+"?wait=20s", nil)
		}()
		// The long poll returns when the task ends, not at its wait.
		start := time.Now()
		time.AfterFunc(200*time.Millisecond, func() {
			_, _ = b.store.TaskUpdate(context.Background(), &store.TaskUpdateParams{ID: created.ID, Status: store.TaskCompleted,
				Result: []byte(`{"content":[]}`), Now: time.Now()})
		})
		got := must[store.Task](t, <-done, http.StatusOK)
		if got.Status != store.TaskCompleted || time.Since(start) > 10*time.Second {
			t.Fatalf("waited %s for %+v", time.Since(start), got)
		}
		r := b.do(t, http.MethodPost, "/api/v1/tasks/"+created.ID+"/cancel", nil)
		if r.status != http.StatusConflict {
			t.Fatalf("cancel of a completed task: %d %s", r.status, r.body)
		}
		other := must[store.Task](t, b.do(t, http.MethodPost, "/api/v1/tasks", map[string]any{"source": "github"}), http.StatusCreated)
		cancelled := must[store.Task](t, b.do(t, http.MethodPost, "/api/v1/tasks/"+other.ID+"/cancel", nil), http.StatusOK)
		if cancelled.Status != store.TaskCancelled {
			t.Fatalf("cancel: %+v", cancelled)
		}
		if r := b.do(t, http.MethodGet, "/api/v1/tasks/"+other.ID+"?wait=1h", nil); r.status != http.StatusBadRequest {
			t.Fatalf("wait over the cap: %d", r.status)
		}
	})
	// Last: its github event would complete the open github waits above.
	t.Run("FilterCost", func(t *testing.T) {
		created := must[store.Task](t, b.do(t, http.MethodPost, "/api/v1/tasks", map[string]any{
			"source": "github", "filter": "body.items.all(a, body.items.all(b, true))"}), http.StatusCreated)
		ingest(t, b.store, ingestOpts{source: "github", at: time.Now(),
			body: `{"items":[` + strings.TrimSuffix(strings.Repeat(`{"a":1},`, 300), ",") + `]}`})
		type view struct {
			store.Task
			FilterCost *struct{ Evaluations, Max, Stopped, Limit uint64 } `json:"filter_cost"`
		}
		for {
			got := must[view](t, b.do(t, http.MethodGet, "/api/v1/tasks/"+created.ID, nil), http.StatusOK)
			if fc := got.FilterCost; fc != nil && fc.Evaluations > 0 {
				if got.Status != store.TaskWorking || fc.Stopped != 1 || fc.Max <= fc.Limit || fc.Limit == 0 {
					t.Fatalf("task %s, filter cost %+v: want working, one evaluation stopped over the limit", got.Status, *fc)
				}
				break
			}
			time.Sleep(20 * time.Millisecond) // until the correlator has seen the event
		}
	})
}
