package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlstore"
)

// writeOp is one caller's write. fn runs inside a batch transaction (and,
// if the batch fails, again in a transaction of its own), so it must reset
// whatever it reports back at its start. notes are published after the
// commit succeeds.
type writeOp struct {
	fn func(w *wtx) error
	// ingest, set instead of fn, is an ingest written in bulk with the
	// batch's other ingests (bulk.go).
	ingest *sqlstore.IngestRow
	// attempt, likewise, is an attempt recorded in bulk.
	attempt *sqlstore.AttemptRow
	err     error
	notes   []store.Notification
	done    chan struct{}
}

// Done and Err make a writeOp a [sqlstore.QueuedWrite].
func (op *writeOp) Done() <-chan struct{} { return op.done }
func (op *writeOp) Err() error            { return op.err }

// wtx is what a writeOp's fn sees: the [sqlstore.Tx] over the batch
// transaction, bound to its op.
type wtx struct {
	querier
	ctx context.Context
	op  *writeOp
}

var _ sqlstore.Tx = (*wtx)(nil)

// Notify implements [sqlstore.Tx]: n is sent (to other instances) and
// published (locally) if this op commits.
func (w *wtx) Notify(n store.Notification) { w.op.notes = append(w.op.notes, n) }

// writeTx is the [sqlstore.WriteFunc] of the store: fn runs through the
// group-commit writers, on the batch transaction's context.
func (s *Store) writeTx(ctx context.Context, fn func(ctx context.Context, tx sqlstore.Tx) error) error {
	return s.write(ctx, func(w *wtx) error { return fn(w.ctx, w) })
}

// writeAside is the store's [sqlstore.Engine.WriteAside]: fn runs in a
// transaction of its own on a pool connection, not through the writers,
// so that ingestion never queues behind a long maintenance write. Its
// notifications are published locally after the commit.
func (s *Store) writeAside(ctx context.Context, fn func(ctx context.Context, tx sqlstore.Tx) error) error {
	select {
	case <-s.closed:
		return store.ErrClosed
	default:
	}
	op := &writeOp{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return fn(ctx, &wtx{querier: querier{q: tx, rb: &s.rebind}, ctx: ctx, op: op})
	})
	if err != nil {
		return interpretError(err)
	}
	s.hub.Publish(op.notes...)
	return nil
}

