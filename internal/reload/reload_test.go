package reload_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/reload"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

// TestReloadWholeOrNothing drives a Reloader over a real store and
// catalog: a refused file (invalid, or changing a start-only setting)
// changes nothing and is counted as an error; a valid one is applied and
// served at once.
func TestReloadWholeOrNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, compiler, cat := newCatalog(t)
	parse := func(yaml string) (*config.Config, error) { return parseWith(compiler, yaml) }
	running, err := parse("sources:\n  - name: a\n")
	if err != nil {
		t.Fatal(err)
	}
	next := "sources:\n  - name: a\n"
	var outcomes []string
	r := reload.New(s, cat, func() (*config.Config, error) { return parse(next) }, running, &reload.Options{
		File:     "mailroom.yaml",
		OnReload: func(outcome string, _ time.Time) { outcomes = append(outcomes, outcome) },
	})
	res, err := r.Apply(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Active.Sources["config"] != 1 || r.LastSuccess().IsZero() {
		t.Fatalf("apply: %+v, last success %v", res, r.LastSuccess())
	}
	applied := r.LastSuccess()

	for _, bad := range []struct{ name, file, want string }{
		{"invalid", "sources:\n  - name: a\n  - name: b\n    max_body_bytes: -1\n", "mailroom.yaml:4: sources[1].max_body_bytes"},
		{"start-only setting", "listen: 127.0.0.1:1\nsources:\n  - name: a\n  - name: b\n", "mailroom.yaml:1: listen: changed"},
	} {
		next = bad.file
		_, err := r.Reload(ctx)
		var refused *reload.RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: Reload = %v, want a refusal naming %q", bad.name, err, bad.want)
		}
		if _, ok := cat.Current().Sources["b"]; ok {
			t.Errorf("%s: the refused file's source b is served", bad.name)
		}
	}
	if !r.LastSuccess().Equal(applied) {
		t.Error("a refused reload moved the last-success time")
	}

	next = "sources:\n  - name: b\n"
	res, err = r.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cat.Current().Sources["b"]; !ok {
		t.Error("source b is not served right after the reload that added it")
	}
	if _, ok := cat.Current().Sources["a"]; ok {
		t.Error("source a is still served after the reload that removed it")
	}
	if len(res.Removed.Sources) != 1 || res.Removed.Sources[0] != "a" {
		t.Errorf("removed = %+v, want source a", res.Removed)
	}
	if got, want := strings.Join(outcomes, ","), "error,error,success"; got != want {
		t.Errorf("outcomes = %s, want %s", got, want)
	}

	// Without a file there is nothing to reload.
	_, err = reload.New(s, cat, nil, running, nil).Reload(ctx)
	if !errors.Is(err, reload.ErrNoFile) {
		t.Errorf("reload without a file: %v, want ErrNoFile", err)
	}
}

// TestReloadRefusesSharedIngestPath: the file may not declare a
// default-project source named like a project that holds sources created
// through the API (/e/a/s would be both project a's source s and the
// default source a with the path /s), nor a project's sources while the
// API's default-project source has the project's name: the API refuses
// both, and the file did not (the reload answered 200, and /e/a/s went to
// project a's source).
func TestReloadRefusesSharedIngestPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, compiler, cat := newCatalog(t)
	parse := func(yaml string) (*config.Config, error) { return parseWith(compiler, yaml) }
	running, err := parse("sources:\n  - name: x\n")
	if err != nil {
		t.Fatal(err)
	}
	next := ""
	r := reload.New(s, cat, func() (*config.Config, error) { return parse(next) }, running, &reload.Options{File: "mailroom.yaml"})
	if _, err := r.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	for _, src := range []*store.Source{{Name: "a/s", Project: "a"}, {Name: "b"}} {
		src.ManagedBy = store.ManagedByAPI
		if err := s.SourceUpsert(ctx, src); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []struct{ name, file, want string }{
		{"default source named like an API project", "sources:\n  - name: x\n  - name: a\n", `"a" is the name of a project: /e/a/{source} would be both the default project's source "a"`},
	} {
		next = bad.file
		_, err := r.Reload(ctx)
		var refused *reload.RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: Reload = %v, want a refusal naming %q", bad.name, err, bad.want)
		}
		for _, name := range []string{"a", "b/s"} {
			if _, ok := cat.Current().Sources[name]; ok {
				t.Errorf("%s: source %s is served", bad.name, name)
			}
		}
	}
	// Without the overlap the file applies.
	next = "sources:\n  - name: x\n  - name: c\n"
	if _, err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	// projects: is read at start: a file declaring project b, with a
	// source in it, is refused at start while the API's source b exists.
	withB, err := parse("projects:\n  - name: b\nsources:\n  - name: s\n    project: b\n")
	if err != nil {
		t.Fatal(err)
	}
	r2 := reload.New(s, cat, func() (*config.Config, error) { return withB, nil }, withB, &reload.Options{File: "mailroom.yaml"})
	if _, err := r2.Apply(ctx); err == nil || !strings.Contains(err.Error(), `"b" is the name of a project: /e/b/{source} would be both the default project's source "b"`) {
		t.Errorf("start with project b while the API's default source b exists: %v", err)
	}
	if _, ok := cat.Current().Sources["b/s"]; ok {
		t.Error("source b/s is served")
	}
}

// newCatalog opens a fresh store with a catalog over it that reloads only
// when told.
func newCatalog(t *testing.T) (store.Store, *route.Compiler, *catalog.Catalog) {
	t.Helper()
	s := sqlitetest.Open(t, nil)
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	return s, compiler, catalog.New(s, compiler, &catalog.Options{Refresh: time.Hour})
}

// parseWith parses a mailroom.yaml whose expressions compiler checks.
func parseWith(compiler *route.Compiler, yaml string) (*config.Config, error) {
	return config.Parse([]byte(yaml), "mailroom.yaml", &config.Options{CheckExpr: compiler.Check})
}
