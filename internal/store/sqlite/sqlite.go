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
// The writer does not checkpoint (wal_autocheckpoint=0): a checkpointer
// goroutine on a connection of its own copies the log into the database
// file beside it once the log has grown by [Options.CheckpointPages], and
// holds the writer between two transactions only to start the log over
// when it passes [Options.MaxWALPages] (checkpoint.go). A reader that
// keeps an old snapshot (a backup, a long list) holds the log back, as it
// does in SQLite's own checkpoints: the log grows until it ends, then is
// started over and its file cut back to three times MaxWALPages
// (journal_size_limit). Close checkpoints the whole log and removes it.
//
// Opening checks the path before SQLite does: the parent directory must
// exist ([ErrNoDirectory] otherwise, unless [Options.CreateDirs]), and a
// file or directory the process may not write is reported with the
// system's reason rather than SQLite's "unable to open database file".
//
// Every [store.Store] method but Subscribe and Close is the shared SQL core
// ([sqlstore.Store]); this package supplies its dialect (dialect.go), the
// writer it writes through (writer.go), opening and migrations.
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
	"strconv"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlstore"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// DefaultMaxBatch is the most write operations one transaction takes.
const DefaultMaxBatch = 256

// MmapSize is the most of the database file that is read through a
// memory map (SQLite's mmap_size; SQLite may cap it lower).
const MmapSize = 4 << 30

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
	// CreateDirs creates the database file's missing parent directories.
	// If false, a missing parent directory is [ErrNoDirectory], so that a
	// mistyped path does not silently start an empty database.
	CreateDirs bool
	// Synchronous is the SQLite synchronous pragma. If empty, "FULL":
	// every commit is fsynced before it is acknowledged. "NORMAL" survives
	// a process crash but not power loss.
	Synchronous string
	// CheckpointPages is the log size, in pages, past which the
	// checkpointer copies the log into the database file, beside the
	// writer (a PASSIVE checkpoint). If zero, [DefaultCheckpointPages].
	CheckpointPages int
	// MaxWALPages is the log size, in pages, past which the checkpointer
	// holds the writer between two transactions to copy the rest and start
	// the log over (a RESTART checkpoint; a few milliseconds). If zero,
	// [DefaultMaxWALPages]; below CheckpointPages, CheckpointPages. A
	// reader older than the log's start can keep it growing past it until
	// the reader ends.
	MaxWALPages int
	// NoMigrate makes Open fail with a [store.SchemaBehindError] when
	// migrations are pending instead of applying them. If false, Open
	// applies them. Either way a database migrated by a newer mailroom is
	// refused with a [store.SchemaTooNewError].
	NoMigrate bool

	// onCheckpoint, if non-nil, is called after each pass of the
	// checkpointer (tests).
	onCheckpoint func(checkpointPass)
}

// Store is the SQLite driver. It is safe for concurrent use. Every
// [store.Store] method but Subscribe and Close comes from the shared SQL
// core ([sqlstore.Store]) running on this driver's reads and writer.
type Store struct {
	*sqlstore.Store
	opts   Options
	log    *slog.Logger
	wdb    *sql.DB
	wconn  *sql.Conn
	rdb    *sql.DB
	w      *writer
	reads  *stmtCache
	ops    chan *writeOp
	hub    store.Hub
	close  sync.Once
	closed chan struct{} // closed when Close starts
	done   chan struct{} // closed when the writer has exited

	cdb      *sql.DB
	ckpt     *checkpointer
	stopCkpt context.CancelFunc
	ckptDone chan struct{} // closed when the checkpointer has exited
}

var _ store.Store = (*Store)(nil)

// Open opens the database file at path (creating the file, and with
// [Options.CreateDirs] its missing parent directories), applies migrations
// and starts the writer. The caller must Close it. A missing parent
// directory is [ErrNoDirectory]; a file or directory the process may not
// write is reported in words ("permission denied", "read-only file
// system"), not as SQLite's "unable to open database file".
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
	if o.CheckpointPages <= 0 {
		o.CheckpointPages = DefaultCheckpointPages
	}
	if o.MaxWALPages <= 0 {
		o.MaxWALPages = DefaultMaxWALPages
	}
	o.MaxWALPages = max(o.MaxWALPages, o.CheckpointPages)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	if err := checkPath(path, o.CreateDirs); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s, err := open(ctx, path, o, log)
	if err != nil {
		if why := diagnose(path); why != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, why)
		}
		return nil, err
	}
	return s, nil
}

