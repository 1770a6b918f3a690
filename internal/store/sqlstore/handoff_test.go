package sqlstore

import (
	"context"
	"errors"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
)

type testWrite struct {
	err  error
	done chan struct{}
}

func (w *testWrite) Done() <-chan struct{} { return w.done }
func (w *testWrite) Err() error            { return w.err }

// TestHandOff: a write meeting a closing store gets ErrClosed unless a
// writer took it, in which case it gets its own outcome, even after every
// writer has exited.
func TestHandOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	errOwn := errors.New("own outcome")

	t.Run("ClosedTakesNothing", func(t *testing.T) {
		t.Parallel()
		ops := make(chan *testWrite, 1)
		closed := make(chan struct{})
		close(closed)
		if err := HandOff(ctx, ops, &testWrite{done: make(chan struct{})}, closed, make(chan struct{})); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("HandOff on a closed store: %v, want ErrClosed", err)
		}
		if len(ops) != 0 {
			t.Fatal("a closed store took the write")
		}
	})

	t.Run("Outcome", func(t *testing.T) {
		t.Parallel()
		ops := make(chan *testWrite)
		go func() {
			w := <-ops
			w.err = errOwn
			close(w.done)
		}()
		if err := HandOff(ctx, ops, &testWrite{done: make(chan struct{})}, make(chan struct{}), make(chan struct{})); !errors.Is(err, errOwn) {
			t.Fatalf("HandOff: %v, want the write's own outcome", err)
		}
	})

	t.Run("TakenBeforeWritersExited", func(t *testing.T) {
		t.Parallel()
		ops := make(chan *testWrite)
		writersDone := make(chan struct{})
		go func() {
			w := <-ops
			w.err = errOwn
			close(w.done)
			close(writersDone)
		}()
		if err := HandOff(ctx, ops, &testWrite{done: make(chan struct{})}, make(chan struct{}), writersDone); !errors.Is(err, errOwn) {
			t.Fatalf("HandOff: %v, want the write's own outcome", err)
		}
	})

	t.Run("TakenButNotFinished", func(t *testing.T) {
		t.Parallel()
		ops := make(chan *testWrite)
		writersDone := make(chan struct{})
		go func() {
			<-ops
			close(writersDone)
		}()
		if err := HandOff(ctx, ops, &testWrite{done: make(chan struct{})}, make(chan struct{}), writersDone); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("HandOff: %v, want ErrClosed", err)
		}
	})

	t.Run("ContextEnds", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := HandOff(ctx, make(chan *testWrite), &testWrite{done: make(chan struct{})}, make(chan struct{}), make(chan struct{})); !errors.Is(err, context.Canceled) {
			t.Fatalf("HandOff: %v, want context.Canceled", err)
		}
	})
}
