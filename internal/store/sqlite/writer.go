package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlstore"
)

// writeOp is one caller's write. fn runs on the writer goroutine inside the
// batch transaction; notes are published after the commit succeeds.
type writeOp struct {
	fn    func(w *writer) error
	err   error
	notes []store.Notification
	done  chan struct{}
}

// Done and Err make a writeOp a [sqlstore.QueuedWrite].
func (op *writeOp) Done() <-chan struct{} { return op.done }
func (op *writeOp) Err() error            { return op.err }

// writer owns the write connection and its prepared statements. Only the
// writer goroutine touches it. It is the [sqlstore.Tx] that write
// functions see.
type writer struct {
	*stmtCache
	ctx context.Context
	cur *writeOp
}

var _ sqlstore.Tx = (*writer)(nil)

// Transaction control, prepared once like every other statement.
const (
	sqlBegin      = `BEGIN IMMEDIATE`
	sqlCommit     = `COMMIT`
	sqlRollback   = `ROLLBACK`
	sqlSavepoint  = `SAVEPOINT op`
	sqlRelease    = `RELEASE op`
	sqlRollbackTo = `ROLLBACK TO op`
)

func newWriter(ctx context.Context, conn *sql.Conn) *writer {
	return &writer{stmtCache: newStmtCache(conn), ctx: context.WithoutCancel(ctx)}
}

// Notify implements [sqlstore.Tx]: n is published if this op commits.
func (w *writer) Notify(n store.Notification) { w.cur.notes = append(w.cur.notes, n) }

// ExecBatch implements [sqlstore.Tx]. SQLite has no round trips to save,
// so the statements simply run in order.
func (w *writer) ExecBatch(ctx context.Context, stmts ...sqlstore.Stmt) ([]int64, error) {
	out := make([]int64, len(stmts))
	for i, st := range stmts {
		n, err := w.Exec(ctx, st.SQL, st.Args...)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// exec runs transaction control on the writer's context.
func (w *writer) exec(q string) error {
	_, err := w.Exec(w.ctx, q)
	return err
}

// writeTx is the [sqlstore.WriteFunc] of the store: fn runs through the
// writer, on the writer's context.
func (s *Store) writeTx(ctx context.Context, fn func(ctx context.Context, tx sqlstore.Tx) error) error {
	return s.write(ctx, func(w *writer) error { return fn(w.ctx, w) })
}

// write hands fn to the writer and waits until its batch has committed (or
// failed). If ctx ends first it returns ctx's error, but fn may still run
// and commit.
func (s *Store) write(ctx context.Context, fn func(w *writer) error) error {
	return sqlstore.HandOff(ctx, s.ops, &writeOp{fn: fn, done: make(chan struct{})}, s.closed, s.done)
}

// runWriter is the writer goroutine: it batches queued operations into
// transactions until Close, then drains what is left and exits. Between
// two transactions it may be held by the checkpointer (the pause
// channel) while a restart checkpoint runs.
func (s *Store) runWriter() {
	defer close(s.done)
	batch := make([]*writeOp, 0, s.opts.MaxBatch)
	for {
		var first *writeOp
		select {
		case first = <-s.ops:
		case resume := <-s.ckpt.pause:
			<-resume
			continue
		case <-s.closed:
			// Finish what was queued before Close.
			for {
				select {
				case op := <-s.ops:
					s.runBatch(append(batch[:0], op))
					s.noteWAL()
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			default:
				break fill
			}
		}
		s.runBatch(batch)
		s.noteWAL()
	}
}

// noteWAL tells the checkpointer how many pages the last transaction
// wrote to the log.
func (s *Store) noteWAL() {
	n, err := walPagesWritten(s.wconn)
	if err != nil {
		s.log.Error("sqlite wal pages", "err", err)
		return
	}
	s.ckpt.added(n)
}

// runBatch runs ops in one transaction and completes them after the
// commit. It first runs them back to back with no savepoints (two fewer
// statements per op and no sub-journal): write ops almost never fail, since
// dedup is an upsert and a lost lease is a result, not an error. If one
// does fail, the whole transaction is rolled back and the batch runs again
// with a savepoint per op, so that the failing op does not fail its
// neighbours. Every op's fn is safe to run again: it sets its results
// rather than accumulating them.
func (s *Store) runBatch(ops []*writeOp) {
	w := s.w
	if err := w.exec(sqlBegin); err != nil {
		s.log.Error("sqlite begin", "err", err)
		s.finish(ops, fmt.Errorf("begin: %w", err))
		return
	}
	for _, op := range ops {
		w.cur = op
		op.notes = nil
		if op.err = op.fn(w); op.err != nil {
			break
		}
	}
	w.cur = nil
	var failed *writeOp
	for _, op := range ops {
		if op.err != nil {
			failed = op
			break
		}
	}
	if failed != nil {
		if err := w.exec(sqlRollback); err != nil {
			s.log.Error("sqlite rollback", "err", err)
		}
		if len(ops) == 1 {
			failed.notes = nil
			s.finish(ops, nil)
			return
		}
		for _, op := range ops {
			op.err, op.notes = nil, nil
		}
		s.runBatchSavepoints(ops)
		return
	}
	if err := w.exec(sqlCommit); err != nil {
		w.exec(sqlRollback)
		s.log.Error("sqlite commit", "err", err, "ops", len(ops))
		s.finish(ops, fmt.Errorf("commit: %w", err))
		return
	}
	s.finish(ops, nil)
}

// finish completes ops: each gets err unless it has its own, and the
// notifications of those that succeeded are published.
func (s *Store) finish(ops []*writeOp, err error) {
	for _, op := range ops {
		if op.err == nil && err != nil {
			op.err = err
		}
		if op.err == nil {
			s.hub.Publish(op.notes...)
		}
		close(op.done)
	}
}

// runBatchSavepoints runs ops in one transaction, one savepoint each, and
// completes them after the commit.
func (s *Store) runBatchSavepoints(ops []*writeOp) {
	w := s.w
	if err := w.exec(sqlBegin); err != nil {
		s.log.Error("sqlite begin", "err", err)
		s.finish(ops, fmt.Errorf("begin: %w", err))
		return
	}
	for _, op := range ops {
		w.cur = op
		if err := w.exec(sqlSavepoint); err != nil {
			op.err = fmt.Errorf("savepoint: %w", err)
			continue
		}
		op.err = op.fn(w)
		if op.err != nil {
			op.notes = nil
			if err := w.exec(sqlRollbackTo); err != nil {
				w.exec(sqlRollback)
				s.log.Error("sqlite rollback to savepoint", "err", err)
				s.finish(ops, fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		if err := w.exec(sqlRelease); err != nil {
			w.exec(sqlRollback)
			s.finish(ops, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	w.cur = nil
	if err := w.exec(sqlCommit); err != nil {
		w.exec(sqlRollback)
		s.log.Error("sqlite commit", "err", err, "ops", len(ops))
		s.finish(ops, fmt.Errorf("commit: %w", err))
		return
	}
	s.finish(ops, nil)
}
