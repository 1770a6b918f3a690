package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
)

// DefaultCheckpointPages is the WAL size, in pages, past which the
// checkpointer copies the log into the database file: SQLite's own
// wal_autocheckpoint default.
const DefaultCheckpointPages = 1000

// DefaultMaxWALPages is the WAL size, in pages (40 MB of 4 KiB pages),
// past which the checkpointer holds the writer for a moment to start the
// log over.
const DefaultMaxWALPages = 10000

// checkpointBusyTimeout bounds how long the checkpointer's connection
// waits for a lock: in a restart, for the readers still in the log. It
// is short because the writer is held meanwhile; a reader that takes
// longer (a backup, a long list) makes the restart give up and be tried
// again later, rather than stall ingest.
const checkpointBusyTimeout = 100 * time.Millisecond

// maxRestartBackoff caps the passes skipped after failed restarts.
const maxRestartBackoff = 32

// checkpointer copies the WAL into the database file from its own
// connection, so that the writer does not: the writer's connection runs
// with wal_autocheckpoint=0. SQLite lets a PASSIVE checkpoint run beside
// the writer (it copies the frames committed before it started, up to the
// oldest snapshot a reader still uses, and waits for nobody), but only the
// writer restarts the log from its beginning, and only when its
// transaction starts with the whole log copied and no reader in it. Under
// continuous writes that moment never comes: the writer appends while the
// checkpoint copies. So once the log passes [Options.MaxWALPages], the
// checkpointer takes the writer between two transactions (see
// [Store.runWriter]) and runs a RESTART checkpoint, which copies the rest
// and waits, at most [checkpointBusyTimeout], for the readers to leave the
// log; the writer's next transaction then writes from the log's start.
// If the passive checkpoint found a reader in the log's older part, the
// restart would wait for it: it is put off until the log reaches twice
// MaxWALPages. A restart that a reader outlives is tried again after 1,
// 2, 4, … up to [maxRestartBackoff] passes.
//
// Only the checkpointer goroutine uses it, but pages is added to by the
// writer.
type checkpointer struct {
	conn  *sql.Conn
	log   *slog.Logger
	every int64 // Options.CheckpointPages
	max   int64 // Options.MaxWALPages
	// pages counts the pages the writer wrote to the log since the
	// checkpointer last looked; kick tells the checkpointer it passed
	// every.
	pages atomic.Int64
	kick  chan struct{}
	// pause hands the writer a channel to wait on: the writer receives
	// it between two transactions and waits until it is closed.
	pause chan chan struct{}
	// onPass, if non-nil, is called after each pass (tests).
	onPass func(checkpointPass)
}

// checkpointResult is what PRAGMA wal_checkpoint reports: whether it was
// blocked (by a reader or another checkpoint), the log's size in frames,
// and how many of them are now in the database file.
type checkpointResult struct {
	Busy         bool
	Log, Checked int64
}

// checkpointPass is one pass of the checkpointer: the passive checkpoint,
// and the restart if it took one (Restarted reports whether the restart
// waited out every reader, so that the next write starts the log over).
type checkpointPass struct {
	Passive   checkpointResult
	Restart   *checkpointResult
	Restarted bool
}

// added records that the writer wrote n pages to the log and wakes the
// checkpointer when the log has grown by every pages since it last ran.
func (c *checkpointer) added(n int) {
	if c.pages.Add(int64(n)) >= c.every {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// run checkpoints each time the writer has added [Options.CheckpointPages]
// pages to the log, until ctx ends.
func (c *checkpointer) run(ctx context.Context) {
	var backoff, skip int
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		if c.pages.Load() < c.every {
			continue // a kick left over from the last pass
		}
		c.pages.Store(0)
		var pass checkpointPass
		res, err := c.checkpoint(ctx, "PASSIVE")
		if err != nil {
			if ctx.Err() == nil {
				c.log.Error("sqlite checkpoint", "err", err)
			}
			continue
		}
		pass.Passive = res
		switch {
		case res.Log < c.max:
		case res.Checked < res.Log && res.Log < 2*c.max:
			// A reader was in the log's older part while it was copied:
			// a restart would hold the writer while it waits for that
			// reader. Let the log grow to twice MaxWALPages first.
		case skip > 0:
			skip--
		default:
			rres, err := c.restart(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				c.log.Error("sqlite checkpoint restart", "err", err)
			}
			pass.Restart = &rres
			pass.Restarted = err == nil && !rres.Busy
			if pass.Restarted {
				backoff = 0
				break
			}
			// A reader outlived checkpointBusyTimeout: the log grows
			// until it ends. Try again after 1, 2, 4, … passes, so that a
			// long reader (a backup) does not hold the writer at each.
			backoff = min(max(1, 2*backoff), maxRestartBackoff)
			skip = backoff
			c.log.Warn("sqlite checkpoint: readers kept the WAL from restarting", "wal_pages", rres.Log, "retry_after_passes", skip)
		}
		if c.onPass != nil {
			c.onPass(pass)
		}
	}
}

// restart holds the writer between two transactions and runs a RESTART
// checkpoint meanwhile.
func (c *checkpointer) restart(ctx context.Context) (checkpointResult, error) {
	resume := make(chan struct{})
	select {
	case c.pause <- resume:
	case <-ctx.Done():
		return checkpointResult{}, ctx.Err()
	}
	defer close(resume)
	// Not ctx: the writer waits for this, and Close cancels ctx only
	// after the writer has stopped.
	return c.checkpoint(context.WithoutCancel(ctx), "RESTART")
}

// checkpoint runs PRAGMA wal_checkpoint(mode) on the checkpointer's
// connection.
func (c *checkpointer) checkpoint(ctx context.Context, mode string) (checkpointResult, error) {
	var busy int
	var r checkpointResult
	if err := c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &r.Log, &r.Checked); err != nil {
		return r, fmt.Errorf("checkpoint %s: %w", mode, err)
	}
	r.Busy = busy != 0
	return r, nil
}

// walPagesWritten returns the pages the writer's connection wrote to the
// log since the last call (SQLITE_DBSTATUS_CACHE_WRITE, reset on read).
// Only the writer goroutine calls it.
func walPagesWritten(conn *sql.Conn) (int, error) {
	var n int
	err := conn.Raw(func(dc any) error {
		st, ok := dc.(msqlite.DBStatus)
		if !ok {
			return errors.New("the driver's connection has no Status")
		}
		var err error
		n, _, err = st.Status(msqlite.DBStatusCacheWrite, true)
		return err
	})
	return n, err
}
