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