// open opens the connections, migrates and starts the writer.
func open(ctx context.Context, path string, o Options, log *slog.Logger) (*Store, error) {
	// mmap_size: pages are read through a memory map of the file rather
	// than a pread each; SQLite keeps writing through the log. On a large
	// database the B-trees' paths no longer fit the page cache and every
	// transaction re-read them: with a million pending deliveries (2.3 GB)
	// ingest was 44-50% slower than on an empty database, 20-33% with the
	// map (docs/benchmarks.md, "Backlog"). The mapped pages count in the
	// process's RSS; they are the file's page cache, not heap.
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(OFF)&_pragma=temp_store(MEMORY)&_pragma=mmap_size(" + strconv.FormatInt(MmapSize, 10) + ")"
	// The writer never checkpoints (wal_autocheckpoint=0): the
	// checkpointer does, on its own connection (checkpoint.go).
	wdsn := "file:" + path + "?" + pragmas + "&_pragma=synchronous(" + o.Synchronous + ")&_pragma=wal_autocheckpoint(0)"
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
	// After a restart the writer cuts the log file back to this size
	// (above the 2×MaxWALPages where the checkpointer stops sparing
	// readers), so that a log a long reader made grow does not keep its
	// disk space.
	var pageSize int64
	if err := wconn.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
		wconn.Close()
		wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if _, err := wconn.ExecContext(ctx, "PRAGMA journal_size_limit = "+strconv.FormatInt(3*int64(o.MaxWALPages)*pageSize, 10)); err != nil {
		wconn.Close()
		wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	migrated, err := walPagesWritten(wconn)
	if err != nil {
		wconn.Close()
		wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	rdb, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		wconn.Close()
		wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(o.ReadConns)
	rdb.SetMaxIdleConns(o.ReadConns)
	// The checkpointer's connection: synchronous as the writer's, so that
	// the database file is fsynced before the log it copied is reused.
	cdb, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout("+strconv.FormatInt(checkpointBusyTimeout.Milliseconds(), 10)+")&_pragma=journal_mode(WAL)&_pragma=synchronous("+o.Synchronous+")")
	if err != nil {
		rdb.Close()
		wconn.Close()
		wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	cdb.SetMaxOpenConns(1)
	cconn, err := cdb.Conn(ctx)
	if err != nil {
		cdb.Close()
		rdb.Close()
		wconn.Close()
		wdb.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s := &Store{
		opts:   o,
		log:    log,
		wdb:    wdb,
		wconn:  wconn,
		rdb:    rdb,
		w:      newWriter(ctx, wconn),
		reads:  newStmtCache(rdb),
		ops:    make(chan *writeOp, o.MaxBatch*4),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
		cdb:    cdb,
		ckpt: &checkpointer{
			conn:   cconn,
			log:    log,
			every:  int64(o.CheckpointPages),
			max:    int64(o.MaxWALPages),
			kick:   make(chan struct{}, 1),
			pause:  make(chan chan struct{}),
			onPass: o.onCheckpoint,
		},
		ckptDone: make(chan struct{}),
	}
	// The dispatcher's per-delivery lookups: prepared now, not on first use.
	for _, q := range sqlstore.HotReads() {
		s.reads.stmt(ctx, q)
	}
	s.Store = sqlstore.New(sqlstore.Engine{Dialect: dialect(), Read: s.reads, Write: s.writeTx, Closed: s.closed})
	go s.runWriter()
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopCkpt = stop
	go func() {
		defer close(s.ckptDone)
		s.ckpt.run(cctx)
	}()
	s.ckpt.added(migrated)
	return s, nil
}

// migrate refuses a database migrated by a newer mailroom, then applies
// the embedded migrations that schema_migrations does not record (unless
// apply is false: then pending ones are a [store.SchemaBehindError]), each
// in its own transaction, in version order.
func migrate(ctx context.Context, c *sql.Conn, apply bool) error {
	if _, err := c.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	pending, err := sqlstore.PendingMigrations(ctx, &stmtCache{db: c}, migrationsFS, "migrations", apply)
	if err != nil {
		return err
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
	return sqlstore.ReadSchemaStatus(ctx, &stmtCache{db: c}, migrationsFS, "migrations")
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

// Close stops accepting writes, lets the writer finish what is queued,
// stops the checkpointer, checkpoints the whole log and closes the
// database (the last connection to close removes the log file). It is
// safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.close.Do(func() {
		close(s.closed)
		<-s.done
		s.stopCkpt()
		<-s.ckptDone
		// TRUNCATE: with the writer gone, this copies what is left and
		// empties the log, unless a reader is still in it; then the last
		// connection's close does it.
		if _, cerr := s.ckpt.checkpoint(context.Background(), "TRUNCATE"); cerr != nil {
			s.log.Error("sqlite checkpoint on close", "err", cerr)
		}
		err = errors.Join(s.w.close(), s.reads.close(), s.wconn.Close(), s.wdb.Close(), s.rdb.Close(), s.ckpt.conn.Close(), s.cdb.Close())
	})
	return err
}

// Subscribe implements [store.Notifier].
func (s *Store) Subscribe(ctx context.Context) <-chan store.Notification {
	return s.hub.Subscribe(ctx)
}
