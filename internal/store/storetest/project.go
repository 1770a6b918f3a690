package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// testProjects checks that rows carry the project of their source or
// destination, that every list's project filter keeps one project's rows,
// that names are unique per project (not across projects), and that a
// prune of one project leaves the others alone.
func testProjects(t *testing.T, newStore NewStore) {
	t.Run("RowsCarryTheirProject", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		a := Ingest(ctx, t, s, "stripe", "1", "billing")
		b := Ingest(ctx, t, s, "acme/stripe", "1", "acme/billing")
		if b.Duplicate {
			t.Fatal("the same dedup key in another project's source of the same short name was taken as a duplicate")
		}
		for _, tc := range []struct {
			res     *store.RequestIngestResult
			project string
		}{{a, store.DefaultProject}, {b, "acme"}} {
			ev, err := s.EventGetByID(ctx, tc.res.EventID)
			if err != nil || ev.Project != tc.project {
				t.Errorf("event %s: project %q, %v; want %q", tc.res.EventID, ev.Project, err, tc.project)
			}
			req, err := s.RequestGetByID(ctx, tc.res.RequestID)
			if err != nil || req.Project != tc.project {
				t.Errorf("request %s: project %q, %v; want %q", tc.res.RequestID, req.Project, err, tc.project)
			}
			d, err := s.DeliveryGetByID(ctx, tc.res.DeliveryIDs[0])
			if err != nil || d.Project != tc.project {
				t.Errorf("delivery %s: project %q, %v; want %q", tc.res.DeliveryIDs[0], d.Project, err, tc.project)
			}
		}
		// A rejected request is in the project its path's source names.
		id, err := s.RequestInsert(ctx, &store.Request{Source: "acme/nope", Method: "POST", Path: "/e/acme/nope", Status: store.RequestRejected})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := s.RequestGetByID(ctx, id); err != nil || r.Project != "acme" {
			t.Errorf("rejected request: project %q, %v; want acme", r.Project, err)
		}
		// An attempt is in its destination's project.
		ds, err := s.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Destination: "acme/billing", Now: time.Now(), LeaseUntil: time.Now().Add(time.Minute), Limit: 1})
		if err != nil || len(ds) != 1 || ds[0].Project != "acme" {
			t.Fatalf("claim: %v, %v", ds, err)
		}
		at := &store.Attempt{DeliveryID: ds[0].ID, EventID: b.EventID, Destination: "acme/billing", Number: ds[0].Attempts, StartedAt: time.Now(), StatusCode: 200, Success: true}
		if err := s.AttemptRecord(ctx, &store.AttemptRecordParams{Attempt: at, Status: store.DeliverySucceeded, Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if as, err := s.AttemptList(ctx, ds[0].ID); err != nil || len(as) != 1 || as[0].Project != "acme" {
			t.Errorf("attempts: %+v, %v", as, err)
		}
	})
	t.Run("ListsFilterByProject", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		Ingest(ctx, t, s, "stripe", "1", "billing")
		Ingest(ctx, t, s, "acme/stripe", "2", "acme/billing")
		Ingest(ctx, t, s, "acme/github", "3", "acme/billing")
		Ingest(ctx, t, s, "beta/stripe", "4", "beta/billing")
		count := func(project string) [3]int {
			evs, err := s.EventList(ctx, &store.EventListParams{Project: project})
			if err != nil {
				t.Fatal(err)
			}
			reqs, err := s.RequestList(ctx, &store.RequestListParams{Project: project})
			if err != nil {
				t.Fatal(err)
			}
			ds, err := s.DeliveryList(ctx, &store.DeliveryListParams{Project: project})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if !store.InProject(e.Source, project) {
					t.Errorf("project %q lists event of %s", project, e.Source)
				}
			}
			return [3]int{len(evs), len(reqs), len(ds)}
		}
		for project, want := range map[string][3]int{"": {4, 4, 4}, store.DefaultProject: {1, 1, 1}, "acme": {2, 2, 2}, "beta": {1, 1, 1}, "none": {}} {
			if got := count(project); got != want {
				t.Errorf("project %q: events, requests, deliveries = %v, want %v", project, got, want)
			}
		}
		// The short name in one project does not reach another's rows.
		if evs, err := s.EventList(ctx, &store.EventListParams{Project: "acme", Source: "beta/stripe"}); err != nil || len(evs) != 0 {
			t.Errorf("acme's list with beta's source: %d, %v", len(evs), err)
		}
		// A bulk retry of one project changes only its deliveries.
		n, err := s.DeliveryRetryMany(ctx, &store.DeliveryRetryManyParams{Project: "acme", Status: store.DeliveryPending})
		if err != nil || n != 2 {
			t.Errorf("retry many in acme: %d, %v; want 2", n, err)
		}
	})
	t.Run("NamesUniquePerProject", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		for _, p := range []string{"", "acme", "beta"} {
			src := &store.Source{Name: "stripe", Project: p}
			dst := &store.Destination{Name: "billing", Project: p, URL: "http://127.0.0.1:9/" + p}
			if err := src.Scope(); err != nil {
				t.Fatal(err)
			}
			if err := dst.Scope(); err != nil {
				t.Fatal(err)
			}
			if err := s.SourceUpsert(ctx, src); err != nil {
				t.Fatal(err)
			}
			if err := s.DestinationUpsert(ctx, dst); err != nil {
				t.Fatal(err)
			}
			c := &store.Connection{Project: p, Source: "stripe", Destination: "billing"}
			if err := c.Scope(); err != nil {
				t.Fatal(err)
			}
			if err := s.ConnectionUpsert(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		srcs, err := s.SourceList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, src := range srcs {
			names = append(names, src.Project+":"+src.Name)
		}
		if want := []string{"acme:acme/stripe", "beta:beta/stripe", "default:stripe"}; !slices.Equal(names, want) {
			t.Errorf("sources %v, want %v", names, want)
		}
		d, err := s.DestinationGet(ctx, "beta/billing")
		if err != nil || d.URL != "http://127.0.0.1:9/beta" || d.Project != "beta" {
			t.Errorf("beta/billing = %+v, %v", d, err)
		}
		c, err := s.ConnectionGet(ctx, "acme/stripe->billing")
		if err != nil || c.Source != "acme/stripe" || c.Destination != "acme/billing" || c.Project != "acme" {
			t.Errorf("acme's connection = %+v, %v", c, err)
		}
		// A connection across projects is refused.
		if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "acme/stripe", Destination: "beta/billing"}); err == nil {
			t.Error("a connection from acme to beta was stored")
		}
		// Deleting acme's source leaves the others' and their connections.
		if err := s.SourceDelete(ctx, "acme/stripe"); err != nil {
			t.Fatal(err)
		}
		conns, err := s.ConnectionList(ctx)
		if err != nil || len(conns) != 2 {
			t.Errorf("connections after deleting acme's source: %d, %v; want 2", len(conns), err)
		}
		if _, err := s.SourceGet(ctx, "acme/stripe"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted source: %v", err)
		}
	})
	t.Run("TasksByProject", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		for _, tk := range []*store.Task{
			{ID: "t-default", Owner: "o", Tool: "wait_for_event"},
			{ID: "t-acme", Owner: "o", Project: "acme", Tool: "wait_for_event", Wait: &store.TaskWait{Source: "acme/stripe", Since: time.Now()}},
		} {
			if err := s.TaskCreate(ctx, tk); err != nil {
				t.Fatal(err)
			}
		}
		for project, want := range map[string]string{store.DefaultProject: "t-default", "acme": "t-acme"} {
			ts, err := s.TaskList(ctx, &store.TaskListParams{Project: project})
			if err != nil || len(ts) != 1 || ts[0].ID != want || ts[0].Project != project {
				t.Errorf("tasks of %s: %+v, %v; want %s", project, ts, err, want)
			}
		}
		if tk, err := s.TaskGet(ctx, "t-acme", time.Time{}); err != nil || tk.Project != "acme" {
			t.Errorf("TaskGet: %+v, %v", tk, err)
		}
	})
	t.Run("PruneByProject", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		old := time.Now().Add(-48 * time.Hour)
		for _, src := range []string{"s", "acme/s", "beta/s"} {
			if _, err := s.RequestIngest(ctx, &store.RequestIngestParams{
				Request: &store.Request{Source: src, ReceivedAt: old, Method: "POST", Path: "/e/" + src},
				Event:   &store.Event{},
			}); err != nil {
				t.Fatal(err)
			}
		}
		left := func() []string {
			evs, err := s.EventList(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, e := range evs {
				out = append(out, e.Source)
			}
			slices.Sort(out)
			return out
		}
		before := time.Now().Add(-time.Hour)
		if _, err := s.Prune(ctx, &store.PruneParams{Before: before, Project: "acme"}); err != nil {
			t.Fatal(err)
		}
		if got := left(); !slices.Equal(got, []string{"beta/s", "s"}) {
			t.Errorf("after pruning acme: %v", got)
		}
		if _, err := s.Prune(ctx, &store.PruneParams{Before: before, Except: []string{"beta"}}); err != nil {
			t.Fatal(err)
		}
		if got := left(); !slices.Equal(got, []string{"beta/s"}) {
			t.Errorf("after pruning all but beta: %v", got)
		}
		reqs, err := s.RequestList(ctx, nil)
		if err != nil || len(reqs) != 1 || reqs[0].Project != "beta" {
			t.Errorf("requests left: %+v, %v", reqs, err)
		}
	})
}
