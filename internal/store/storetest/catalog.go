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
