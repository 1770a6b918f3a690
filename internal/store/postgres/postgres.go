// Package postgres is the [store.Store] driver for PostgreSQL, on
// github.com/jackc/pgx/v5 (pgxpool). It is the driver for running several
// mailroom instances against one database.
//
// Schema: the same tables and columns as the SQLite driver, created by
// versioned migrations embedded in the binary and recorded in
// schema_migrations. [Open] applies the missing ones under a PostgreSQL
// advisory lock, so instances that start together do not race. The tables
// live in the first schema of the connection's search_path, which may be
// set in the DSN (postgres://host/db?search_path=mailroom); Open creates
// that schema when it does not exist.
//
// Writes: a few writer goroutines ([Options.Writers]), each with its own
// connection from the pool, take the write operations queued by callers and
// run every operation that queued while their previous commit was in
// flight in one transaction (group commit). Ingests and attempt records,
// the two writes made per event, are written in bulk: all of a batch's in
// one multi-row statement per table (bulk.go), pipelined with BEGIN and
// COMMIT, so a batch of them costs two or three round trips and a handful
// of statements whatever its size; the other writes run their statements
// one after another in the same transaction. Deliveries are claimed in a
// transaction of their own on a pool connection, beside the writers, so
// that a dispatcher's claim never waits behind an ingest batch. A method returns only after
// the transaction holding its rows has committed (with the server's
// synchronous_commit, on by default: durable). When one operation of a
// batch fails, the batch is rolled back and each of its operations is run
// again in a transaction of its own, so a failing operation never fails
// its neighbours; a failed commit fails the whole batch, and each caller
// gets the error.
//
// Work sharing: deliveries are claimed with SELECT ... FOR UPDATE SKIP
// LOCKED, so instances never claim the same delivery while its lease holds,
// and never wait on each other's claims. Ordered destinations claim their
// head with FOR UPDATE (no SKIP LOCKED), so a second instance waits for the
// first's claim and then sees the head leased, rather than skipping ahead.
// Attempt outcomes are fenced on the delivery's attempt count; task updates
// are conditional on the task not being terminal, so of racing completions
// on any number of instances exactly one wins. Deduplication rests on the
// primary key of the dedup table.
//
// Notifications: the changes a loop waits for (delivery.due, event.created,
// task.changed, catalog.changed) are published to this instance's
// [store.Hub] when their transaction commits, and sent to the other
// instances with pg_notify by one notifier goroutine right after, in a
// short transaction of its own that takes whatever was committed
// meanwhile (notify.go), so other instances never hear of a change before
// it is committed. delivery.due is coalesced to one per destination per
// send. Not inside the data transactions: PostgreSQL holds the lock that
// orders NOTIFY through the commit's WAL flush, so notifying transactions
// could not share flushes. A dedicated listener connection (re)subscribes
// with backoff and feeds what other instances send into the same hub, so
// [Store.Subscribe] sees local and remote changes alike. Notifications are
// hints: one is lost when the listener is reconnecting (after which it
// publishes a catalog.changed and a delivery.due for every destination),
// or when a process dies between a commit and its send.
//
// Every [store.Store] method but Subscribe and Close is the shared SQL core
// ([sqlstore.Store]); this package supplies its dialect (dialect.go), the
// writers it writes through (writer.go), opening, migrations and
// notifications (notify.go).
package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Defaults for zero [Options] fields.
const (
	// DefaultWriters is the number of writer goroutines (and connections).
	DefaultWriters = 4
	// DefaultMaxBatch is the most write operations one transaction takes.
	DefaultMaxBatch = 128
	// DefaultMaxConns is the pool size, writers included.
	DefaultMaxConns = 16
	// DefaultWriteTimeout bounds one batch transaction.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultChannel is the notification channel when the DSN sets no
	// search_path. With a search_path it is "mailroom." + search_path, so
	// that stores in different schemas of one database do not hear each
	// other.
	DefaultChannel = "mailroom"
)

