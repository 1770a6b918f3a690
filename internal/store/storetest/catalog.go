package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

func testCatalog(t *testing.T, newStore NewStore) {
	t.Run("UpsertGetListDelete", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		src := &store.Source{Name: "stripe", Verify: verify.Config{Type: "stripe", Secret: "whsec_x", Tolerance: store.Duration(time.Minute)},
			Dedup: store.DedupConfig{Window: store.Duration(time.Hour)}}
		if err := s.SourceUpsert(ctx, src); err != nil {
			t.Fatal(err)
		}
		got, err := s.SourceGet(ctx, "stripe")
		if err != nil {
			t.Fatal(err)
		}
		if got.Verify.Secret != "whsec_x" || got.Verify.Tolerance.D() != time.Minute || got.Dedup.Window.D() != time.Hour || got.CreatedAt.IsZero() {
			t.Errorf("source = %+v", got)
		}
		dst := &store.Destination{Name: "billing", URL: "http://127.0.0.1:9/x", MaxConcurrency: 3, Retry: store.RetryPolicy{MaxAttempts: 4}}
		if err := s.DestinationUpsert(ctx, dst); err != nil {
			t.Fatal(err)
		}
		if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "billing", Filter: "true"}); err != nil {
			t.Fatal(err)
		}
		if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "nope", Destination: "billing"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("connection to unknown source: %v", err)
		}
		cs, err := s.ConnectionList(ctx)
		if err != nil || len(cs) != 1 || cs[0].ID != "stripe->billing" || cs[0].Filter != "true" {
			t.Fatalf("connections = %+v, %v", cs, err)
		}
		if err := s.DestinationSetPaused(ctx, "billing", true, "410 Gone"); err != nil {
			t.Fatal(err)
		}
		// An upsert (a config reload) keeps the paused state.
		if err := s.DestinationUpsert(ctx, dst); err != nil {
			t.Fatal(err)
		}
		d, err := s.DestinationGet(ctx, "billing")
		if err != nil {
			t.Fatal(err)
		}
		if !d.Paused || d.PauseReason != "410 Gone" || d.MaxConcurrency != 3 || d.Retry.MaxAttempts != 4 {
			t.Errorf("destination = %+v", d)
		}
		if err := s.DestinationSetPaused(ctx, "billing", false, ""); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.DestinationGet(ctx, "billing"); d.Paused {
			t.Error("still paused after resume")
		}
		if err := s.DestinationSetPaused(ctx, "nope", true, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("pause unknown: %v", err)
		}
		if err := s.SourceDelete(ctx, "stripe"); err != nil {
			t.Fatal(err)
		}
		if cs, _ := s.ConnectionList(ctx); len(cs) != 0 {
			t.Errorf("connections survive their source: %+v", cs)
		}
		if _, err := s.SourceGet(ctx, "stripe"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get deleted: %v", err)
		}
		if err := s.SourceDelete(ctx, "stripe"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete twice: %v", err)
		}
		ds, err := s.DestinationList(ctx)
		if err != nil || len(ds) != 1 {
			t.Errorf("destinations = %v, %v", ds, err)
		}
	})
}

