package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/postgres"
	"github.com/mailroomhq/mailroom/internal/store/postgres/pgtest"
	"github.com/mailroomhq/mailroom/internal/store/storetest"
)

var _ store.Store = (*postgres.Store)(nil)

// baseDSN returns the test server's DSN (see [pgtest.BaseDSN]).
func baseDSN(t testing.TB) string { return pgtest.BaseDSN(t) }

// newSchema returns a DSN on a fresh schema (see [pgtest.SchemaDSN]).
func newSchema(t testing.TB) string { return pgtest.SchemaDSN(t) }

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, &postgres.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) store.Store {
	t.Helper()
	return open(t, newSchema(t))
}

func TestStore(t *testing.T) {
	storetest.Run(t, newStore)
}

// TestNotificationsCrossInstances writes through one Store and waits for
// the notifications on another Store of the same schema, as two mailroom
// instances behind a load balancer would.
func TestNotificationsCrossInstances(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ch := b.Subscribe(ctx)

	res := storetest.Ingest(ctx, t, a, "github", "k1", "billing")
	task := &store.Task{ID: "task_x", Owner: "alice", Tool: "wait_for_event", TTL: time.Hour}
	if err := a.TaskCreate(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := a.SourceUpsert(ctx, &store.Source{Name: "github"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"event": false, "due": false, "task": false, "catalog": false}
	for !want["event"] || !want["due"] || !want["task"] || !want["catalog"] {
		select {
		case n := <-ch:
			switch {
			case n.Kind == store.NotifyEventCreated && n.ID == res.EventID && n.Source == "github":
				want["event"] = true
			case n.Kind == store.NotifyDeliveryDue && n.Destination == "billing":
				want["due"] = true
			case n.Kind == store.NotifyTaskChanged && n.ID == "task_x":
				want["task"] = true
			case n.Kind == store.NotifyCatalogChanged:
				want["catalog"] = true
			}
		case <-ctx.Done():
			t.Fatalf("notifications seen on the other instance: %v", want)
		}
	}
	// The task written through a is the same task through b.
	got, err := b.TaskGet(ctx, "task_x", time.Time{})
	if err != nil || got.Owner != "alice" {
		t.Fatalf("task through b: %+v %v", got, err)
	}
}

// TestMigrationsConcurrent opens several stores on one fresh schema at
// once: the advisory lock lets exactly one apply each migration.
func TestMigrationsConcurrent(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(context.Background(), dsn, nil)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenCreatesSchema opens a DSN whose search_path names a schema that
// does not exist yet.
func TestOpenCreatesSchema(t *testing.T) {
	t.Parallel()
	dsn := baseDSN(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "mailroom_test_new_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(context.Background())
		}
	})
	s := open(t, dsn+"&search_path="+schema)
	storetest.Ingest(context.Background(), t, s, "s", "k", "d")
}

// TestSchemaVersions: a fresh schema has every migration pending, Open
// applies them all, NoMigrate refuses a schema that is behind, and a schema
// migrated by a newer mailroom is refused with a clear error.
func TestSchemaVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := newSchema(t)
	st, err := postgres.Status(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current() != 0 || len(st.Pending()) != len(st.Known) || st.Latest() == 0 {
		t.Fatalf("status of an empty schema: current %d, %d of %d pending", st.Current(), len(st.Pending()), len(st.Known))
	}
	var behind *store.SchemaBehindError
	if _, err := postgres.Open(ctx, dsn, &postgres.Options{NoMigrate: true}); !errors.As(err, &behind) || behind.Binary != st.Latest() {
		t.Fatalf("Open with NoMigrate on an empty schema = %v, want a SchemaBehindError to version %d", err, st.Latest())
	}
	s, err := postgres.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if st, err = postgres.Status(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	if st.Current() != st.Latest() || len(st.Pending()) != 0 {
		t.Fatalf("after Open: current %d, latest %d, pending %v", st.Current(), st.Latest(), st.Pending())
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	newer := st.Latest() + 1
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)`, newer); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	var tooNew *store.SchemaTooNewError
	if _, err := postgres.Open(ctx, dsn, nil); !errors.As(err, &tooNew) || tooNew.Database != newer || tooNew.Binary != st.Latest() {
		t.Fatalf("Open of a newer schema = %v, want a SchemaTooNewError(%d > %d)", err, newer, st.Latest())
	}
}

// BenchmarkEventSearch: one search call over a full window (see
// [storetest.BenchmarkSearch]).
func BenchmarkEventSearch(b *testing.B) {
	storetest.BenchmarkSearch(b, newStore(b))
}
