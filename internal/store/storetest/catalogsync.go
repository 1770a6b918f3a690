package storetest

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// testCatalogSync holds [store.Store.CatalogSync] to its promise: the
// config-owned entries become exactly the file's, API-owned ones stay, a
// removed destination's pending deliveries die with a reason, and a sync
// that fails changes nothing.
func testCatalogSync(t *testing.T, newStore NewStore) {
	file := func() *store.CatalogSyncParams {
		return &store.CatalogSyncParams{
			Sources:       []*store.Source{{Name: "stripe", Verify: verify.Config{Type: "stripe", Secret: "whsec_x"}}},
			Destinations:  []*store.Destination{{Name: "billing", URL: "http://127.0.0.1:9/b"}},
			Connections:   []*store.Connection{{Source: "stripe", Destination: "billing"}},
			RemovedReason: "removed from the config file",
		}
	}

	t.Run("OwnsDeclaredKeepsAPI", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		if err := s.SourceUpsert(ctx, &store.Source{Name: "manual"}); err != nil {
			t.Fatal(err)
		}
		res, err := s.CatalogSync(ctx, file())
		if err != nil {
			t.Fatal(err)
		}
		want := store.CatalogNames{Sources: []string{"stripe"}, Destinations: []string{"billing"}, Connections: []string{"stripe->billing"}}
		if !reflect.DeepEqual(res.Written, want) {
			t.Errorf("written = %+v, want %+v", res.Written, want)
		}
		owners := func() map[string]string {
			m := map[string]string{}
			srcs, err := s.SourceList(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range srcs {
				m["source "+x.Name] = x.ManagedBy
			}
			ds, err := s.DestinationList(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range ds {
				m["destination "+x.Name] = x.ManagedBy
			}
			cs, err := s.ConnectionList(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range cs {
				m["connection "+x.ID] = x.ManagedBy
			}
			return m
		}
		wantOwners := map[string]string{"source manual": "api", "source stripe": "config", "destination billing": "config", "connection stripe->billing": "config"}
		if got := owners(); !maps.Equal(got, wantOwners) {
			t.Errorf("owners = %v, want %v", got, wantOwners)
		}

		// The same file again writes nothing and keeps the times.
		before, err := s.SourceGet(ctx, "stripe")
		if err != nil {
			t.Fatal(err)
		}
		res, err = s.CatalogSync(ctx, file())
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed() {
			t.Errorf("second sync of the same file changed %+v", res)
		}
		after, err := s.SourceGet(ctx, "stripe")
		if err != nil {
			t.Fatal(err)
		}
		if !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Errorf("updated_at moved from %v to %v on an unchanged sync", before.UpdatedAt, after.UpdatedAt)
		}

		// An empty file removes what it owned and nothing else.
		res, err = s.CatalogSync(ctx, &store.CatalogSyncParams{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res.Removed, want) {
			t.Errorf("removed = %+v, want %+v", res.Removed, want)
		}
		if got, want := owners(), map[string]string{"source manual": "api"}; !maps.Equal(got, want) {
			t.Errorf("owners after removal = %v, want %v", got, want)
		}
	})

	t.Run("AdoptsAPIEntryOfSameName", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		if err := s.DestinationUpsert(ctx, &store.Destination{Name: "billing", URL: "http://127.0.0.1:9/old"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DestinationSetPaused(ctx, "billing", true, "by hand"); err != nil {
			t.Fatal(err)
		}
		res, err := s.CatalogSync(ctx, file())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Adopted.Destinations, []string{"billing"}) {
			t.Errorf("adopted = %+v, want destination billing", res.Adopted)
		}
		d, err := s.DestinationGet(ctx, "billing")
		if err != nil {
			t.Fatal(err)
		}
		if d.ManagedBy != store.ManagedByConfig || d.URL != "http://127.0.0.1:9/b" || !d.Paused || d.PauseReason != "by hand" {
			t.Errorf("destination = %+v, want config-owned, the file's URL, still paused", d)
		}
	})

	t.Run("RemovedDestinationDeliveriesDie", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		if _, err := s.CatalogSync(ctx, file()); err != nil {
			t.Fatal(err)
		}
		// An API connection to the file's destination goes with it.
		if err := s.SourceUpsert(ctx, &store.Source{Name: "manual"}); err != nil {
			t.Fatal(err)
		}
		if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "manual", Destination: "billing"}); err != nil {
			t.Fatal(err)
		}
		Ingest(ctx, t, s, "stripe", "k1", "billing")
		Ingest(ctx, t, s, "stripe", "k2", "billing")
		p := file()
		p.Destinations, p.Connections = nil, nil
		res, err := s.CatalogSync(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if res.DeadDeliveries != 2 {
			t.Errorf("dead deliveries = %d, want 2", res.DeadDeliveries)
		}
		if want := []string{"manual->billing", "stripe->billing"}; !slices.Equal(res.Removed.Connections, want) {
			t.Errorf("removed connections = %v, want %v", res.Removed.Connections, want)
		}
		ds, err := s.DeliveryList(ctx, &store.DeliveryListParams{Destination: "billing"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 2 {
			t.Fatalf("deliveries = %d, want 2 kept for the record", len(ds))
		}
		for _, d := range ds {
			if d.Status != store.DeliveryDead || d.LastError != "removed from the config file" {
				t.Errorf("delivery %s: status %s, last error %q; want dead with the reason", d.ID, d.Status, d.LastError)
			}
		}
		if _, err := s.DestinationGet(ctx, "billing"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get removed destination: %v, want not found", err)
		}
	})

	t.Run("FailureChangesNothing", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		if _, err := s.CatalogSync(ctx, file()); err != nil {
			t.Fatal(err)
		}
		p := file()
		p.Sources = append(p.Sources, &store.Source{Name: "github"})
		p.Connections = append(p.Connections, &store.Connection{Source: "github", Destination: "nowhere"})
		if _, err := s.CatalogSync(ctx, p); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("sync with a connection to a missing destination: %v, want ErrNotFound", err)
		}
		if _, err := s.SourceGet(ctx, "github"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the failed sync left source github behind: %v", err)
		}
	})
}
