package retention_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/retention"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

func TestRunOncePrunesInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	old := time.Now().Add(-40 * 24 * time.Hour)
	var keep []string
	for i := range 25 {
		at := old
		if i%5 == 0 {
			at = time.Now()
		}
		res, err := s.RequestIngest(ctx, &store.RequestIngestParams{
			Request: &store.Request{Source: "s", ReceivedAt: at, Method: "POST", Path: "/e/s"},
			Event:   &store.Event{DedupKey: fmt.Sprint(i)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			keep = append(keep, res.EventID)
		}
	}
	c := retention.New(s, &retention.Options{Batch: 3, Pause: time.Millisecond})
	res, err := c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 20 || res.Events != 20 || !res.Done || res.Calls < 7 {
		t.Errorf("pass = %+v, want 20 requests and events over at least 7 calls", res)
	}
	for _, id := range keep {
		if _, err := s.EventGetByID(ctx, id); err != nil {
			t.Errorf("recent event %s: %v", id, err)
		}
	}
	evs, _ := s.EventList(ctx, &store.EventListParams{Limit: 100})
	if len(evs) != len(keep) {
		t.Errorf("%d events left, want %d", len(evs), len(keep))
	}
}

func TestRunStopsWithContextAndOnClose(t *testing.T) {
	t.Parallel()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "m.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c := retention.New(s, &retention.Options{Interval: time.Millisecond})
	go func() { done <- c.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
	s.Close()
	if err := retention.New(s, nil).Run(context.Background()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Run on a closed store: %v, want ErrClosed", err)
	}
}

// TestProjectRetention checks that a project with a retention of its own
// keeps its history for that long, shorter or longer than the others'.
func TestProjectRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	day := 24 * time.Hour
	ingest := func(source string, age time.Duration) string {
		t.Helper()
		res, err := s.RequestIngest(ctx, &store.RequestIngestParams{
			Request: &store.Request{Source: source, ReceivedAt: time.Now().Add(-age), Method: "POST", Path: "/e/" + source},
			Event:   &store.Event{},
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.EventID
	}
	// 10 days old: gone in the default project (retention 7 days) and in
	// short (2 days), kept in long (30 days). 3 days old: gone in short only.
	ids := map[string]string{
		"default 10d": ingest("s", 10*day), "default 3d": ingest("s", 3*day),
		"short 10d": ingest("short/s", 10*day), "short 3d": ingest("short/s", 3*day),
		"long 10d": ingest("long/s", 10*day), "long 3d": ingest("long/s", 3*day),
	}
	c := retention.New(s, &retention.Options{Retention: 7 * day, Projects: map[string]time.Duration{"short": 2 * day, "long": 30 * day}})
	if _, err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for name, kept := range map[string]bool{"default 10d": false, "default 3d": true, "short 10d": false, "short 3d": false, "long 10d": true, "long 3d": true} {
		_, err := s.EventGetByID(ctx, ids[name])
		if got := err == nil; got != kept {
			t.Errorf("%s: kept = %v, want %v (%v)", name, got, kept, err)
		}
	}
}

// TestAuditRetention: audit entries older than AuditRetention go, newer
// ones stay, and without it none go.
func TestAuditRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	for i, age := range []time.Duration{400 * 24 * time.Hour, 366 * 24 * time.Hour, 10 * 24 * time.Hour, 0} {
		if err := s.AuditInsert(ctx, &store.AuditEntry{At: time.Now().Add(-age), Actor: "a", Action: fmt.Sprint("act", i), Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := retention.New(s, &retention.Options{Batch: 1, Pause: time.Millisecond}).RunOnce(ctx); err != nil || res.Audit != 0 {
		t.Fatalf("without an audit retention: %+v, %v; want none pruned", res, err)
	}
	res, err := retention.New(s, &retention.Options{Batch: 1, Pause: time.Millisecond, AuditRetention: 365 * 24 * time.Hour}).RunOnce(ctx)
	if err != nil || res.Audit != 2 || !res.Done {
		t.Fatalf("with a year's audit retention: %+v, %v; want the 2 older entries pruned", res, err)
	}
	es, err := s.AuditList(ctx, nil)
	if err != nil || len(es) != 2 || es[0].Action != "act3" || es[1].Action != "act2" {
		t.Errorf("entries left: %+v, %v", es, err)
	}
}
