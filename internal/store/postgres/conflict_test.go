package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
)

// TestDuplicateStormAcrossInstances ingests a few dedup keys many times
// at once through three stores on one schema (three instances), in
// shuffled orders so that their batches lock the keys in crossing orders.
// PostgreSQL breaks the resulting deadlocks by aborting a transaction;
// the writer must run it again rather than fail the caller. Every call
// succeeds and each key makes one event.
func TestDuplicateStormAcrossInstances(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	stores := []store.Store{open(t, dsn), open(t, dsn), open(t, dsn)}
	const keys, copies = 8, 60
	var wg sync.WaitGroup
	var failed, events atomic.Int64
	for g := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[g%len(stores)]
			for range copies * keys / 24 {
				key := fmt.Sprintf("k%d", rand.N(keys))
				res, err := s.RequestIngest(context.Background(), &store.RequestIngestParams{
					Request:    &store.Request{Source: "src", Method: http.MethodPost, Body: []byte(key)},
					Event:      &store.Event{DedupKey: key},
					Deliveries: []*store.Delivery{{Destination: "d", ConnectionID: "src->d"}},
				})
				if err != nil {
					failed.Add(1)
					t.Errorf("ingest %s: %v", key, err)
					return
				}
				if !res.Duplicate {
					events.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() == 0 && events.Load() != keys {
		t.Errorf("%d events for %d keys, want one each", events.Load(), keys)
	}
}
