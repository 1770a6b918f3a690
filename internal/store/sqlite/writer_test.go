package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
)

// TestBatchFailureSparesNeighbours runs one batch whose middle op fails
// after writing, and checks that its neighbours commit, its own write is
// undone, and only the neighbours' notifications are published.
func TestBatchFailureSparesNeighbours(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "mailroom.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	notes := s.Subscribe(sub)

	insert := func(name string) func(w *writer) error {
		return func(w *writer) error {
			w.Notify(store.Notification{Kind: store.NotifyCatalogChanged, ID: name})
			_, err := w.Exec(w.ctx, `INSERT INTO sources (name, spec, created_at, updated_at) VALUES (?, '{}', 0, 0)`, name)
			return err
		}
	}
	ops := []*writeOp{
		{fn: insert("a"), done: make(chan struct{})},
		{fn: func(w *writer) error {
			if err := insert("c")(w); err != nil {
				return err
			}
			return insert("a")(w) // duplicate key: fails after writing c
		}, done: make(chan struct{})},
		{fn: insert("b"), done: make(chan struct{})},
	}
	// The writer goroutine is idle (nothing is queued), so the test may
	// drive a batch itself.
	s.runBatch(ops)
	for i, op := range ops {
		<-op.done
		if failed := op.err != nil; failed != (i == 1) {
			t.Errorf("op %d: err = %v", i, op.err)
		}
	}
	for name, want := range map[string]int{"a": 1, "b": 1, "c": 0} {
		var n int
		if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM sources WHERE name = ?`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("source %s: %d rows, want %d", name, n, want)
		}
	}
	got := map[string]bool{}
	for range 2 {
		got[(<-notes).ID] = true
	}
	if !got["a"] || !got["b"] {
		t.Errorf("published %v, want a and b", got)
	}
	select {
	case n := <-notes:
		t.Errorf("unexpected notification %+v", n)
	default:
	}
}
