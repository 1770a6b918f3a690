package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlstore"
)

// dialect is SQLite's part of the SQL: no row locks (there is one
// writer), LIKE for body search, and a claim that updates a sub-select.
func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		ClaimDue: `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
			WHERE id IN (SELECT id FROM deliveries WHERE destination = ? AND status = 'pending' AND next_attempt_at <= ?
				ORDER BY next_attempt_at, id LIMIT ?)
			RETURNING ` + sqlstore.DeliveryCols,
		OrderedHead: `SELECT id, next_attempt_at FROM deliveries WHERE destination = ? AND status = 'pending' ORDER BY id LIMIT 1`,
		// SQLite's LIKE compares ASCII letters without case; ESCAPE makes % _
		// and \ in the search text match only themselves.
		BodyHas: `CAST(body AS TEXT) LIKE ? ESCAPE '\'`,
		BodyArg: func(text string) any {
			return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(text) + "%"
		},
		Stats: `SELECT destination,
			SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END),
			COALESCE(MIN(CASE WHEN status = 'pending' THEN created_at END), 0),
			SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END)
			FROM deliveries WHERE status IN ('pending', 'dead') GROUP BY destination ORDER BY destination`,
		SkipLocked: func(string) string { return "" },
		// Migration 0017: requests_late and events_late index the late rows.
		LateRows: func(table, alias string) string {
			return strings.TrimSpace(table+" "+alias) + " INDEXED BY " + table + "_late"
		},
	}
}

// interpretError maps database/sql and SQLite errors onto the store's
// sentinels.
func interpretError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case strings.Contains(err.Error(), "UNIQUE constraint failed"):
		return fmt.Errorf("%w: %v", store.ErrDuplicate, err)
	}
	return err
}

// maxPrepared bounds the statements a [stmtCache] keeps prepared. List
// queries are built from filters, so their number is bounded but not
// small; beyond the bound a statement runs unprepared.
const maxPrepared = 256

// preparer is a *sql.DB or *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, q string) (*sql.Stmt, error)
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// stmtCache is a [sqlstore.Querier] over a pool or one connection that
// prepares each statement the first time it runs, so the hot paths do not
// parse SQL every time. Without a map (a zero stmts) it prepares nothing:
// for one-off reads on a connection that outlives them.
type stmtCache struct {
	db    preparer
	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

func newStmtCache(db preparer) *stmtCache {
	return &stmtCache{db: db, stmts: make(map[string]*sql.Stmt)}
}

// stmt returns q prepared, or nil to run it unprepared.
func (c *stmtCache) stmt(ctx context.Context, q string) *sql.Stmt {
	if c.stmts == nil {
		return nil
	}
	c.mu.RLock()
	st, ok := c.stmts[q]
	c.mu.RUnlock()
	if ok {
		return st
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[q]; ok {
		return st
	}
	if len(c.stmts) >= maxPrepared {
		return nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil // run unprepared, and report the error from there
	}
	c.stmts[q] = st
	return st
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.stmts {
		errs = append(errs, st.Close())
		delete(c.stmts, q)
	}
	return errors.Join(errs...)
}

// Exec implements [sqlstore.Querier].
func (c *stmtCache) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	var r sql.Result
	var err error
	if st := c.stmt(ctx, q); st != nil {
		r, err = st.ExecContext(ctx, args...)
	} else {
		r, err = c.db.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return 0, interpretError(err)
	}
	n, err := r.RowsAffected()
	return n, interpretError(err)
}

// Query implements [sqlstore.Querier].
func (c *stmtCache) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	var rows *sql.Rows
	var err error
	if st := c.stmt(ctx, q); st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = c.db.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return nil, interpretError(err)
	}
	return sqlRows{rows}, nil
}

// QueryRow implements [sqlstore.Querier].
func (c *stmtCache) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	if st := c.stmt(ctx, q); st != nil {
		return sqlRow{st.QueryRowContext(ctx, args...)}
	}
	return sqlRow{c.db.QueryRowContext(ctx, q, args...)}
}

// sqlRow and sqlRows interpret the errors of database/sql's rows.
type sqlRow struct{ r *sql.Row }

func (r sqlRow) Scan(dest ...any) error { return interpretError(r.r.Scan(dest...)) }

type sqlRows struct{ r *sql.Rows }

func (r sqlRows) Next() bool             { return r.r.Next() }
func (r sqlRows) Scan(dest ...any) error { return interpretError(r.r.Scan(dest...)) }
func (r sqlRows) Err() error             { return interpretError(r.r.Err()) }
func (r sqlRows) Close()                 { r.r.Close() }
