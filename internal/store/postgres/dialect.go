package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlstore"
)

// dialect is PostgreSQL's part of the SQL: row locks (SKIP LOCKED) so
// that instances share work without waiting on each other, a byte-exact
// body search, and FILTER aggregates.
func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		// SKIP LOCKED: rows another instance is claiming right now are not
		// waited for, and not taken.
		// The lease comes first so that the arguments read in the core's
		// order (lease until, now, destination, now, limit).
		ClaimDue: `WITH lease AS (SELECT ?::bigint AS until, ?::bigint AS now),
			due AS (SELECT id FROM deliveries WHERE destination = ? AND status = 'pending' AND next_attempt_at <= ?
				ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED)
			UPDATE deliveries d SET attempts = d.attempts + 1, next_attempt_at = lease.until, updated_at = lease.now
			FROM due, lease WHERE d.id = due.id
			RETURNING d.id, d.event_id, d.request_id, d.source, d.destination, d.connection_id, d.status, d.attempts,
				d.next_attempt_at, d.created_at, d.updated_at, d.last_error, d.last_status, d.project, d.retry`,
		// No SKIP LOCKED: a concurrent claim of the head is waited for, after
		// which the head is seen leased (not due) instead of skipped.
		OrderedHead: `SELECT id, next_attempt_at FROM deliveries WHERE destination = ? AND status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE`,
		// The body is read as Latin-1, which maps each byte to one character
		// and never fails, so the match is byte for byte; lower under the C
		// collation folds ASCII letters only (under the database's
		// collation it would fold by locale), and strpos has no wildcards,
		// so % _ and \ match only themselves. The argument is the search
		// text folded the same way in Go. (translate folded the same
		// letters 25 times slower: 6.6 s against 0.26 s for 5,000 bodies
		// of 2 KB.)
		BodyHas: `strpos(lower(convert_from(body, 'LATIN1') COLLATE "C"), convert_from(?::bytea, 'LATIN1')) > 0`,
		BodyArg: func(text string) any {
			return []byte(strings.Map(func(r rune) rune {
				if 'A' <= r && r <= 'Z' {
					return r + ('a' - 'A')
				}
				return r
			}, text))
		},
		Stats: `SELECT destination,
			count(*) FILTER (WHERE status = 'pending'),
			coalesce(min(created_at) FILTER (WHERE status = 'pending'), 0),
			count(*) FILTER (WHERE status = 'dead')
			FROM deliveries WHERE status IN ('pending', 'dead') GROUP BY destination ORDER BY destination`,
		SkipLocked: func(alias string) string {
			if alias == "" {
				return " FOR UPDATE SKIP LOCKED"
			}
			return " FOR UPDATE OF " + alias + " SKIP LOCKED"
		},
		ForShare: " FOR SHARE",
	}
}

// interpretError maps pgx errors onto the store's sentinels.
func interpretError(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return store.ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return fmt.Errorf("%w: %v", store.ErrDuplicate, err)
	case strings.Contains(err.Error(), "closed pool"):
		return store.ErrClosed
	}
	return err
}

// pgxQuerier is what a pool and a transaction both offer.
type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

var (
	_ pgxQuerier = (*pgxpool.Pool)(nil)
	_ pgxQuerier = (pgx.Tx)(nil)
)

// querier is a [sqlstore.Querier] over a pool or a transaction: it
// numbers the placeholders and interprets the errors.
type querier struct {
	q  pgxQuerier
	rb *sqlstore.Rebinder
}

// Exec implements [sqlstore.Querier].
func (q querier) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, q.rb.Rebind(sql), args...)
	if err != nil {
		return 0, interpretError(err)
	}
	return tag.RowsAffected(), nil
}

// Query implements [sqlstore.Querier].
func (q querier) Query(ctx context.Context, sql string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.q.Query(ctx, q.rb.Rebind(sql), args...)
	if err != nil {
		return nil, interpretError(err)
	}
	return pgRows{rows}, nil
}

// QueryRow implements [sqlstore.Querier].
func (q querier) QueryRow(ctx context.Context, sql string, args ...any) sqlstore.Row {
	return pgRow{q.q.QueryRow(ctx, q.rb.Rebind(sql), args...)}
}

// ExecBatch runs stmts in one round trip.
func (q querier) ExecBatch(ctx context.Context, stmts ...sqlstore.Stmt) ([]int64, error) {
	b := &pgx.Batch{}
	for _, st := range stmts {
		b.Queue(q.rb.Rebind(st.SQL), st.Args...)
	}
	br := q.q.SendBatch(ctx, b)
	out := make([]int64, len(stmts))
	for i := range stmts {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return nil, interpretError(err)
		}
		out[i] = tag.RowsAffected()
	}
	if err := br.Close(); err != nil {
		return nil, interpretError(err)
	}
	return out, nil
}

// pgRow and pgRows interpret the errors of pgx's rows.
type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error { return interpretError(r.r.Scan(dest...)) }

type pgRows struct{ r pgx.Rows }

func (r pgRows) Next() bool             { return r.r.Next() }
func (r pgRows) Scan(dest ...any) error { return interpretError(r.r.Scan(dest...)) }
func (r pgRows) Err() error             { return interpretError(r.r.Err()) }
func (r pgRows) Close()                 { r.r.Close() }
