package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// testRetryRules: a connection's retry rules are stored by an upsert and
// by a config sync (a sync that changes only the rules writes them), and
// the retry policy an attempt was decided by is kept on its delivery,
// claimed, listed and read back alike.
func testRetryRules(t *testing.T, newStore NewStore) {
	t.Run("ConnectionRoundTrip", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		rules := []store.RetryRule{
			{Types: []string{"payment_intent.*", "charge.*"}, MaxAge: store.Duration(72 * time.Hour)},
			{Types: []string{"ping"}, MaxAttempts: 1},
			{Types: []string{"*"}, MaxAttempts: 20, Schedule: []store.Duration{store.Duration(time.Minute), store.Duration(5 * time.Minute)},
				Max: store.Duration(2 * time.Hour)},
		}
		p := &store.CatalogSyncParams{
			Sources:      []*store.Source{{Name: "stripe", Verify: verify.Config{Type: "stripe", Secret: "whsec_x"}}},
			Destinations: []*store.Destination{{Name: "billing", URL: "http://127.0.0.1:9/b"}, {Name: "crm", URL: "http://127.0.0.1:9/c"}},
			Connections:  []*store.Connection{{Source: "stripe", Destination: "billing", Retry: rules}},
		}
		if _, err := s.CatalogSync(ctx, p); err != nil {
			t.Fatal(err)
		}
		if c, err := s.ConnectionGet(ctx, "stripe->billing"); err != nil || !reflect.DeepEqual(c.Retry, rules) {
			t.Fatalf("synced connection = %+v, %v; want its retry rules stored", c, err)
		}
		p.Connections[0].Retry = rules[1:2]
		res, err := s.CatalogSync(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Written.Connections; len(got) != 1 || got[0] != "stripe->billing" {
			t.Errorf("sync of changed rules wrote connections %v, want [stripe->billing]", got)
		}
		if res, err := s.CatalogSync(ctx, p); err != nil || len(res.Written.Connections) != 0 {
			t.Errorf("sync of the same rules wrote %v (%v), want nothing", res.Written.Connections, err)
		}
		if c, _ := s.ConnectionGet(ctx, "stripe->billing"); !reflect.DeepEqual(c.Retry, rules[1:2]) {
			t.Errorf("rules after sync = %+v, want %+v", c.Retry, rules[1:2])
		}
		if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "crm", Retry: rules}); err != nil {
			t.Fatal(err)
		}
		if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "crm"}); err != nil {
			t.Fatal(err)
		}
		cs, err := s.ConnectionList(ctx)
		if err != nil || len(cs) != 2 || cs[1].Retry != nil || !reflect.DeepEqual(cs[0].Retry, rules[1:2]) {
			t.Fatalf("connections = %+v, %v; want crm's rules removed, billing's kept", cs, err)
		}
	})
	t.Run("AppliedOnDelivery", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		res := Ingest(ctx, t, s, "s", "1", "d")
		now := time.Now()
		d := claim(ctx, t, s, "d", now, 1, false)[0]
		if d.Retry != nil {
			t.Fatalf("a delivery never attempted shows retry %+v", d.Retry)
		}
		applied := &store.RetryApplied{Policy: "connection s->d retry[0]", EventType: "payment_intent.succeeded",
			Types: []string{"payment_intent.*"}, MaxAge: store.Duration(72 * time.Hour), Decision: "retry"}
		a := &store.Attempt{DeliveryID: d.ID, EventID: d.EventID, Destination: "d", Number: d.Attempts, StartedAt: now, StatusCode: 503}
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: a, Status: store.DeliveryPending, NextAttemptAt: now,
			Retry: applied, Now: now}); err != nil {
			t.Fatal(err)
		}
		got, err := s.DeliveryGetByID(ctx, res.DeliveryIDs[0])
		if err != nil || !reflect.DeepEqual(got.Retry, applied) {
			t.Fatalf("delivery retry = %+v (%v), want %+v", got.Retry, err, applied)
		}
		again := claim(ctx, t, s, "d", now.Add(time.Second), 1, false)
		if len(again) != 1 || !reflect.DeepEqual(again[0].Retry, applied) {
			t.Fatalf("claimed delivery = %+v, want its retry", again)
		}
		dead := &store.RetryApplied{Policy: "destination d", MaxAttempts: 2, Decision: "dead", Reason: "2 of 2 attempts made"}
		a = &store.Attempt{DeliveryID: d.ID, EventID: d.EventID, Destination: "d", Number: again[0].Attempts, StartedAt: now, StatusCode: 503}
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: a, Status: store.DeliveryDead, Retry: dead, Now: now}); err != nil {
			t.Fatal(err)
		}
		list, err := s.DeliveryList(ctx, &store.DeliveryListParams{Destination: "d", Status: store.DeliveryDead, Limit: 10})
		if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0].Retry, dead) {
			t.Fatalf("listed = %+v (%v), want the dead delivery with %+v", list, err, dead)
		}
	})
}
