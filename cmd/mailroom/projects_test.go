package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProjectsEndToEnd runs the real binary with a config that declares a
// project beside the default one: /e/{project}/{source} is delivered to
// the project's destination and /e/{source} to the default one's, the
// project's ingest rate answers 429 with Retry-After, counted in
// /metrics with the project label, and GET /api/v1/projects shows the
// limits.
func TestProjectsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := binary(t)
	dir := t.TempDir()
	s := newSink(t)
	cfg := fmt.Sprintf(`
storage: sqlite://%s/mailroom.db
projects:
  - {name: acme, ingest_rate: 1/h, max_destinations: 1, retention: 72h}
sources:
  - name: hooks
  - {name: hooks, project: acme}
destinations:
  - {name: sink, url: "%s/default"}
  - {name: sink, project: acme, url: "%s/acme"}
connections:
  - {source: hooks, destination: sink}
  - {project: acme, source: hooks, destination: sink}
`, dir, s.srv.URL, s.srv.URL)
	path := filepath.Join(dir, "mailroom.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := start(t, bin, path)
	base := "http://" + inst.addr
	post := func(p, id string) *http.Response {
		t.Helper()
		resp, err := http.Post(base+p, "application/json", strings.NewReader(`{"id":"`+id+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := post("/e/acme/hooks", "acme-1"); r.StatusCode != 200 {
		t.Fatalf("/e/acme/hooks: %d", r.StatusCode)
	}
	if r := post("/e/hooks", "default-1"); r.StatusCode != 200 {
		t.Fatalf("/e/hooks: %d", r.StatusCode)
	}
	r := post("/e/acme/hooks", "acme-2")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Errorf("second acme request within the hour: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	waitDelivered(t, s, []string{"acme-1", "default-1"}, 30*time.Second)
	var evs struct {
		Data []struct{ Source, Project string }
	}
	getJSON(t, base+"/api/v1/events?project=acme", &evs)
	if len(evs.Data) != 1 || evs.Data[0].Source != "acme/hooks" || evs.Data[0].Project != "acme" {
		t.Errorf("acme's events: %+v", evs.Data)
	}
	var projects struct {
		Data []struct {
			Name            string
			MaxDestinations int `json:"max_destinations"`
			Destinations    int
		}
	}
	getJSON(t, base+"/api/v1/projects", &projects)
	if len(projects.Data) != 2 || projects.Data[0].Name != "acme" || projects.Data[0].MaxDestinations != 1 || projects.Data[0].Destinations != 1 {
		t.Errorf("projects: %+v", projects.Data)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	metrics := string(raw)
	for _, want := range []string{
		`mailroom_ingest_requests_total{outcome="rate_limited",project="acme",source="acme/hooks"} 1`,
		`mailroom_ingest_requests_total{outcome="accepted",project="acme",source="acme/hooks"} 1`,
		`mailroom_ingest_requests_total{outcome="accepted",project="default",source="hooks"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
