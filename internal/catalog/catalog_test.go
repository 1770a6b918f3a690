package catalog_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/verify"
)

func setup(t *testing.T) (*sqlite.Store, *catalog.Catalog) {
	t.Helper()
	s := sqlitetest.Open(t, nil)
	c, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	return s, catalog.New(s, c, &catalog.Options{Refresh: time.Hour})
}

func TestLoadCompilesAndSkipsBroken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cat := setup(t)
	for _, src := range []*store.Source{
		{Name: "stripe", Verify: verify.Config{Type: "stripe", Secret: "whsec_x"}},
		{Name: "broken", Dedup: store.DedupConfig{Key: "body.("}},
		{Name: "nodedup", Verify: verify.Config{Type: "github", Secret: "x"}, Dedup: store.DedupConfig{Disabled: true}},
	} {
		if err := s.SourceUpsert(ctx, src); err != nil {
			t.Fatal(err)
		}
	}
	err := cat.Load(ctx)
	if err == nil || !strings.Contains(err.Error(), "source broken: dedup.key") {
		t.Fatalf("Load error = %v, want it to name source broken's dedup.key", err)
	}
	snap := cat.Current()
	if _, ok := snap.Sources["broken"]; ok {
		t.Error("broken source served")
	}
	st := snap.Sources["stripe"]
	if st == nil || st.DedupKey == nil || st.DedupKey.String() != "body.id" || st.DedupWindow != store.DefaultDedupWindow || st.MaxBodyBytes != store.DefaultMaxBodyBytes {
		t.Errorf("stripe source = %+v", st)
	}
	if snap.Sources["nodedup"].DedupKey != nil {
		t.Error("disabled dedup still has a key")
	}
}

func TestRunReloadsOnChange(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, cat := setup(t)
	done := make(chan error, 1)
	go func() { done <- cat.Run(ctx) }()
	// Run subscribes asynchronously: keep writing until the reload shows.
	deadline := time.Now().Add(10 * time.Second)
	for cat.Current().Sources["late"] == nil {
		if time.Now().After(deadline) {
			t.Fatal("catalog did not reload after a source was added")
		}
		if err := s.SourceUpsert(ctx, &store.Source{Name: "late"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil on a clean stop", err)
	}
}

// TestSnapshotDeliveries checks the one fan-out rule: a delivery per
// matching connection whose destination exists, in connection order.
func TestSnapshotDeliveries(t *testing.T) {
	t.Parallel()
	c, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	r, err := route.NewRouter(c, []*store.Connection{
		{ID: "a", Source: "stripe", Destination: "billing", Filter: `body.type == "paid"`},
		{ID: "b", Source: "stripe", Destination: "audit"},
		{ID: "c", Source: "stripe", Destination: "gone"},
		{ID: "d", Source: "github", Destination: "audit"},
	})
	if err != nil {
		t.Fatal(err)
	}
	snap := &catalog.Snapshot{Router: r, Destinations: map[string]*store.Destination{"billing": {Name: "billing"}, "audit": {Name: "audit"}}}
	input := func(body string) *route.Input {
		return route.NewInput("stripe", "", nil, http.Header{"Content-Type": {"application/json"}}, []byte(body))
	}
	got := func(ds []*store.Delivery) string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ConnectionID+":"+d.Destination)
		}
		return strings.Join(out, ",")
	}
	if g := got(snap.Deliveries(input(`{"type":"paid"}`))); g != "a:billing,b:audit" {
		t.Errorf("paid: %s, want a:billing,b:audit", g)
	}
	if g := got(snap.Deliveries(input(`{"type":"other"}`))); g != "b:audit" {
		t.Errorf("other: %s, want b:audit", g)
	}
	if ds := snap.Deliveries(route.NewInput("nobody", "", nil, nil, nil)); ds != nil {
		t.Errorf("unconnected source: %v, want nil", ds)
	}
}
