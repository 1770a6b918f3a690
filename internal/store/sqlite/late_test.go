package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
)

// TestMigrationMarksLateRows: migration 0017 marks the rows already in a
// database whose id is stamped more than 1 s after their receipt, by
// decoding the ids in SQL, the same way the ingest path marks new rows;
// Prune on the migrated database is then exact. The database is taken
// back to version 16 (no late column, received_at indexed) after rows
// were written, and reopened.
func TestMigrationMarksLateRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailroom.db")
	s, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	// Received at b+at, in this order: the ids of the last three are
	// stamped b+1h, their receipt 2 h, 500 ms and 1 h 1 s earlier.
	ats := []time.Duration{-time.Hour, time.Hour, -time.Hour, time.Hour - 500*time.Millisecond, -time.Second}
	var ids []string
	for _, at := range ats {
		res, err := s.RequestIngest(ctx, &store.RequestIngestParams{
			Request: &store.Request{Source: "s", ReceivedAt: b.Add(at), Method: "POST", Body: []byte("{}")},
			Event:   &store.Event{Type: "t"},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.RequestID, res.EventID)
	}
	late := func(db *sql.DB) []string {
		t.Helper()
		rows, err := db.Query(`SELECT id FROM requests WHERE late = 1 UNION ALL SELECT id FROM events WHERE late = 1 ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			out = append(out, id)
		}
		return out
	}
	want := []string{ids[4], ids[8], ids[5], ids[9]} // rows 2 and 4, request and event
	slices.Sort(want)
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := late(db); !slices.Equal(got, want) {
		t.Fatalf("marked late on ingest: %v, want %v", got, want)
	}
	if _, err := db.Exec(`DROP INDEX requests_late; DROP INDEX events_late;
		ALTER TABLE requests DROP COLUMN late; ALTER TABLE events DROP COLUMN late;
		CREATE INDEX requests_received ON requests (received_at); CREATE INDEX events_received ON events (received_at);
		DELETE FROM schema_migrations WHERE version = 17`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	if s, err = sqlite.Open(ctx, path, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if db, err = sql.Open("sqlite", path+"?mode=ro"); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := late(db); !slices.Equal(got, want) {
		t.Errorf("marked late by the migration: %v, want %v", got, want)
	}
	res, err := s.Prune(ctx, &store.PruneParams{Before: b})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 3 || res.Events != 3 {
		t.Errorf("pruned %d requests, %d events, want 3 and 3 (received before b)", res.Requests, res.Events)
	}
}
