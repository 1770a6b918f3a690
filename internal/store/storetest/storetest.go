// Package storetest is the conformance suite that every [store.Store]
// driver must pass. Drivers call [Run] from their tests with a constructor
// that returns a fresh, empty store for each subtest.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// NewStore returns a fresh, empty store; the constructor registers its own
// cleanup with t.
type NewStore func(t testing.TB) store.Store

// Run runs the whole suite against the driver that newStore builds.
func Run(t *testing.T, newStore NewStore) {
	t.Run("RequestIngest", func(t *testing.T) { testRequestIngest(t, newStore) })
	t.Run("Lists", func(t *testing.T) { testLists(t, newStore) })
	t.Run("Search", func(t *testing.T) { testSearch(t, newStore) })
	t.Run("DeliveryClaimDue", func(t *testing.T) { testDeliveryClaimDue(t, newStore) })
	t.Run("DeliveryExtendLeases", func(t *testing.T) { testDeliveryExtendLeases(t, newStore) })
	t.Run("DeliveryReleaseLeases", func(t *testing.T) { testDeliveryReleaseLeases(t, newStore) })
	t.Run("AttemptRecord", func(t *testing.T) { testAttemptRecord(t, newStore) })
	t.Run("DeliveryInsertFinished", func(t *testing.T) { testDeliveryInsertFinished(t, newStore) })
	t.Run("DeliveryRetry", func(t *testing.T) { testDeliveryRetry(t, newStore) })
	t.Run("Catalog", func(t *testing.T) { testCatalog(t, newStore) })
	t.Run("ConnectionTransform", func(t *testing.T) { testConnectionTransform(t, newStore) })
	t.Run("RetryRules", func(t *testing.T) { testRetryRules(t, newStore) })
	t.Run("DestinationSetCircuit", func(t *testing.T) { testDestinationSetCircuit(t, newStore) })
	t.Run("CatalogSync", func(t *testing.T) { testCatalogSync(t, newStore) })
	t.Run("Subscribe", func(t *testing.T) { testSubscribe(t, newStore) })
	t.Run("Tasks", func(t *testing.T) { testTasks(t, newStore) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, newStore) })
	t.Run("LateStamps", func(t *testing.T) { testLateStamps(t, newStore) })
	t.Run("Projects", func(t *testing.T) { testProjects(t, newStore) })
	t.Run("Tokens", func(t *testing.T) { testTokens(t, newStore) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, newStore) })
}

// Ingest is a test helper that ingests one request for source with the
// given dedup key and one delivery per destination, failing t on error.
func Ingest(ctx context.Context, t testing.TB, s store.Store, source, key string, dests ...string) *store.RequestIngestResult {
	t.Helper()
	p := &store.RequestIngestParams{
		Request: &store.Request{
			Source: source, ReceivedAt: time.Now(), Method: "POST", Path: "/e/" + source,
			Headers: map[string][]string{"Content-Type": {"application/json"}},
			Body:    []byte(fmt.Sprintf(`{"id":%q}`, key)),
		},
		Event: &store.Event{Type: "test.event", DedupKey: key},
	}
	for _, d := range dests {
		p.Deliveries = append(p.Deliveries, &store.Delivery{Destination: d, ConnectionID: store.ConnectionID(source, d)})
	}
	res, err := s.RequestIngest(ctx, p)
	if err != nil {
		t.Fatalf("RequestIngest: %v", err)
	}
	return res
}
