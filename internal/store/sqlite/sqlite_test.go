package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

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

// TestSchemaVersions: a fresh file has every migration pending, Open
// applies them all, NoMigrate refuses a database that is behind, and a
// database migrated by a newer mailroom is refused with a clear error.
func TestSchemaVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailroom.db")
	st, err := sqlite.Status(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current() != 0 || len(st.Pending()) != len(st.Known) || st.Latest() == 0 {
		t.Fatalf("status of a missing file: current %d, %d of %d pending", st.Current(), len(st.Pending()), len(st.Known))
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Status created the database file: %v", err)
	}

	var behind *store.SchemaBehindError
	if _, err := sqlite.Open(ctx, path, &sqlite.Options{NoMigrate: true}); !errors.As(err, &behind) || behind.Binary != st.Latest() {
		t.Fatalf("Open with NoMigrate on an empty database = %v, want a SchemaBehindError to version %d", err, st.Latest())
	}
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if st, err = sqlite.Status(ctx, path); err != nil {
		t.Fatal(err)
	}
	if st.Current() != st.Latest() || len(st.Pending()) != 0 {
		t.Fatalf("after Open: current %d, latest %d, pending %v", st.Current(), st.Latest(), st.Pending())
	}
	if s, err = sqlite.Open(ctx, path, &sqlite.Options{NoMigrate: true}); err != nil {
		t.Fatalf("Open with NoMigrate on an up-to-date database: %v", err)
	}
	s.Close()

	// A newer mailroom recorded a migration this binary does not have.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	newer := st.Latest() + 1
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, newer); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var tooNew *store.SchemaTooNewError
	_, err = sqlite.Open(ctx, path, nil)
	if !errors.As(err, &tooNew) || tooNew.Database != newer || tooNew.Binary != st.Latest() {
		t.Fatalf("Open of a newer database = %v, want a SchemaTooNewError(%d > %d)", err, newer, st.Latest())
	}
	if !strings.Contains(err.Error(), "newer mailroom") {
		t.Errorf("the refusal does not say why: %v", err)
	}
}

// TestBackup copies a database another open Store keeps writing to, and
// opens the copy: it holds what was committed before, and the original
// goes on. An existing destination is refused.
func TestBackup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "mailroom.db")
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := storetest.Ingest(ctx, t, s, "s", "before", "d")
	dst := filepath.Join(dir, "backup.db")
	if err := sqlite.Backup(ctx, path, dst); err != nil {
		t.Fatal(err)
	}
	storetest.Ingest(ctx, t, s, "s", "after", "d")
	if err := sqlite.Backup(ctx, path, dst); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a second backup onto %s = %v, want a refusal", dst, err)
	}
	b, err := sqlite.Open(ctx, dst, &sqlite.Options{NoMigrate: true})
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer b.Close()
	if _, err := b.EventGetByID(ctx, before.EventID); err != nil {
		t.Errorf("the event written before the backup is not in it: %v", err)
	}
	events, err := b.EventList(ctx, &store.EventListParams{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Errorf("the backup has %d events, want the 1 written before it", len(events))
	}
}

// TestRecentRequestIsTheRow reads a request right after ingesting it with
// a delivery (from the store's copy of recent requests) and again from the
// database after a reopen: the two are the same, field by field.
func TestRecentRequestIsTheRow(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailroom.db")
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := &store.Request{Source: "s", ReceivedAt: time.Now(), Method: "POST", Path: "/x", Query: "a=1",
		Headers: http.Header{"Content-Type": {"application/json"}, "X-Many": {"1", "2"}}, RemoteAddr: "127.0.0.1:9",
		Body: []byte(`{"id":"e1"}`), BodySize: 11}
	res, err := s.RequestIngest(ctx, &store.RequestIngestParams{Request: req, Event: &store.Event{DedupKey: "e1"},
		Deliveries: []*store.Delivery{{Destination: "d"}}})
	if err != nil {
		t.Fatal(err)
	}
	req.Headers.Set("X-Many", "changed by the caller afterwards")
	fresh, err := s.RequestGetByID(ctx, res.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	fresh.Headers.Set("Content-Type", "changed by a reader")
	again, err := s.RequestGetByID(ctx, res.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored, err := s.RequestGetByID(ctx, res.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, stored) {
		t.Fatalf("right after ingest:\n%+v\nfrom the database:\n%+v", again, stored)
	}
}
