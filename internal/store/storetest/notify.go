package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

func testSubscribe(t *testing.T, newStore NewStore) {
	t.Run("DeliveryDueAfterCommit", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := newStore(t)
		ch := s.Subscribe(ctx)
		Ingest(ctx, t, s, "s", "1", "d")
		deadline := time.After(10 * time.Second)
		for {
			select {
			case n := <-ch:
				if n.Kind == store.NotifyDeliveryDue && n.Destination == "d" {
					return
				}
			case <-deadline:
				t.Fatal("no delivery.due notification")
			}
		}
	})
	t.Run("ReadyAndClose", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		if err := s.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// Within the cache interval too: a closed store is never ready.
		if err := s.Ready(ctx); !errors.Is(err, store.ErrClosed) {
			t.Errorf("ready after close: %v", err)
		}
		_, err := s.RequestIngest(ctx, &store.RequestIngestParams{Request: &store.Request{Source: "s"}, Event: &store.Event{}})
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("ingest after close: %v", err)
		}
	})
}