// testConnectionTransform: a connection's transformation is stored by
// an upsert and by a config sync, and a sync that changes only the script
// writes it.
func testConnectionTransform(t *testing.T, newStore NewStore) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		const script = "function handler(request) {\n  request.body = {n: 1}\n  return request\n}\n"
		p := &store.CatalogSyncParams{
			Sources:      []*store.Source{{Name: "stripe", Verify: verify.Config{Type: "stripe", Secret: "whsec_x"}}},
			Destinations: []*store.Destination{{Name: "billing", URL: "http://127.0.0.1:9/b"}, {Name: "crm", URL: "http://127.0.0.1:9/c"}},
			Connections:  []*store.Connection{{Source: "stripe", Destination: "billing", Transform: script}},
		}
		if _, err := s.CatalogSync(ctx, p); err != nil {
			t.Fatal(err)
		}
		if c, err := s.ConnectionGet(ctx, "stripe->billing"); err != nil || c.Transform != script {
			t.Fatalf("synced connection = %+v, %v; want its transform stored", c, err)
		}
		p.Connections[0].Transform = "function handler(r) { return r }"
		res, err := s.CatalogSync(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Written.Connections; len(got) != 1 || got[0] != "stripe->billing" {
			t.Errorf("sync of a changed script wrote connections %v, want [stripe->billing]", got)
		}
		if c, _ := s.ConnectionGet(ctx, "stripe->billing"); c.Transform != p.Connections[0].Transform {
			t.Errorf("transform after sync = %q, want %q", c.Transform, p.Connections[0].Transform)
		}
		if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "crm", Transform: script}); err != nil {
			t.Fatal(err)
		}
		if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "crm", Transform: script + "// v2\n"}); err != nil {
			t.Fatal(err)
		}
		cs, err := s.ConnectionList(ctx)
		if err != nil || len(cs) != 2 || cs[1].Transform != script+"// v2\n" {
			t.Fatalf("connections = %+v, %v; want the replaced transform", cs, err)
		}
	})
}

func testDestinationSetCircuit(t *testing.T, newStore NewStore) {
	t.Run("CompareAndSet", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		if err := s.DestinationUpsert(ctx, &store.Destination{Name: "d", URL: "http://127.0.0.1:9/x",
			CircuitBreaker: store.CircuitBreaker{Failures: 3}}); err != nil {
			t.Fatal(err)
		}
		notes := s.Subscribe(ctx)
		now := time.Now()
		open := store.CircuitState{State: store.CircuitOpen, Since: now, ProbeAt: now.Add(time.Minute), Opens: 1, Reason: "3 failures in a row"}
		// Two instances race to open it: one wins.
		moved, err := s.DestinationSetCircuit(ctx, "d", store.CircuitState{}, open)
		if err != nil || !moved {
			t.Fatalf("open = %v, %v", moved, err)
		}
		if moved, err := s.DestinationSetCircuit(ctx, "d", store.CircuitState{}, open); err != nil || moved {
			t.Fatalf("second open = %v, %v; want not moved", moved, err)
		}
		got, err := s.DestinationGet(ctx, "d")
		if err != nil {
			t.Fatal(err)
		}
		if got.Circuit.State != store.CircuitOpen || !got.Circuit.ProbeAt.Equal(open.ProbeAt.Truncate(time.Microsecond)) || got.Circuit.Opens != 1 ||
			got.CircuitBreaker.Failures != 3 {
			t.Fatalf("destination after open = %+v", got)
		}
		// The state read back is the compare value of the next move.
		half := store.CircuitState{State: store.CircuitHalfOpen, Since: now, ProbeAt: now.Add(2 * time.Minute), Opens: 1}
		if moved, err := s.DestinationSetCircuit(ctx, "d", got.Circuit, half); err != nil || !moved {
			t.Fatalf("half-open from the state read = %v, %v", moved, err)
		}
		if moved, err := s.DestinationSetCircuit(ctx, "d", half, store.CircuitState{}); err != nil || !moved {
			t.Fatalf("close = %v, %v", moved, err)
		}
		// Closing announces the destination's deliveries as due.
		deadline := time.After(10 * time.Second)
		for due := false; !due; {
			select {
			case n := <-notes:
				due = n.Kind == store.NotifyDeliveryDue && n.Destination == "d"
			case <-deadline:
				t.Fatal("no delivery.due notification after closing the circuit")
			}
		}
		// An upsert of the spec keeps the runtime state out of it.
		got, _ = s.DestinationGet(ctx, "d")
		if got.Circuit != (store.CircuitState{}) {
			t.Errorf("closed circuit read back as %+v", got.Circuit)
		}
		if _, err := s.DestinationSetCircuit(ctx, "missing", store.CircuitState{}, open); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing destination: %v", err)
		}
	})
}
