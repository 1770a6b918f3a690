// Package sqlite is the embedded [store.Store] driver, on modernc.org/sqlite
// (pure Go, no cgo).
//
// Concurrency settings: the database runs in WAL mode with
// synchronous=FULL, so a committed transaction is fsynced before any caller
// is told it succeeded. All writes go through one writer goroutine that owns
// the only write connection and is fed by a FIFO channel. It takes every
// write that queued while the previous commit was in flight and runs them
// in one transaction (group commit), each in its own savepoint so that one
// failing operation does not fail its neighbours; a failed commit fails the
// whole batch. There is no linger timer: under load batches grow by
// themselves, and an idle store commits a lone write at once. Because there
// is exactly one writer, SQLITE_BUSY never happens between mailroom's own
// writes. Reads use a separate pool of connections, which WAL lets run
// beside the writer.
//
// Several processes must not share one database file: run several mailroom
// instances on PostgreSQL instead.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlrow"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// DefaultMaxBatch is the most write operations one transaction takes.
const DefaultMaxBatch = 256

// DefaultReadConns is the size of the read pool.
const DefaultReadConns = 4

// Options tunes the driver. The zero value is ready to use.
type Options struct {
	// Logger receives driver errors that have no caller to return to. If
	// nil, they are discarded.
	Logger *slog.Logger
	// MaxBatch caps the operations per transaction. If zero,
	// [DefaultMaxBatch].
	MaxBatch int
	// ReadConns sizes the read pool. If zero, [DefaultReadConns].
	ReadConns int
	// Synchronous is the SQLite synchronous pragma. If empty, "FULL":
	// every commit is fsynced before it is acknowledged. "NORMAL" survives
	// a process crash but not power loss.
	Synchronous string
	// NoMigrate makes Open fail with a [store.SchemaBehindError] when
	// migrations are pending instead of applying them. If false, Open
	// applies them. Either way a database migrated by a newer mailroom is
	// refused with a [store.SchemaTooNewError].
	NoMigrate bool
}

// Store is the SQLite driver. It is safe for concurrent use.
type Store struct {
	opts   Options
	log    *slog.Logger
	wdb    *sql.DB
	wconn  *sql.Conn
	rdb    *sql.DB
	w      *writer
	reads  *readStmts
	ops    chan *writeOp
	hub    store.Hub
	ids    *store.IDGenerator
	close  sync.Once
	closed chan struct{} // closed when Close starts
	done   chan struct{} // closed when the writer has exited
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path, applies
// migrations and starts the writer. The caller must Close it.
func Open(ctx context.Context, path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.ReadConns <= 0 {
		o.ReadConns = DefaultReadConns
	}
	if o.Synchronous == "" {
		o.Synchronous = "FULL"
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite: create directory %s: %w", dir, err)
		}
	}
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(OFF)&_pragma=temp_store(MEMORY)"
	wdsn := "file:" + path + "?" + pragmas + "&_pragma=synchronous(" + o.Synchronous + ")"
	wdb, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	wconn, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := migrate(ctx, wconn, !o.NoMigrate); err != nil {
		wconn.Close()
		wdb.Close()
		return nil, fmt.Errorf("migrate sqlite %s: %w", path, err)
	}
	rdb, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		wconn.Close()
		wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(o.ReadConns)
	rdb.SetMaxIdleConns(o.ReadConns)
	w, err := newWriter(ctx, wconn)
	if err != nil {
		rdb.Close()
		wconn.Close()
		wdb.Close()
		return nil, fmt.Errorf("prepare sqlite statements: %w", err)
	}
	reads, err := prepareReads(ctx, rdb)
	if err != nil {
		w.close()
		rdb.Close()
		wconn.Close()
		wdb.Close()
		return nil, fmt.Errorf("prepare sqlite statements: %w", err)
	}
	s := &Store{
		reads:  reads,
		opts:   o,
		log:    log,
		wdb:    wdb,
		wconn:  wconn,
		rdb:    rdb,
		w:      w,
		ops:    make(chan *writeOp, o.MaxBatch*4),
		ids:    store.NewIDGenerator(),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
	}
	go s.runWriter()
	return s, nil
}

