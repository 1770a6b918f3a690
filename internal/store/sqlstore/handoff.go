package sqlstore

import (
	"context"

	"github.com/mailroomhq/mailroom/internal/store"
)

// QueuedWrite is a write a driver queues for its writer goroutines. Done
// is closed once a writer has finished it (committed or failed); Err is
// then its outcome.
type QueuedWrite interface {
	Done() <-chan struct{}
	Err() error
}

// HandOff hands op to a driver's writers on ops and waits until it is
// finished, returning its outcome. It is the one rule of both drivers for
// a write meeting a closing store: once closed is closed (Close started)
// no write is taken and the caller gets [store.ErrClosed]; once
// writersDone is closed (every writer exited) a write a writer took just
// before still reports its own outcome, any other gets [store.ErrClosed].
// If ctx ends first HandOff returns ctx's error, but op may still run and
// commit.
func HandOff[W QueuedWrite](ctx context.Context, ops chan<- W, op W, closed, writersDone <-chan struct{}) error {
	select {
	case <-closed:
		return store.ErrClosed
	default:
	}
	select {
	case ops <- op:
	case <-closed:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-op.Done():
		return op.Err()
	case <-writersDone:
		// Every writer exited; one may have taken op just before.
		select {
		case <-op.Done():
			return op.Err()
		default:
			return store.ErrClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}
