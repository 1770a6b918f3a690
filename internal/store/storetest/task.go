package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

func newTask(id, owner string, wait *store.TaskWait) *store.Task {
	return &store.Task{
		ID: id, Owner: owner, SessionID: "sess", Protocol: "2025-11-25", Tool: "wait_for_event",
		Arguments: json.RawMessage(`{"source":"stripe"}`), TTL: time.Hour, PollInterval: time.Second, Wait: wait,
	}
}

func testTasks(t *testing.T, newStore NewStore) {
	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		since := time.Now().Add(-10 * time.Minute).Truncate(time.Microsecond)
		deadline := time.Now().Add(time.Hour).Truncate(time.Microsecond)
		in := newTask("task_a", "alice", &store.TaskWait{Source: "stripe", Type: "checkout.session.completed",
			Filter: `body.id == "x"`, Since: since, Deadline: deadline})
		if err := s.TaskCreate(ctx, in); err != nil {
			t.Fatal(err)
		}
		got, err := s.TaskGet(ctx, "task_a", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.TaskWorking || got.Owner != "alice" || got.Tool != "wait_for_event" ||
			got.TTL != time.Hour || got.PollInterval != time.Second || got.SessionID != "sess" ||
			string(got.Arguments) != `{"source":"stripe"}` || got.Protocol != "2025-11-25" {
			t.Errorf("round trip: %+v", got)
		}
		if got.Wait == nil || got.Wait.Source != "stripe" || got.Wait.Type != "checkout.session.completed" ||
			got.Wait.Filter != `body.id == "x"` || !got.Wait.Since.Equal(since) || !got.Wait.Deadline.Equal(deadline) {
			t.Errorf("wait: %+v", got.Wait)
		}
		if d := got.ExpiresAt.Sub(got.CreatedAt); d < time.Hour-time.Millisecond || d > time.Hour+time.Millisecond {
			t.Errorf("expires %v after creation", d)
		}
		if err := s.TaskCreate(ctx, newTask("task_a", "bob", nil)); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("duplicate id: %v", err)
		}
		if _, err := s.TaskGet(ctx, "nope", time.Time{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing: %v", err)
		}
	})
	t.Run("ExpiryHidesAndDeletes", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		short := newTask("task_short", "alice", &store.TaskWait{Source: "s", Since: time.Now()})
		short.TTL = time.Minute
		forever := newTask("task_forever", "alice", nil)
		forever.TTL = 0
		for _, tk := range []*store.Task{short, forever} {
			if err := s.TaskCreate(ctx, tk); err != nil {
				t.Fatal(err)
			}
		}
		later := time.Now().Add(2 * time.Minute)
		if _, err := s.TaskGet(ctx, "task_short", later); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired task visible: %v", err)
		}
		if _, err := s.TaskGet(ctx, "task_forever", later.Add(1000*time.Hour)); err != nil {
			t.Errorf("task without ttl: %v", err)
		}
		if _, err := s.TaskUpdate(ctx, &store.TaskUpdateParams{ID: "task_short", Status: store.TaskCompleted, Now: later}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update of expired task: %v", err)
		}
		if w, _ := s.TaskListWaiting(ctx, later); len(w) != 0 {
			t.Errorf("expired task still waiting: %d", len(w))
		}
		if l, _ := s.TaskList(ctx, &store.TaskListParams{Owner: "alice", Now: later}); len(l) != 1 {
			t.Errorf("list after expiry: %d", len(l))
		}
		n, err := s.TaskDeleteExpired(ctx, later, 100)
		if err != nil || n != 1 {
			t.Errorf("delete expired: %d %v", n, err)
		}
		if _, err := s.TaskGet(ctx, "task_short", time.Time{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted task visible: %v", err)
		}
	})
	t.Run("UpdateIsOnceOnly", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		if err := s.TaskCreate(ctx, newTask("task_race", "alice", &store.TaskWait{Source: "s", Since: time.Now()})); err != nil {
			t.Fatal(err)
		}
		// A progress message keeps it working.
		got, err := s.TaskUpdate(ctx, &store.TaskUpdateParams{ID: "task_race", Status: store.TaskWorking, StatusMessage: "still waiting"})
		if err != nil || got.StatusMessage != "still waiting" {
			t.Fatalf("progress update: %+v %v", got, err)
		}
		// Twenty racing completions: exactly one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := []string{}
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev := fmt.Sprintf("evt_%d", i)
				tk, err := s.TaskUpdate(ctx, &store.TaskUpdateParams{ID: "task_race", Status: store.TaskCompleted,
					Result: json.RawMessage(fmt.Sprintf(`{"event":%q}`, ev)), EventID: ev})
				switch {
				case err == nil:
					mu.Lock()
					winners = append(winners, ev)
					mu.Unlock()
				case errors.Is(err, store.ErrTaskTerminal):
					if tk == nil || tk.Status != store.TaskCompleted {
						t.Errorf("loser sees %+v", tk)
					}
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("winners: %v", winners)
		}
		got, err = s.TaskGet(ctx, "task_race", time.Time{})
		if err != nil || got.EventID != winners[0] || string(got.Result) != fmt.Sprintf(`{"event":%q}`, winners[0]) ||
			got.StatusMessage != "still waiting" {
			t.Errorf("after race: %+v %v", got, err)
		}
		if _, err := s.TaskUpdate(ctx, &store.TaskUpdateParams{ID: "task_race", Status: store.TaskCancelled}); !errors.Is(err, store.ErrTaskTerminal) {
			t.Errorf("cancel of completed: %v", err)
		}
		if _, err := s.TaskUpdate(ctx, &store.TaskUpdateParams{ID: "nope", Status: store.TaskCancelled}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update of missing: %v", err)
		}
	})
	t.Run("ListAndWaiting", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		for i := range 5 {
			owner := "alice"
			if i%2 == 1 {
				owner = "bob"
			}
			var w *store.TaskWait
			if i != 4 {
				w = &store.TaskWait{Source: "s", Since: time.Now()}
			}
			if err := s.TaskCreate(ctx, newTask(fmt.Sprintf("task_%d", i), owner, w)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.TaskUpdate(ctx, &store.TaskUpdateParams{ID: "task_0", Status: store.TaskFailed, Error: json.RawMessage(`{"code":-1,"message":"x"}`)}); err != nil {
			t.Fatal(err)
		}
		alice, err := s.TaskList(ctx, &store.TaskListParams{Owner: "alice"})
		if err != nil || len(alice) != 3 || alice[0].ID != "task_4" || alice[2].ID != "task_0" {
			t.Fatalf("alice: %v %v", ids(alice), err)
		}
		page1, _ := s.TaskList(ctx, &store.TaskListParams{Owner: "alice", Limit: 2})
		page2, _ := s.TaskList(ctx, &store.TaskListParams{Owner: "alice", Limit: 2, Cursor: page1[1].ID})
		if len(page1) != 2 || len(page2) != 1 || page2[0].ID != "task_0" {
			t.Errorf("pages: %v %v", ids(page1), ids(page2))
		}
		open, _ := s.TaskList(ctx, &store.TaskListParams{Open: true})
		if len(open) != 4 {
			t.Errorf("open: %v", ids(open))
		}
		failed, _ := s.TaskList(ctx, &store.TaskListParams{Status: store.TaskFailed})
		if len(failed) != 1 || string(failed[0].Error) != `{"code":-1,"message":"x"}` {
			t.Errorf("failed: %v", ids(failed))
		}
		waiting, err := s.TaskListWaiting(ctx, time.Time{})
		if err != nil || len(waiting) != 3 {
			t.Errorf("waiting: %v %v", ids(waiting), err)
		}
	})
	t.Run("ListNewestFirstByCreationAcrossPages", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		// Task ids are random, so their order says nothing of age: here
		// the first created has the largest id.
		const n = 7
		for i := range n {
			if err := s.TaskCreate(ctx, newTask(fmt.Sprintf("task_%c", 'z'-i), "alice", nil)); err != nil {
				t.Fatal(err)
			}
		}
		var all []*store.Task
		for i := range n {
			tk, err := s.TaskGet(ctx, fmt.Sprintf("task_%c", 'z'-i), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, tk)
		}
		// Newest first by creation time, ties by id (descending).
		sort.SliceStable(all, func(i, j int) bool {
			if !all[i].CreatedAt.Equal(all[j].CreatedAt) {
				return all[i].CreatedAt.After(all[j].CreatedAt)
			}
			return all[i].ID > all[j].ID
		})
		want := ids(all)
		for _, owner := range []string{"alice", ""} {
			var got []string
			cursor := ""
			for range n {
				page, err := s.TaskList(ctx, &store.TaskListParams{Owner: owner, Limit: 3, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids(page)...)
				if len(page) < 3 {
					break
				}
				cursor = page[len(page)-1].ID
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("owner %q: pages give %v, want %v", owner, got, want)
			}
		}
	})
	t.Run("NotifiesChanges", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := newStore(t)
		ch := s.Subscribe(ctx)
		if err := s.TaskCreate(ctx, newTask("task_n", "alice", nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TaskUpdate(ctx, &store.TaskUpdateParams{ID: "task_n", Status: store.TaskCompleted}); err != nil {
			t.Fatal(err)
		}
		seen := 0
		deadline := time.After(10 * time.Second)
		for seen < 2 {
			select {
			case n := <-ch:
				if n.Kind == store.NotifyTaskChanged && n.ID == "task_n" {
					seen++
				}
			case <-deadline:
				t.Fatalf("saw %d task.changed notifications, want 2", seen)
			}
		}
	})
	t.Run("EventCreatedCarriesSource", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := newStore(t)
		ch := s.Subscribe(ctx)
		res := Ingest(ctx, t, s, "github", "k1")
		deadline := time.After(10 * time.Second)
		for {
			select {
			case n := <-ch:
				if n.Kind == store.NotifyEventCreated {
					if n.ID != res.EventID || n.Source != "github" {
						t.Fatalf("event.created: %+v", n)
					}
					return
				}
			case <-deadline:
				t.Fatal("no event.created notification")
			}
		}
	})
}

func ids(ts []*store.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}
