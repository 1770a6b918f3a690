// Package sqlstore is the one SQL implementation of [store.Store], shared by
// the sqlite and postgres drivers. It owns every statement the two engines
// write alike (which is nearly all of them, written with ? placeholders),
// the row scanning, the list filters, and the rules around them (dedup,
// fencing, ordering, paging).
//
// A driver hands it an [Engine]: a [Querier] for reads, a write path that
// runs a function inside the driver's transaction (the sqlite single
// writer, the postgres group-commit writers), and a [Dialect] with the few
// statements that really differ (claiming with SKIP LOCKED, the ordered
// head, body search, queue stats, row locking). What stays in a driver is
// what the engines do differently: opening, migrations, the write loop and
// notifications; how a caller hands a write to that loop, and what it gets
// once the store closes, is one rule here ([HandOff]). Errors reaching the core have already been mapped onto the
// store's sentinels by the driver's adapters (one interpretError per
// engine), so nothing here inspects an engine's errors.
package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Row is one result row (*sql.Row and pgx.Row are).
type Row interface {
	Scan(dest ...any) error
}

// Rows is a result set. Close may be called more than once.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Querier runs statements written with ? placeholders, on a connection
// pool or inside a transaction. The errors it returns (from Exec, Query,
// Row.Scan and Rows.Err) are already mapped onto the store's sentinels:
// no row is [store.ErrNotFound], a unique violation wraps
// [store.ErrDuplicate].
type Querier interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, q string, args ...any) (int64, error)
	// Query runs a statement that returns rows.
	Query(ctx context.Context, q string, args ...any) (Rows, error)
	// QueryRow runs a statement that returns at most one row; its error is
	// reported by Scan.
	QueryRow(ctx context.Context, q string, args ...any) Row
}

// Stmt is one statement of a batch.
type Stmt struct {
	SQL  string
	Args []any
}

// Tx is a write in progress: a [Querier] inside the driver's transaction.
type Tx interface {
	Querier
	// ExecBatch runs stmts in order, in one round trip where the engine
	// can, and returns the rows each changed.
	ExecBatch(ctx context.Context, stmts ...Stmt) ([]int64, error)
	// Notify queues n to be published if, and only when, the transaction
	// commits.
	Notify(n store.Notification)
}

