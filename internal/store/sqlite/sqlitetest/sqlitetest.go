// Package sqlitetest opens throwaway SQLite stores for tests of packages
// that need a real store.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store/sqlite"
)

// Open returns a store on a fresh database file in tb.TempDir, closed when
// tb ends. opts may be nil.
func Open(tb testing.TB, opts *sqlite.Options) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "mailroom.db"), opts)
	if err != nil {
		tb.Fatalf("open SQLite store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