// claimTx is the store's [sqlstore.Engine.Claim]: a claim runs as
// [Store.writeAside] does, beside the writers, bounded by WriteTimeout as
// a writer's batch is, so that a hung server fails the dispatcher's claim
// instead of holding it.
func (s *Store) claimTx(ctx context.Context, fn func(ctx context.Context, tx sqlstore.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	return s.writeAside(ctx, fn)
}

// write hands fn to the writers and waits until its transaction has
// committed (or failed). If ctx ends first it returns ctx's error, but fn
// may still run and commit.
func (s *Store) write(ctx context.Context, fn func(w *wtx) error) error {
	return s.enqueue(ctx, &writeOp{fn: fn, done: make(chan struct{})})
}

// enqueue hands op to the writers and waits as [Store.write] does.
func (s *Store) enqueue(ctx context.Context, op *writeOp) error {
	return sqlstore.HandOff(ctx, s.ops, op, s.closed, s.done)
}

// runWriter is one writer goroutine: it batches queued operations into
// transactions until Close, then drains what is left and exits.
func (s *Store) runWriter() {
	batch := make([]*writeOp, 0, s.opts.MaxBatch)
	for {
		var first *writeOp
		select {
		case first = <-s.ops:
		case <-s.closed:
			for {
				select {
				case op := <-s.ops:
					s.runBatch(append(batch[:0], op))
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
	}
}

// errOp marks a batch that failed because one of its operations did, as
// opposed to the transaction itself.
var errOp = errors.New("operation failed")

// runBatch runs ops in one transaction. If an operation fails, the batch is
// rolled back and every op runs again alone, so each gets its own outcome;
// an op that loses a deadlock or serialization conflict to another
// transaction (another instance's batch) runs again, so that contention
// between instances never reaches a caller as an error.
// A failure of the transaction itself (begin, notify, commit) fails them
// all: after a failed commit the outcome is unknown, and running them again
// could apply them twice.
func (s *Store) runBatch(ops []*writeOp) {
	err := s.runTx(ops)
	if errors.Is(err, errOp) {
		for _, op := range ops {
			if len(ops) > 1 || conflicted(op.err) {
				s.runAlone(op)
			}
			if op.err != nil {
				op.notes = nil
			}
			close(op.done)
		}
		return
	}
	for _, op := range ops {
		if err != nil {
			op.err, op.notes = err, nil
		}
		close(op.done)
	}
}

// maxConflictRetries bounds how often one operation is run again after
// losing a deadlock or serialization conflict to another transaction.
const maxConflictRetries = 5

// conflicted reports whether err is PostgreSQL aborting the transaction
// to break a deadlock (40P01) or a serialization conflict (40001): the
// transaction was rolled back whole and can simply run again. Several
// instances batching ingests whose dedup keys cross (a provider's
// duplicate storm spread over the instances) lock those keys in different
// orders, and PostgreSQL resolves that by aborting one of them.
func conflicted(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// runAlone runs op in a transaction of its own, again while it loses
// conflicts (up to [maxConflictRetries] times), and leaves its outcome in
// op.err.
func (s *Store) runAlone(op *writeOp) {
	for try := 0; ; try++ {
		op.err = nil
		err := s.runTx([]*writeOp{op})
		if err != nil && !errors.Is(err, errOp) {
			op.err = err
		}
		if !conflicted(op.err) || try >= maxConflictRetries {
			return
		}
		if !sleep(s.life, time.Duration(try+1)*5*time.Millisecond) {
			return
		}
	}
}

// runTx runs ops in one transaction and, after the commit, publishes their
// notifications locally and hands them to the notifier. The batch's
// ingests are written first, all together in a few multi-row statements
// (bulk.go), pipelined with BEGIN and, when the batch holds nothing else,
// with COMMIT; then each other op runs its statements. On an op's failure
// it sets that op's err (every ingest's, when a multi-row statement fails)
// and returns errOp.
func (s *Store) runTx(ops []*writeOp) error {
	ctx, cancel := context.WithTimeout(s.life, s.opts.WriteTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", interpretError(err))
	}
	defer conn.Release()
	var bulk []*writeOp
	fns := 0
	for _, op := range ops {
		op.notes = op.notes[:0]
		switch {
		case op.ingest != nil:
			op.ingest.Duplicate, op.ingest.First = false, ""
			bulk = append(bulk, op)
		case op.attempt != nil:
			op.attempt.Lost = false
			bulk = append(bulk, op)
		default:
			fns++
		}
	}
	// Until the commit has been sent, a failure rolls back; a connection
	// that cannot roll back is closed (the pool then drops it).
	open, committed := false, false
	defer func() {
		if open && !committed {
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer rcancel()
			if _, err := conn.Exec(rctx, "ROLLBACK"); err != nil {
				conn.Conn().Close(rctx)
			}
		}
	}()
	open = true
	if len(bulk) > 0 {
		done, err := s.writeBulk(ctx, conn, bulk, fns == 0)
		if err != nil {
			if errors.Is(err, errCommit) {
				committed = true // or not: the outcome is unknown
				return err
			}
			if errors.Is(err, errBegin) {
				return err
			}
			for _, op := range bulk {
				op.err = interpretError(err)
			}
			return errOp
		}
		committed = done
	} else if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("begin: %w", interpretError(err))
	}
	if !committed {
		w := &wtx{querier: querier{q: conn, rb: &s.rebind}, ctx: ctx}
		for _, op := range ops {
			if op.fn == nil {
				continue
			}
			w.op = op
			if err := op.fn(w); err != nil {
				op.err = interpretError(err)
				return errOp
			}
		}
		committed = true // whatever COMMIT answers, do not roll back
		if err := commit(ctx, conn); err != nil {
			return err
		}
	}
	var notes []store.Notification
	for _, op := range ops {
		switch {
		case op.ingest != nil && !op.ingest.Duplicate:
			op.notes = append(op.notes, op.ingest.Notes...)
		case op.attempt != nil && !op.attempt.Lost:
			op.notes = append(op.notes, op.attempt.Notes...)
		}
		s.hub.Publish(op.notes...)
		notes = append(notes, op.notes...)
	}
	s.notifier.send(notes)
	return nil
}

// commit commits the transaction open on conn. A COMMIT that PostgreSQL
// answers with ROLLBACK (the transaction had failed) is an error.
func commit(ctx context.Context, conn *pgxpool.Conn) error {
	tag, err := conn.Exec(ctx, "COMMIT")
	if err == nil && tag.String() != "COMMIT" {
		err = fmt.Errorf("transaction rolled back (%s)", tag)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errCommit, err)
	}
	return nil
}