// WriteFunc runs fn inside a write transaction and returns once that
// transaction has committed (or failed). fn receives the transaction's own
// context, which it must use for every statement, and may run more than
// once (a driver retries a batch), so it must reset what it reports back.
type WriteFunc func(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error

// Dialect holds what the engines write differently. Every statement uses ?
// placeholders.
type Dialect struct {
	// ClaimDue leases due deliveries of one destination. Arguments: lease
	// until, now, destination, now, limit. Returns [DeliveryCols].
	ClaimDue string
	// OrderedHead selects the oldest pending delivery of a destination
	// (argument: destination) as id, next_attempt_at, locking it where the
	// engine can so that a concurrent claim of the head is waited for.
	OrderedHead string
	// BodyHas is a condition on a body column named body, with one ?
	// argument made by BodyArg from the search text: true when the body
	// contains the text, ASCII letters compared without case.
	BodyHas string
	// BodyArg turns search text into BodyHas's argument.
	BodyArg func(text string) any
	// Stats returns destination, pending count, oldest pending created_at
	// (0 when none), dead count, per destination with pending or dead
	// deliveries, by destination.
	Stats string
	// SkipLocked is appended to a sub-select that picks rows to change,
	// with the alias of the table whose rows it picks ("" when the
	// select has no alias): on an engine with row locks it makes
	// concurrent callers split the rows instead of waiting on each other.
	SkipLocked func(alias string) string
	// ForShare is appended to a select of rows that must not be deleted
	// before the transaction commits ("" on an engine with one writer).
	ForShare string
	// LateRows, when set, says that the engine's requests and events have
	// a late column (1 for a row whose id is stamped more than [LateAfter]
	// after its receipt) and index only the late rows by received_at
	// (WHERE late = 1), not every row: receipt-time ranges (lists' Since
	// and Until, Prune) then read an id range plus the late rows. It
	// returns what a statement reads the late rows of table ("requests",
	// "events") from: the table, named so that the engine reads its late
	// index, with alias if not "". When nil, the engine indexes every
	// row's received_at and ranges read that index.
	LateRows func(table, alias string) string
}

// Engine is what a driver gives the core.
type Engine struct {
	// Dialect is the engine's SQL.
	Dialect Dialect
	// Read runs reads outside any write transaction.
	Read Querier
	// Write runs a write through the driver's write path (group commit).
	Write WriteFunc
	// WriteAside runs a long maintenance write ([Store.Prune]) in a
	// transaction of its own, outside the group-commit path. If nil, Write.
	WriteAside WriteFunc
	// Claim, if set, runs [Store.DeliveryClaimDue]'s write instead of
	// Write: a driver with several connections runs claims in a
	// transaction of their own, so that they do not queue behind the
	// ingest batches. If nil, Write.
	Claim WriteFunc
	// Ingest, if set, writes one request's ingest, its rows prepared by
	// the core, through the driver's own path, which may write many
	// ingests together in a few multi-row statements (the postgres
	// driver). It returns once the rows have committed, with Duplicate
	// and First set (see [IngestRow]). If nil, the core writes the rows
	// itself, one ingest at a time, through Write. Not used with
	// Dialect.LateRows (the rows have no late column).
	Ingest func(ctx context.Context, row *IngestRow) error
	// Attempt, if set, records one attempt, its rows prepared by the core,
	// through the driver's own path (which may write many together), as
	// Ingest does for ingests. It returns once committed, with Lost set
	// (see [AttemptRow]). If nil, the core writes it through Write.
	Attempt func(ctx context.Context, row *AttemptRow) error
	// Closed is closed when the driver starts closing; [Store.Ready] then
	// reports [store.ErrClosed] at once, whatever it cached. If nil, the
	// store never reports itself closed before its writes do.
	Closed <-chan struct{}
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Store implements every [store.Store] method except Subscribe and Close,
// which the drivers add. It is safe for concurrent use.
type Store struct {
	d       Dialect
	read    Querier
	write   WriteFunc
	aside   WriteFunc
	claim   WriteFunc
	ingest  func(ctx context.Context, row *IngestRow) error
	attempt func(ctx context.Context, row *AttemptRow) error
	now     func() time.Time
	closed  <-chan struct{}
	ids     *store.IDGenerator
	// recent holds the requests just ingested, for their deliveries.
	recent *recentRequests
	// insertRequest and insertEvent are the ingest path's inserts (with
	// the late column when the dialect has one).
	insertRequest, insertEvent string

	// probe is this store's row in ready_probe.
	probe   string
	readyMu sync.Mutex
	readyAt time.Time
	readyOK error
}

// New returns the core over e.
func New(e Engine) *Store {
	s := &Store{d: e.Dialect, read: e.Read, write: e.Write, aside: e.WriteAside, ingest: e.Ingest, attempt: e.Attempt, now: e.Now, closed: e.Closed, ids: store.NewIDGenerator(),
		recent: newRecentRequests()}
	if s.aside == nil {
		s.aside = s.write
	}
	s.insertRequest, s.insertEvent = sqlInsertRequest, sqlInsertEvent
	if s.d.LateRows != nil {
		s.insertRequest, s.insertEvent = sqlInsertRequestLate, sqlInsertEventLate
	}
	if s.claim = e.Claim; s.claim == nil {
		s.claim = s.write
	}
	if s.now == nil {
		s.now = time.Now
	}
	var b [8]byte
	rand.Read(b[:])
	s.probe = hex.EncodeToString(b[:])
	return s
}

// orNow returns t, or the clock's time when t is zero.
func (s *Store) orNow(t time.Time) time.Time {
	if t.IsZero() {
		return s.now()
	}
	return t
}

// Ready implements [store.Store]: it upserts this store's row of the
// ready_probe table through the write path and caches the outcome for
// [store.ReadyCacheTTL]. An outcome cut short by ctx is not cached.
func (s *Store) Ready(ctx context.Context) error {
	select {
	case <-s.closed:
		return store.ErrClosed
	default:
	}
	s.readyMu.Lock()
	if !s.readyAt.IsZero() && time.Since(s.readyAt) < store.ReadyCacheTTL {
		err := s.readyOK
		s.readyMu.Unlock()
		return err
	}
	s.readyMu.Unlock()
	at := micros(s.now())
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		// Rows of stores that stopped an hour ago go in the same write.
		_, err := tx.ExecBatch(ctx,
			Stmt{`INSERT INTO ready_probe (id, at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, []any{s.probe, at}},
			Stmt{`DELETE FROM ready_probe WHERE at < ?`, []any{at - time.Hour.Microseconds()}})
		return err
	})
	if err != nil {
		err = fmt.Errorf("storage cannot persist: %w", err)
	}
	if ctx.Err() == nil {
		s.readyMu.Lock()
		s.readyAt, s.readyOK = time.Now(), err
		s.readyMu.Unlock()
	}
	return err
}
