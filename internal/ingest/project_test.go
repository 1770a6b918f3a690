package ingest_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/project"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

// TestProjectPaths checks /e/{project}/{source}: a project's source is
// reached under its project, its events are in the project and routed to
// its destinations, a default-project source keeps /e/{source} with any
// suffix, and an unknown source of a project is recorded in it.
func TestProjectPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	for _, src := range []string{"hooks", "acme/hooks", "acme/other"} {
		if err := s.SourceUpsert(ctx, &store.Source{Name: src}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"sink", "acme/sink"} {
		if err := s.DestinationUpsert(ctx, &store.Destination{Name: d, URL: "http://127.0.0.1:1/"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*store.Connection{{Source: "hooks", Destination: "sink"}, {Source: "acme/hooks", Destination: "acme/sink"}} {
		if err := s.ConnectionUpsert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]string{}
	url := serveIngest(t, s, &ingest.Options{OnRequest: func(source, outcome string, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen[source] = outcome
	}})
	for _, tc := range []struct {
		path, source, suffix, project, dest string
		status                              int
	}{
		{"/e/acme/hooks", "acme/hooks", "", "acme", "acme/sink", 200},
		{"/e/acme/hooks/github/push", "acme/hooks", "/github/push", "acme", "acme/sink", 200},
		{"/e/acme/other", "acme/other", "", "acme", "", 200},
		{"/e/hooks", "hooks", "", store.DefaultProject, "sink", 200},
		{"/e/hooks/acme/hooks", "hooks", "/acme/hooks", store.DefaultProject, "sink", 200},
		{"/e/acme/nope", "acme/nope", "", "acme", "", 404},
		{"/e/nope/hooks", "nope", "/hooks", store.DefaultProject, "", 404},
	} {
		status, out := post(t, url+tc.path, []byte(`{"id":"`+tc.path+`"}`), http.Header{"Content-Type": {"application/json"}})
		if status != tc.status {
			t.Errorf("%s: status %d, want %d: %v", tc.path, status, tc.status, out)
			continue
		}
		mu.Lock()
		if _, ok := seen[tc.source]; !ok {
			t.Errorf("%s: counted under %v, want source %q", tc.path, seen, tc.source)
		}
		mu.Unlock()
		reqID, _ := out["request_id"].(string)
		req, err := s.RequestGetByID(ctx, reqID)
		if err != nil {
			t.Errorf("%s: request %q: %v", tc.path, reqID, err)
			continue
		}
		if req.Source != tc.source || req.Path != tc.suffix || req.Project != tc.project {
			t.Errorf("%s: recorded source %q path %q project %q, want %q %q %q", tc.path, req.Source, req.Path, req.Project, tc.source, tc.suffix, tc.project)
		}
		if tc.status != 200 {
			continue
		}
		ds, err := s.DeliveryList(ctx, &store.DeliveryListParams{EventID: req.EventID})
		if err != nil {
			t.Fatal(err)
		}
		if (tc.dest == "") != (len(ds) == 0) || (len(ds) == 1 && (ds[0].Destination != tc.dest || ds[0].Project != tc.project)) {
			t.Errorf("%s: deliveries %+v, want one to %q", tc.path, ds, tc.dest)
		}
	}
}

// TestProjectIngestRate checks a project's ingest rate: past it /e/…
// answers 429 with Retry-After and stores nothing, counted as
// rate_limited, while another project and the default one go on.
func TestProjectIngestRate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	for _, src := range []string{"free", "acme/hooks"} {
		if err := s.SourceUpsert(ctx, &store.Source{Name: src}); err != nil {
			t.Fatal(err)
		}
	}
	// 1 per hour: a burst of one (a second's worth, at least 1), then the
	// next one only an hour later.
	projects := project.New([]project.Config{{Name: "acme", IngestRate: "1/h"}})
	var mu sync.Mutex
	limited := 0
	url := serveIngest(t, s, &ingest.Options{Projects: projects, OnRequest: func(_, outcome string, _ time.Duration) {
		if outcome == ingest.OutcomeRateLimited {
			mu.Lock()
			limited++
			mu.Unlock()
		}
	}})
	for i := range 5 {
		req, err := http.NewRequest("POST", url+"/e/acme/hooks", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := 200
		if i >= 1 {
			want = 429
		}
		if resp.StatusCode != want {
			t.Errorf("request %d: status %d, want %d", i, resp.StatusCode, want)
		}
		if want == 429 {
			ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || ra < 3000 || ra > 3600 {
				t.Errorf("request %d: Retry-After %q, want about an hour", i, resp.Header.Get("Retry-After"))
			}
		}
	}
	for range 5 {
		if status, out := post(t, url+"/e/free", []byte(`{}`), nil); status != 200 {
			t.Errorf("default project: %d %v", status, out)
		}
	}
	reqs, err := s.RequestList(ctx, &store.RequestListParams{Project: "acme"})
	if err != nil || len(reqs) != 1 {
		t.Errorf("acme's stored requests: %d, %v; want 1 (the refused ones are not stored)", len(reqs), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if limited != 4 {
		t.Errorf("counted %d rate_limited, want 4", limited)
	}
}