// Options tunes the driver. The zero value is ready to use.
type Options struct {
	// Logger receives driver errors that have no caller to return to
	// (listener reconnects). If nil, they are discarded.
	Logger *slog.Logger
	// Writers is the number of writer goroutines, each committing batches
	// on its own connection. If zero, [DefaultWriters].
	Writers int
	// MaxBatch caps the operations per transaction. If zero,
	// [DefaultMaxBatch].
	MaxBatch int
	// MaxConns sizes the connection pool (writers and reads; the listener
	// has its own connection). If zero, the DSN's pool_max_conns or
	// [DefaultMaxConns]; at least Writers+2.
	MaxConns int
	// WriteTimeout bounds one batch transaction, so a hung server fails
	// the callers instead of holding them. If zero, [DefaultWriteTimeout].
	WriteTimeout time.Duration
	// Channel is the LISTEN/NOTIFY channel. If empty, see [DefaultChannel].
	// Every instance sharing one schema must use the same channel.
	Channel string
	// NoMigrate makes Open fail with a [store.SchemaBehindError] when
	// migrations are pending instead of applying them. If false, Open
	// applies them. Either way a database migrated by a newer mailroom is
	// refused with a [store.SchemaTooNewError].
	NoMigrate bool
}

// Store is the PostgreSQL driver. It is safe for concurrent use; Close
// releases its pool, writers and listener. Every [store.Store] method but
// Subscribe and Close comes from the shared SQL core ([sqlstore.Store])
// running on this driver's pool and writers.
type Store struct {
	*sqlstore.Store
	opts    Options
	log     *slog.Logger
	pool    *pgxpool.Pool
	hub     store.Hub
	rebind  sqlstore.Rebinder
	channel string
	origin  string // this Store's id in notification payloads

	ops      chan *writeOp
	notifier *notifier
	ndone    chan struct{}   // closed when the notifier has sent what was left
	life     context.Context // ends when the writers and listener must stop
	stop     context.CancelFunc
	closeMu  sync.Once
	closed   chan struct{} // closed when Close starts
	writers  sync.WaitGroup
	done     chan struct{} // closed when every writer has exited
	lwg      sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// Open connects to the database the DSN names (a postgres:// or
// postgresql:// URL or a key=value string, as pgx reads them), creates the
// search_path schema if needed, applies migrations and starts the writers
// and the listener. The caller must Close it.
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Writers = cmp.Or(max(o.Writers, 0), DefaultWriters)
	o.MaxBatch = cmp.Or(max(o.MaxBatch, 0), DefaultMaxBatch)
	o.WriteTimeout = cmp.Or(max(o.WriteTimeout, 0), DefaultWriteTimeout)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: parse dsn: %w", err)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = int32(o.MaxConns)
	} else if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	cfg.MaxConns = max(cfg.MaxConns, int32(o.Writers+2))
	searchPath := cfg.ConnConfig.RuntimeParams["search_path"]
	channel := o.Channel
	if channel == "" {
		channel = DefaultChannel
		if searchPath != "" {
			channel += "." + searchPath
		}
	}
	if len(channel) > 63 {
		return nil, fmt.Errorf("open postgres: notification channel %q longer than 63 bytes; set Options.Channel", channel)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := migrate(ctx, pool, searchPath, !o.NoMigrate); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate postgres: %w", err)
	}
	var origin [8]byte
	rand.Read(origin[:])
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &Store{
		opts:    o,
		log:     log,
		pool:    pool,
		channel: channel,
		origin:  hex.EncodeToString(origin[:]),
		ops:     make(chan *writeOp, o.MaxBatch*o.Writers*2),
		life:    life,
		stop:    stop,
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
		ndone:   make(chan struct{}),
	}
	s.notifier = newNotifier(s)
	s.Store = sqlstore.New(sqlstore.Engine{Dialect: dialect(), Read: querier{q: pool, rb: &s.rebind}, Write: s.writeTx, WriteAside: s.writeAside, Ingest: s.ingestOne, Attempt: s.attemptOne, Claim: s.claimTx, Closed: s.closed})
	l := newListener(s, cfg.ConnConfig.Copy())
	if err := l.connect(ctx); err != nil {
		stop()
		pool.Close()
		return nil, fmt.Errorf("open postgres: listen on %s: %w", channel, err)
	}
	s.lwg.Add(1)
	go func() {
		defer s.lwg.Done()
		l.run(life)
	}()
	for range o.Writers {
		s.writers.Add(1)
		go func() {
			defer s.writers.Done()
			s.runWriter()
		}()
	}
	go func() {
		s.notifier.run(s.done)
		close(s.ndone)
	}()
	go func() {
		s.writers.Wait()
		close(s.done)
	}()
	return s, nil
}

