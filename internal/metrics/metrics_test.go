package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/buildinfo"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/metrics"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/verify"
)

type testBundle struct {
	store   *sqlite.Store
	metrics *metrics.Metrics
	url     string
}

// setup runs the real pipeline (SQLite, catalog, ingest, dispatcher) with
// the metrics hooked in, and serves ingest and /metrics over loopback.
// Destination ok answers 200, bad answers 500 and gives up after two
// attempts, held is paused.
func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)

	okSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(okSrv.Close)
	badSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	t.Cleanup(badSrv.Close)

	if err := s.SourceUpsert(ctx, &store.Source{Name: "open", Dedup: store.DedupConfig{Key: "body.id"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SourceUpsert(ctx, &store.Source{Name: "signed", Verify: verify.Config{Type: "hmac", Header: "X-Signature", Secret: "k"}}); err != nil {
		t.Fatal(err)
	}
	fast := store.RetryPolicy{MaxAttempts: 2, Initial: store.Duration(10 * time.Millisecond), Max: store.Duration(20 * time.Millisecond)}
	for _, d := range []*store.Destination{
		{Name: "ok", URL: okSrv.URL},
		{Name: "bad", URL: badSrv.URL, Retry: fast},
		{Name: "held", URL: okSrv.URL},
		{Name: "idle", URL: okSrv.URL},
	} {
		if err := s.DestinationUpsert(ctx, d); err != nil {
			t.Fatal(err)
		}
		if d.Name != "idle" {
			if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "open", Destination: d.Name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.DestinationSetPaused(ctx, "held", true, "test"); err != nil {
		t.Fatal(err)
	}

	m := metrics.New(s, &metrics.Options{NoRuntimeCollectors: true})
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(s, compiler, nil)
	if err := cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ingest.New(s, cat, &ingest.Options{OnRequest: m.ObserveIngest}).Register(mux)
	mux.Handle("GET /metrics", m.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- deliver.New(s, &deliver.Options{PollInterval: 10 * time.Millisecond, OnAttempt: m.ObserveAttempt}).Run(runCtx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dispatcher: %v", err)
		}
	})
	return &testBundle{store: s, metrics: m, url: srv.URL}
}

func post(t *testing.T, url, body string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls cond until it holds or ten seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func countDeliveries(t *testing.T, s store.Store, dest, status string) int {
	t.Helper()
	ds, err := s.DeliveryList(context.Background(), &store.DeliveryListParams{Destination: dest, Status: status, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(ds)
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	for i, want := range []int{200, 200, 200} {
		// The third repeats the first id: a duplicate.
		body := fmt.Sprintf(`{"id":"e%d"}`, i%2)
		if got := post(t, b.url+"/e/open", body, nil); got != want {
			t.Fatalf("post %d = %d, want %d", i, got, want)
		}
	}
	if got := post(t, b.url+"/e/signed", `{}`, http.Header{"X-Signature": {"00"}}); got != http.StatusUnauthorized {
		t.Fatalf("bad signature = %d", got)
	}
	if got := post(t, b.url+"/e/nope", `{}`, nil); got != http.StatusNotFound {
		t.Fatalf("unknown source = %d", got)
	}
	if err := b.store.TaskCreate(ctx, &store.Task{ID: "task_1", Owner: "agent", Tool: "wait"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two succeeded deliveries to ok", func() bool { return countDeliveries(t, b.store, "ok", store.DeliverySucceeded) == 2 })
	waitFor(t, "two dead deliveries to bad", func() bool { return countDeliveries(t, b.store, "bad", store.DeliveryDead) == 2 })
	b.metrics.ObserveTaskCompletion(3 * time.Second)
	b.metrics.ObserveCircuit("bad", "opened", store.CircuitState{})
	b.metrics.ObserveCircuit("bad", "probing", store.CircuitState{})
	b.metrics.ObserveCircuit("bad", "closed", store.CircuitState{})

	want := `
# HELP mailroom_ingest_requests_total Webhook requests received on /e/{source}, by source and outcome (accepted, duplicate, unauthorized, too_large, unknown_source, bad_request, storage_error, handshake, method_not_allowed, rate_limited). Unknown sources are counted with an empty source label. project is the source's project; source its full name (project/name outside the default project).
# TYPE mailroom_ingest_requests_total counter
mailroom_ingest_requests_total{outcome="accepted",project="default",source="open"} 2
mailroom_ingest_requests_total{outcome="duplicate",project="default",source="open"} 1
mailroom_ingest_requests_total{outcome="unauthorized",project="default",source="signed"} 1
mailroom_ingest_requests_total{outcome="unknown_source",project="default",source=""} 1
# HELP mailroom_dedup_hits_total Verified requests dropped as duplicates of an earlier event, by project and source.
# TYPE mailroom_dedup_hits_total counter
mailroom_dedup_hits_total{project="default",source="open"} 1
# HELP mailroom_deliveries_total Delivery attempts by destination and what each did to its delivery: succeeded, retry (scheduled again), dead (out of attempts), paused (410 Gone), canceled (shutdown); project is the destination's.
# TYPE mailroom_deliveries_total counter
mailroom_deliveries_total{destination="bad",outcome="dead",project="default"} 2
mailroom_deliveries_total{destination="bad",outcome="retry",project="default"} 2
mailroom_deliveries_total{destination="ok",outcome="succeeded",project="default"} 2
# HELP mailroom_queue_depth Pending deliveries (waiting or in flight), by project and destination.
# TYPE mailroom_queue_depth gauge
mailroom_queue_depth{destination="bad",project="default"} 0
mailroom_queue_depth{destination="held",project="default"} 2
mailroom_queue_depth{destination="idle",project="default"} 0
mailroom_queue_depth{destination="ok",project="default"} 0
# HELP mailroom_dead_deliveries Dead deliveries (out of attempts, retryable by hand), by project and destination.
# TYPE mailroom_dead_deliveries gauge
mailroom_dead_deliveries{destination="bad",project="default"} 2
mailroom_dead_deliveries{destination="held",project="default"} 0
mailroom_dead_deliveries{destination="idle",project="default"} 0
mailroom_dead_deliveries{destination="ok",project="default"} 0
# HELP mailroom_tasks_open MCP tasks that are not terminal and not expired, by project.
# TYPE mailroom_tasks_open gauge
mailroom_tasks_open{project="default"} 1
# HELP mailroom_circuit_transitions_total Circuit breaker transitions made by this instance, by project, destination and transition (opened, probing, reopened, closed).
# TYPE mailroom_circuit_transitions_total counter
mailroom_circuit_transitions_total{destination="bad",project="default",transition="closed"} 1
mailroom_circuit_transitions_total{destination="bad",project="default",transition="opened"} 1
mailroom_circuit_transitions_total{destination="bad",project="default",transition="probing"} 1
`
	if err := testutil.ScrapeAndCompare(b.url+"/metrics", strings.NewReader(want),
		"mailroom_ingest_requests_total", "mailroom_dedup_hits_total", "mailroom_deliveries_total",
		"mailroom_queue_depth", "mailroom_dead_deliveries", "mailroom_tasks_open", "mailroom_circuit_transitions_total"); err != nil {
		t.Fatal(err)
	}

	mfs := scrape(t, b.url+"/metrics")
	if got := mfs["mailroom_ingest_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); got != 5 {
		t.Errorf("ingest duration samples = %d, want 5", got)
	}
	attempts := map[string]uint64{}
	for _, m := range mfs["mailroom_attempt_duration_seconds"].GetMetric() {
		attempts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
	}
	if attempts["ok"] != 2 || attempts["bad"] != 4 {
		t.Errorf("attempt duration samples = %v, want ok:2 bad:4", attempts)
	}
	if got := mfs["mailroom_task_completion_seconds"].GetMetric()[0].GetHistogram().GetSampleSum(); got != 3 {
		t.Errorf("task completion sum = %v, want 3", got)
	}
	for _, m := range mfs["mailroom_queue_oldest_pending_age_seconds"].GetMetric() {
		age := m.GetGauge().GetValue()
		if dest := m.GetLabel()[0].GetValue(); dest == "held" && age <= 0 || dest != "held" && age != 0 {
			t.Errorf("oldest pending age of %s = %v", dest, age)
		}
	}
}

func TestRuntimeCollectors(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil, nil)
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	mfs := scrape(t, srv.URL)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	if _, ok := mfs["mailroom_queue_depth"]; ok {
		t.Error("queue gauges served without a store")
	}
}

// TestStoreDownStillServes checks that a failing store does not fail the
// whole scrape: the counters are still served.
func TestStoreDownStillServes(t *testing.T) {
	t.Parallel()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "mailroom.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(s, &metrics.Options{NoRuntimeCollectors: true, ScrapeTimeout: time.Second})
	m.ObserveIngest("open", metrics.OutcomeAccepted, time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if !strings.Contains(body.String(), `mailroom_ingest_requests_total{outcome="accepted",project="default",source="open"} 1`) {
		t.Errorf("counters missing when the store is down:\n%s", body.String())
	}
}

// TestBuildInfo checks mailroom_build_info carries the running build's
// version, commit and Go version, as internal/buildinfo reports them.
func TestBuildInfo(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil, &metrics.Options{NoRuntimeCollectors: true})
	b := buildinfo.Read()
	want := fmt.Sprintf(`# HELP mailroom_build_info Always 1; the labels say which build of mailroom is running.
# TYPE mailroom_build_info gauge
mailroom_build_info{commit=%q,goversion=%q,version=%q} 1
`, b.Commit, b.GoVersion, b.Version)
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "mailroom_build_info"); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsByProject checks the project label and the scoping of
// /metrics: a principal of one project scrapes only its project's series.
func TestMetricsByProject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	for _, d := range []string{"billing", "acme/billing", "beta/billing"} {
		if err := s.DestinationUpsert(ctx, &store.Destination{Name: d, URL: "http://127.0.0.1:1/"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tk := range []*store.Task{{ID: "t1", Owner: "o", Tool: "w", Project: "acme"}, {ID: "t2", Owner: "o", Tool: "w", Project: "beta"}} {
		if err := s.TaskCreate(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	m := metrics.New(s, &metrics.Options{NoRuntimeCollectors: true})
	m.ObserveIngest("acme/stripe", metrics.OutcomeAccepted, time.Millisecond)
	m.ObserveIngest("beta/stripe", metrics.OutcomeAccepted, time.Millisecond)
	m.ObserveAttempt(store.Attempt{Destination: "beta/billing", DurationMS: 5}, "succeeded")
	var p *access.Principal
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p != nil {
			r = r.WithContext(access.With(r.Context(), *p))
		}
		m.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	get := func() string {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	all := get()
	for _, want := range []string{
		`mailroom_ingest_requests_total{outcome="accepted",project="acme",source="acme/stripe"} 1`,
		`mailroom_ingest_requests_total{outcome="accepted",project="beta",source="beta/stripe"} 1`,
		`mailroom_queue_depth{destination="acme/billing",project="acme"} 0`,
		`mailroom_queue_depth{destination="billing",project="default"} 0`,
		`mailroom_tasks_open{project="acme"} 1`,
		`mailroom_build_info`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("unscoped scrape lacks %s", want)
		}
	}
	p = &access.Principal{TokenID: "t", Role: access.RoleViewer, Project: "acme"}
	acme := get()
	for _, want := range []string{`project="acme",source="acme/stripe"`, `mailroom_queue_depth{destination="acme/billing",project="acme"} 0`, `mailroom_tasks_open{project="acme"} 1`} {
		if !strings.Contains(acme, want) {
			t.Errorf("acme's scrape lacks %s:\n%s", want, acme)
		}
	}
	for _, not := range []string{"beta", `project="default"`, "mailroom_build_info", "mailroom_ingest_duration_seconds"} {
		if strings.Contains(acme, not) {
			t.Errorf("acme's scrape shows %s:\n%s", not, acme)
		}
	}
}
