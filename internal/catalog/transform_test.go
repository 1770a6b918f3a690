package catalog_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// TestLoadCompilesTransforms: a connection's transformation is compiled
// at load and reused by later loads while its script is unchanged; one
// that does not compile keeps its connection routed and answers with the
// error, so that its deliveries fail visibly instead of going out
// untransformed.
func TestLoadCompilesTransforms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cat := setup(t)
	if err := s.SourceUpsert(ctx, &store.Source{Name: "stripe", Verify: verify.Config{Type: "stripe", Secret: "whsec_x"}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "b", "c"} {
		if err := s.DestinationUpsert(ctx, &store.Destination{Name: d, URL: "http://127.0.0.1:9/" + d}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*store.Connection{
		{Source: "stripe", Destination: "a", Transform: "function handler(r) { return r }"},
		{Source: "stripe", Destination: "b", Transform: "function handle(r) { return r }"},
		{Source: "stripe", Destination: "c"},
	} {
		if err := s.ConnectionUpsert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	snap := cat.Current()
	pa, err := snap.Transform("stripe->a")
	if pa == nil || err != nil {
		t.Fatalf("Transform(stripe->a) = %v, %v; want a program", pa, err)
	}
	if p, err := snap.Transform("stripe->b"); p != nil || err == nil || !strings.Contains(err.Error(), "connection stripe->b: transform: the script defines no function handler") {
		t.Errorf("Transform(stripe->b) = %v, %v; want the compile error", p, err)
	}
	if len(snap.Connections) != 3 {
		t.Errorf("connections served = %d, want 3 (a broken transform keeps its connection routed)", len(snap.Connections))
	}
	if p, err := snap.Transform("stripe->c"); p != nil || err != nil {
		t.Errorf("Transform(stripe->c) = %v, %v; want none", p, err)
	}
	if err := cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := cat.Current().Transform("stripe->a"); p != pa {
		t.Error("an unchanged script was compiled again on reload")
	}
	if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "a", Transform: "function handler(r) { r.body = 1; return r }"}); err != nil {
		t.Fatal(err)
	}
	if err := cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := cat.Current().Transform("stripe->a"); p == pa || p == nil {
		t.Error("a changed script kept its old program")
	}
}
