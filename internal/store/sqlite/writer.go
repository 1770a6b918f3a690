package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mailroomhq/mailroom/internal/store"
)

// writeOp is one caller's write. fn runs on the writer goroutine inside the
// batch transaction; notes are published after the commit succeeds.
type writeOp struct {
	fn    func(w *writer) error
	err   error
	notes []store.Notification
	done  chan struct{}
}

// notify queues a notification to publish if this op commits.
func (w *writer) notify(n store.Notification) { w.cur.notes = append(w.cur.notes, n) }

// writer owns the write connection and its prepared statements. Only the
// writer goroutine touches it.
type writer struct {
	conn  *sql.Conn
	ctx   context.Context
	cur   *writeOp
	stmts map[string]*sql.Stmt
}

// Statements prepared once on the write connection.
const (
	sqlInsertRequest = `INSERT INTO requests (id, source, received_at, method, path, query, headers, body, remote_addr, status, reason, http_status, event_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlInsertEvent = `INSERT INTO events (id, source, request_id, received_at, type, dedup_key, status, deliveries)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	sqlDedupClaim = `INSERT INTO dedup (source, key, event_id, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (source, key) DO UPDATE SET event_id = excluded.event_id, expires_at = excluded.expires_at
		WHERE dedup.expires_at <= ?`
	sqlDedupGet       = `SELECT event_id FROM dedup WHERE source = ? AND key = ?`
	sqlInsertDelivery = `INSERT INTO deliveries (id, event_id, request_id, source, destination, connection_id, status, attempts, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`
	sqlInsertAttempt = `INSERT INTO attempts (id, delivery_id, event_id, destination, number, started_at, duration_ms, status_code, response_headers, response_body, error, success)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlFinishDelivery = `UPDATE deliveries SET status = ?, next_attempt_at = ?, last_error = ?, last_status = ?, updated_at = ?
		WHERE id = ? AND attempts = ? AND status = 'pending'`
	sqlClaimDue = `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
		WHERE id IN (SELECT id FROM deliveries WHERE destination = ? AND status = 'pending' AND next_attempt_at <= ?
			ORDER BY next_attempt_at, id LIMIT ?)
		RETURNING ` + deliveryCols
	sqlOrderedHead = `SELECT id, next_attempt_at FROM deliveries WHERE destination = ? AND status = 'pending' ORDER BY id LIMIT 1`
	sqlClaimOne    = `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ? WHERE id = ? RETURNING ` + deliveryCols
	sqlEventRouted = `UPDATE events SET status = 'routed', deliveries = deliveries + ? WHERE id = ?`
	sqlBegin       = `BEGIN IMMEDIATE`
	sqlCommit      = `COMMIT`
	sqlRollback    = `ROLLBACK`
	sqlSavepoint   = `SAVEPOINT op`
	sqlRelease     = `RELEASE op`
	sqlRollbackTo  = `ROLLBACK TO op`
)

func newWriter(ctx context.Context, conn *sql.Conn) (*writer, error) {
	w := &writer{conn: conn, ctx: context.WithoutCancel(ctx), stmts: map[string]*sql.Stmt{}}
	for _, q := range []string{sqlInsertRequest, sqlInsertEvent, sqlDedupClaim, sqlDedupGet, sqlInsertDelivery,
		sqlInsertAttempt, sqlFinishDelivery, sqlClaimDue, sqlOrderedHead, sqlClaimOne, sqlEventRouted,
		sqlBegin, sqlCommit, sqlRollback, sqlSavepoint, sqlRelease, sqlRollbackTo} {
		st, err := conn.PrepareContext(ctx, q)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("prepare %q: %w", firstLine(q), err)
		}
		w.stmts[q] = st
	}
	return w, nil
}

func firstLine(q string) string {
	for i, c := range q {
		if c == '\n' {
			return q[:i]
		}
	}
	return q
}

func (w *writer) close() error {
	var errs []error
	for _, st := range w.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// exec runs a prepared statement, or an ad-hoc one when q was not prepared.
func (w *writer) exec(q string, args ...any) (sql.Result, error) {
	if st, ok := w.stmts[q]; ok {
		return st.ExecContext(w.ctx, args...)
	}
	return w.conn.ExecContext(w.ctx, q, args...)
}

func (w *writer) query(q string, args ...any) (*sql.Rows, error) {
	if st, ok := w.stmts[q]; ok {
		return st.QueryContext(w.ctx, args...)
	}
	return w.conn.QueryContext(w.ctx, q, args...)
}

func (w *writer) queryRow(q string, args ...any) *sql.Row {
	if st, ok := w.stmts[q]; ok {
		return st.QueryRowContext(w.ctx, args...)
	}
	return w.conn.QueryRowContext(w.ctx, q, args...)
}

// write hands fn to the writer and waits until its batch has committed (or
// failed). If ctx ends first it returns ctx's error, but fn may still run
// and commit.
func (s *Store) write(ctx context.Context, fn func(w *writer) error) error {
	op := &writeOp{fn: fn, done: make(chan struct{})}
	select {
	case <-s.closed:
		return store.ErrClosed
	default:
	}
	select {
	case s.ops <- op:
	case <-s.closed:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-op.done:
		return op.err
	case <-s.done:
		// The writer exited; it may have taken op just before.
		select {
		case <-op.done:
			return op.err
		default:
			return store.ErrClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runWriter is the writer goroutine: it batches queued operations into
// transactions until Close, then drains what is left and exits.
func (s *Store) runWriter() {
	defer close(s.done)
	batch := make([]*writeOp, 0, s.opts.MaxBatch)
	for {
		var first *writeOp
		select {
		case first = <-s.ops:
		case <-s.closed:
			// Finish what was queued before Close.
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
	if _, err := w.exec(sqlBegin); err != nil {
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
		if _, err := w.exec(sqlRollback); err != nil {
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
	if _, err := w.exec(sqlCommit); err != nil {
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
	if _, err := w.exec(sqlBegin); err != nil {
		s.log.Error("sqlite begin", "err", err)
		s.finish(ops, fmt.Errorf("begin: %w", err))
		return
	}
	for _, op := range ops {
		w.cur = op
		if _, err := w.exec(sqlSavepoint); err != nil {
			op.err = fmt.Errorf("savepoint: %w", err)
			continue
		}
		op.err = op.fn(w)
		if op.err != nil {
			op.notes = nil
			if _, err := w.exec(sqlRollbackTo); err != nil {
				w.exec(sqlRollback)
				s.log.Error("sqlite rollback to savepoint", "err", err)
				s.finish(ops, fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := w.exec(sqlRelease); err != nil {
			w.exec(sqlRollback)
			s.finish(ops, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	w.cur = nil
	if _, err := w.exec(sqlCommit); err != nil {
		w.exec(sqlRollback)
		s.log.Error("sqlite commit", "err", err, "ops", len(ops))
		s.finish(ops, fmt.Errorf("commit: %w", err))
		return
	}
	s.finish(ops, nil)
}
