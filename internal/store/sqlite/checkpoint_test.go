package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// ckptBundle is a store with small checkpoint thresholds, its file, and
// the checkpointer's passes as they happen.
type ckptBundle struct {
	s    *Store
	path string

	mu     sync.Mutex
	passes []checkpointPass
	signal chan struct{} // a pass happened
}

// setupCkpt opens a store whose checkpointer runs every 16 pages and
// restarts the log past 64, with a table of 2 KB rows to write to.
func setupCkpt(t *testing.T) *ckptBundle {
	t.Helper()
	ctx := context.Background()
	b := &ckptBundle{path: filepath.Join(t.TempDir(), "mailroom.db"), signal: make(chan struct{}, 1)}
	s, err := Open(ctx, b.path, &Options{CheckpointPages: 16, MaxWALPages: 64, onCheckpoint: func(p checkpointPass) {
		b.mu.Lock()
		b.passes = append(b.passes, p)
		b.mu.Unlock()
		select {
		case b.signal <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	b.s = s
	if err := s.write(ctx, func(w *writer) error {
		_, err := w.Exec(w.ctx, `CREATE TABLE ckpt_test (id INTEGER PRIMARY KEY, v BLOB NOT NULL)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// insert writes one 2 KB row.
func (b *ckptBundle) insert(ctx context.Context) error {
	return b.s.write(ctx, func(w *writer) error {
		_, err := w.Exec(w.ctx, `INSERT INTO ckpt_test (v) VALUES (?)`, bytes.Repeat([]byte{'x'}, 2048))
		return err
	})
}

// writeUntil keeps four goroutines inserting rows until cond holds for
// the passes so far, or fails the test after maxRows rows (the condition
// never came). It returns the passes seen.
func (b *ckptBundle) writeUntil(t *testing.T, maxRows int, what string, cond func([]checkpointPass) bool) []checkpointPass {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	left := maxRows
	errc := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if left == 0 {
					mu.Unlock()
					return
				}
				left--
				mu.Unlock()
				if err := b.insert(ctx); err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
			}
		}()
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	defer func() { cancel(); <-writersDone }()
	for {
		b.mu.Lock()
		passes := append([]checkpointPass(nil), b.passes...)
		b.mu.Unlock()
		if cond(passes) {
			return passes
		}
		select {
		case <-b.signal:
		case err := <-errc:
			t.Fatalf("a write failed while waiting until %s: %v", what, err)
		case <-writersDone:
			// The last rows may still be checkpointed: look once more.
			b.mu.Lock()
			passes = append([]checkpointPass(nil), b.passes...)
			b.mu.Unlock()
			if cond(passes) {
				return passes
			}
			t.Fatalf("%d rows written and still not %s; passes: %+v", maxRows, what, passes)
		}
	}
}

// restarts counts the passes that found a smaller log than the pass
// before: the log was started over in between.
func restarts(ps []checkpointPass) int {
	n := 0
	for i := 1; i < len(ps); i++ {
		if ps[i].Passive.Log >= 0 && ps[i].Passive.Log < ps[i-1].Passive.Log {
			n++
		}
	}
	return n
}

// walSize is the size of the log file, 0 if there is none.
func walSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestCheckpointerBoundsWAL writes without pause while a reader holds an
// old snapshot, then releases it and goes on writing. While the reader
// holds it, the log cannot start over and grows (the writes do not wait
// for the reader); once it is released, the checkpointer restarts the log
// although the writer never stops, the file is cut back, and from then on
// the log stays within a few times MaxWALPages.
func TestCheckpointerBoundsWAL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCkpt(t)
	const maxPages = 64 // Options.MaxWALPages of setupCkpt

	db, err := sql.Open("sqlite", "file:"+b.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reader, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, `SELECT count(*) FROM ckpt_test`).Scan(&n); err != nil {
		t.Fatal(err)
	}

	// The reader's snapshot is older than what the writes add: the log
	// cannot be copied past it nor started over, and the writes go on.
	b.writeUntil(t, 20000, "the log grows past 4×MaxWALPages", func(ps []checkpointPass) bool {
		return len(ps) > 0 && ps[len(ps)-1].Passive.Log > 4*maxPages
	})
	held := walSize(t, b.path)

	if _, err := reader.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	seen := len(b.passes)
	b.mu.Unlock()
	b.writeUntil(t, 20000, "the log is started over", func(ps []checkpointPass) bool {
		return restarts(ps[seen-1:]) > 0
	})

	// The first commit after the restart cuts the file back to
	// journal_size_limit (3×MaxWALPages pages); from then on the log
	// restarts before it outgrows MaxWALPages by more than what one pass
	// lets the writer append (4× leaves room for a slow, loaded machine).
	limit := int64(3 * maxPages * 4096)
	b.writeUntil(t, 20000, "the log file is cut back", func([]checkpointPass) bool {
		return walSize(t, b.path) <= limit+64*1024
	})
	b.mu.Lock()
	seen = len(b.passes)
	b.mu.Unlock()
	passes := b.writeUntil(t, 20000, "20 more passes", func(ps []checkpointPass) bool { return len(ps) >= seen+20 })
	for _, p := range passes[seen:] {
		if p.Passive.Log > 4*maxPages {
			t.Errorf("after the reader ended, a pass found %d pages in the log (MaxWALPages %d)", p.Passive.Log, maxPages)
		}
	}
	if restarts(passes[seen-1:]) == 0 {
		t.Errorf("20 passes under continuous writes and the log never started over: %+v", passes[seen:])
	}
	if size := walSize(t, b.path); size > limit+64*1024 || size >= held {
		t.Errorf("log file %d bytes after the restarts (%d while the reader held it, limit %d)", size, held, limit)
	}
}

// TestCloseCheckpointsWAL: after Close the log file is gone and the
// database file alone holds every row, although the writer never
// checkpointed.
func TestCloseCheckpointsWAL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCkpt(t)
	for range 100 {
		if err := b.insert(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if walSize(t, b.path) == 0 {
		t.Fatal("no log file while the store is open")
	}
	if err := b.s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("log file after Close: %v", err)
	}
	// Only the database file, in a directory of its own.
	dst := filepath.Join(t.TempDir(), "copy.db")
	data, err := os.ReadFile(b.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+dst+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM ckpt_test`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 100 {
		t.Errorf("the database file holds %d rows, want 100", n)
	}
}
