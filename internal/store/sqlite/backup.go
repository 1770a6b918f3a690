package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database at src to the new file
// dst while other connections, in this process or another (a running
// `mailroom serve`), keep writing to src. It uses VACUUM INTO on a read-only
// connection: the copy is the snapshot of one read transaction, so it holds
// every transaction committed before the backup started and none half
// done, and the serving writer is never blocked (WAL lets it commit beside
// the reader). The copy is written to a temporary file beside dst, fsynced
// and renamed into place, so dst is either absent or complete. An existing
// dst is an error, never overwritten. The copy is readable by its owner
// only (0600).
func Backup(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("back up sqlite %s: %w", src, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("back up sqlite to %s: the file exists; choose a new name", dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("back up sqlite to %s: %w", dst, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("back up sqlite to %s: %w", dst, err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	os.Remove(tmpPath) // VACUUM INTO wants to create the file itself
	defer os.Remove(tmpPath)

	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmpPath); err != nil {
		return fmt.Errorf("back up sqlite %s: vacuum into %s: %w", src, tmpPath, err)
	}
	// The copy holds what the database holds (payloads, secrets): only
	// its owner may read it, whatever the umask.
	if err := os.Chmod(tmpPath, 0o600); err != nil {
		return fmt.Errorf("back up sqlite to %s: %w", dst, err)
	}
	if err := syncFile(tmpPath); err != nil {
		return fmt.Errorf("back up sqlite to %s: %w", dst, err)
	}
	if err := os.Link(tmpPath, dst); err != nil { // fails rather than replace a dst created meanwhile
		return fmt.Errorf("back up sqlite to %s: %w", dst, err)
	}
	if err := syncFile(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("back up sqlite to %s: sync directory: %w", dst, err)
	}
	return nil
}

// syncFile fsyncs the file or directory at path.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
