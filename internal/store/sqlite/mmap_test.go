package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// TestConnectionsReadThroughMemoryMap checks that the writer and every
// connection of the read pool have mmap_size set to [MmapSize] (or to
// SQLite's compile-time cap, if lower, which is still non-zero): with a
// million pending deliveries, reads through the page cache instead cost
// the writer a pread per page (docs/benchmarks.md, "Backlog").
func TestConnectionsReadThroughMemoryMap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "mailroom.db"), &Options{ReadConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(who string, got int64) {
		t.Helper()
		if got <= 0 || got > MmapSize {
			t.Errorf("%s: mmap_size = %d, want > 0 and <= %d", who, got, int64(MmapSize))
		}
	}
	var w int64
	if err := s.write(ctx, func(w2 *writer) error {
		return w2.QueryRow(w2.ctx, `PRAGMA mmap_size`).Scan(&w)
	}); err != nil {
		t.Fatal(err)
	}
	check("writer", w)
	// Hold every read connection at once, so that each is asked.
	conns := make([]interface{ Close() error }, 0, 3)
	for i := range 3 {
		c, err := s.rdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var r int64
		if err := c.QueryRowContext(ctx, `PRAGMA mmap_size`).Scan(&r); err != nil {
			t.Fatal(err)
		}
		check("read connection "+string(rune('1'+i)), r)
	}
	for _, c := range conns {
		c.Close()
	}
}
