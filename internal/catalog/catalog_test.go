package catalog_test

import (
	"context"
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