// readStmts are the hot reads, prepared once on the read pool (database/sql
// prepares each on a pooled connection the first time it runs there), so
// that the dispatcher's per-delivery lookups do not parse SQL every time.
type readStmts struct {
	request  *sql.Stmt
	event    *sql.Stmt
	delivery *sql.Stmt
}

func prepareReads(ctx context.Context, db *sql.DB) (*readStmts, error) {
	r := &readStmts{}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&r.request, `SELECT ` + requestCols + ` FROM requests WHERE id = ?`},
		{&r.event, `SELECT ` + eventCols + ` FROM events WHERE id = ?`},
		{&r.delivery, `SELECT ` + deliveryCols + ` FROM deliveries WHERE id = ?`},
	} {
		st, err := db.PrepareContext(ctx, p.q)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("prepare %q: %w", p.q, err)
		}
		*p.st = st
	}
	return r, nil
}

func (r *readStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{r.request, r.event, r.delivery} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// migrate refuses a database migrated by a newer mailroom, then applies
// the embedded migrations that schema_migrations does not record (unless
// apply is false: then pending ones are a [store.SchemaBehindError]), each
// in its own transaction, in version order.
func migrate(ctx context.Context, c *sql.Conn, apply bool) error {
	if _, err := c.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	st, err := schemaStatus(ctx, c)
	if err != nil {
		return err
	}
	if err := st.Check(); err != nil {
		return err
	}
	pending := st.Pending()
	if len(pending) > 0 && !apply {
		return &store.SchemaBehindError{Database: st.Current(), Binary: st.Latest()}
	}
	for _, m := range pending {
		if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, m.SQL); err != nil {
			c.ExecContext(ctx, "ROLLBACK")
			return fmt.Errorf("apply %s: %w", m.Name, err)
		}
		if _, err := c.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.Version, time.Now().UnixMicro()); err != nil {
			c.ExecContext(ctx, "ROLLBACK")
			return err
		}
		if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
			c.ExecContext(ctx, "ROLLBACK")
			return err
		}
	}
	return nil
}

// schemaStatus reads schema_migrations (which must exist) and compares it
// with the embedded migrations.
func schemaStatus(ctx context.Context, c *sql.Conn) (*store.SchemaStatus, error) {
	st, err := store.NewSchemaStatus(migrationsFS, "migrations")
	if err != nil {
		return nil, err
	}
	rows, err := c.QueryContext(ctx, `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var at int64
		if err := rows.Scan(&v, &at); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		st.Applied[v] = time.UnixMicro(at).UTC()
	}
	return st, rows.Err()
}

// Status reports the schema of the database file at path against this
// binary's migrations without changing anything: it opens the file read
// only, and a file that does not exist yet has every migration pending.
func Status(ctx context.Context, path string) (*store.SchemaStatus, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return store.NewSchemaStatus(migrationsFS, "migrations")
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	defer c.Close()
	var n int
	if err := c.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("read sqlite %s: %w", path, err)
	}
	if n == 0 {
		return store.NewSchemaStatus(migrationsFS, "migrations")
	}
	return schemaStatus(ctx, c)
}

// Close stops accepting writes, lets the writer finish what is queued, and
// closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.close.Do(func() {
		close(s.closed)
		<-s.done
		err = errors.Join(s.w.close(), s.reads.close(), s.wconn.Close(), s.wdb.Close(), s.rdb.Close())
	})
	return err
}

// Subscribe implements [store.Store].
func (s *Store) Subscribe(ctx context.Context) <-chan store.Notification {
	return s.hub.Subscribe(ctx)
}

// Ping runs an empty write transaction through the writer, so it fails when
// the database cannot take writes.
func (s *Store) Ping(ctx context.Context) error {
	return s.write(ctx, func(*writer) error { return nil })
}

// micros converts t to the stored form; the zero time is 0.
func micros(t time.Time) int64 { return sqlrow.Micros(t) }

// fromMicros converts a stored time back; 0 is the zero time.
func fromMicros(v int64) time.Time { return sqlrow.FromMicros(v) }

// interpretError maps driver errors onto the store's sentinels.
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
