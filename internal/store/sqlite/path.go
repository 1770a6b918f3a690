package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoDirectory is returned by [Open] when the database file's parent
// directory does not exist and [Options.CreateDirs] is false.
var ErrNoDirectory = errors.New("directory does not exist")

// checkPath makes sure the database file can be opened for writing
// before SQLite tries, so that a failure is told in the operating system's
// words: the parent directory must exist (or is created with createDirs)
// and the file must open read-write (it is created empty when missing,
// which SQLite takes as a new database).
func checkPath(path string, createDirs bool) error {
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !createDirs {
			return fmt.Errorf("%w: %s", ErrNoDirectory, dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create directory %s: %w", dir, osReason(err))
		}
	case err != nil:
		return fmt.Errorf("directory %s: %w", dir, osReason(err))
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open file for writing: %w", osReason(err))
	}
	return f.Close()
}

// diagnose explains why SQLite could not open path when the file itself
// opened: WAL mode creates path-wal and path-shm beside it, so the
// directory must take new files. It returns nil when it finds nothing to
// say.
func diagnose(path string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".mailroom-check-*")
	if err != nil {
		return fmt.Errorf("cannot create files in directory %s (SQLite needs to, for its write-ahead log): %w", dir, osReason(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// osReason returns the operating system's reason ("permission denied",
// "read-only file system") without the path and operation that
// [os.PathError] repeats.
func osReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
