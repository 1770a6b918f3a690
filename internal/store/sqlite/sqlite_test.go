package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/store/storetest"
)

var _ store.Store = (*sqlite.Store)(nil)

func newStore(t testing.TB) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "mailroom.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, newStore)
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailroom.db")
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := storetest.Ingest(ctx, t, s, "s", "k", "d")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.EventGetByID(ctx, res.EventID); err != nil {
		t.Fatalf("event lost across reopen: %v", err)
	}
	dup := storetest.Ingest(ctx, t, s, "s", "k", "d")
	if !dup.Duplicate {
		t.Error("dedup key lost across reopen")
	}
}