// migrationLockClass is the first key of the advisory lock that serialises
// migrations; the second is a hash of the search_path.
const migrationLockClass = 0x6d726d67 // "mrmg"

// migrate creates the search_path's schema if missing, refuses a database
// migrated by a newer mailroom, and applies the embedded migrations that
// schema_migrations does not list (unless apply is false: then pending
// ones are a [store.SchemaBehindError]), each in its own transaction, in
// version order, all under an advisory lock so that instances starting
// together apply each migration once.
func migrate(ctx context.Context, pool *pgxpool.Pool, searchPath string, apply bool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	h := fnv.New32a()
	h.Write([]byte(searchPath))
	key := int32(h.Sum32())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, migrationLockClass, key); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// A connection whose unlock failed must not go back to the pool
		// still holding the lock.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, $2)`, migrationLockClass, key); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if schema := firstSchema(searchPath); schema != "" {
		if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	pending, err := sqlstore.PendingMigrations(ctx, querier{q: conn.Conn(), rb: &sqlstore.Rebinder{}}, migrationsFS, "migrations", apply)
	if err != nil {
		return err
	}
	for _, m := range pending {
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.Version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return fmt.Errorf("apply %s: %w", m.Name, err)
		}
	}
	return nil
}

// schemaStatus reads schema_migrations (which must exist) and compares it
// with the embedded migrations.
func schemaStatus(ctx context.Context, conn *pgx.Conn) (*store.SchemaStatus, error) {
	return sqlstore.ReadSchemaStatus(ctx, querier{q: conn, rb: &sqlstore.Rebinder{}}, migrationsFS, "migrations")
}

// Status reports the schema of the database the DSN names against this
// binary's migrations without changing anything. A schema without
// schema_migrations has every migration pending.
func Status(ctx context.Context, dsn string) (*store.SchemaStatus, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for schema_migrations: %w", err)
	}
	if !exists {
		return store.NewSchemaStatus(migrationsFS, "migrations")
	}
	return schemaStatus(ctx, conn)
}

// firstSchema returns the first schema named in a search_path setting,
// skipping "$user", or "" when there is none.
func firstSchema(searchPath string) string {
	for part := range strings.SplitSeq(searchPath, ",") {
		part = strings.TrimSpace(part)
		if part == "" || part == `"$user"` || part == "$user" {
			continue
		}
		if len(part) >= 2 && part[0] == '"' && part[len(part)-1] == '"' {
			return strings.ReplaceAll(part[1:len(part)-1], `""`, `"`)
		}
		return strings.ToLower(part)
	}
	return ""
}

// Close stops accepting writes, lets the writers finish what is queued,
// stops the listener and closes the pool. It is safe to call more than
// once.
func (s *Store) Close() error {
	s.closeMu.Do(func() {
		close(s.closed)
		<-s.done
		<-s.ndone
		s.stop()
		s.lwg.Wait()
		s.pool.Close()
	})
	return nil
}

// Subscribe implements [store.Notifier]. It sees this instance's commits and,
// through LISTEN, every other instance's on the same channel.
func (s *Store) Subscribe(ctx context.Context) <-chan store.Notification {
	return s.hub.Subscribe(ctx)
}
