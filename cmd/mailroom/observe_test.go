package main

import (
	"encoding/json"
	"fmt"
	"github.com/mailroomhq/mailroom/internal/auth"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeObservability runs the real binary with a failing destination
// and an alert URL, and checks /metrics, the alert in the API and the
// CLI, the Slack notifications, and the failed-attempt log lines.
func TestServeObservability(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	down.Store(true)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(dest.Close)
	var mu sync.Mutex
	var texts []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Text string }
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		texts = append(texts, body.Text)
		mu.Unlock()
	}))
	t.Cleanup(slack.Close)
	notified := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), texts...)
	}

	dir := t.TempDir()
	cfg := fmt.Sprintf(`
storage: sqlite://%s/mailroom.db
api: {token: obs-test-token}
alerts: {consecutive_failures: 2, url: %s/services/T/B/secret}
sources:
  - name: open
destinations:
  - name: billing
    url: %s
    retry: {max_attempts: 50, initial: 20ms, max: 50ms}
connections:
  - {source: open, destination: billing}
`, dir, slack.URL, dest.URL)
	path := filepath.Join(dir, "mailroom.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := startWith(t, []string{"serve", "--config", path, "--listen", "127.0.0.1:0"})
	base := "http://" + inst.addr

	resp, err := http.Post(base+"/e/open", "application/json", strings.NewReader(`{"id":"pay_1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitUntil(t, "the alert notification", func() bool { return len(notified()) >= 1 })
	if got := notified()[0]; !strings.Contains(got, "destination billing is failing") {
		t.Errorf("notification = %q", got)
	}

	b := &cliBundle{url: base}
	out, errOut, code := b.run(t, "alerts", "list", "--open", "--token", "obs-test-token")
	if code != 0 {
		t.Fatalf("alerts list: exit %d %s", code, errOut)
	}
	if row := findRow(t, out, "billing"); row[2] != "open" || row[3] != "consecutive_failures" || row[8] != "HTTP 503" {
		t.Errorf("alert row = %q", row)
	}

	// /metrics is open on loopback and counts the failures.
	mresp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		`mailroom_ingest_requests_total{outcome="accepted",project="default",source="open"} 1`,
		`mailroom_deliveries_total{destination="billing",outcome="retry",project="default"}`,
		`mailroom_queue_depth{destination="billing",project="default"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	down.Store(false)
	waitUntil(t, "the resolve notification", func() bool { return len(notified()) >= 2 })
	if got := notified()[1]; !strings.Contains(got, "destination billing delivers again") {
		t.Errorf("notification = %q", got)
	}
	logs := inst.logs.String()
	if !strings.Contains(logs, `msg="delivery attempt failed" destination=billing`) || !strings.Contains(logs, "status=503") {
		t.Errorf("no failed-attempt log line in:\n%s", logs)
	}
	if strings.Contains(logs, "/services/T/B/secret") {
		t.Error("the alert URL was logged")
	}
}

// waitUntil polls cond until it holds or ten seconds pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMetricsHandlerAuth(t *testing.T) {
	t.Parallel()
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics") })
	for _, tt := range []struct {
		name, token, listen, auth string
		want                      int
	}{
		{"LoopbackOpen", "tok", "127.0.0.1:8080", "", http.StatusOK},
		{"PublicNeedsToken", "tok", "0.0.0.0:8080", "", http.StatusUnauthorized},
		{"PublicWrongToken", "tok", "0.0.0.0:8080", "Bearer nope", http.StatusUnauthorized},
		{"PublicWithToken", "tok", "0.0.0.0:8080", "Bearer tok", http.StatusOK},
		{"PublicNoTokenConfigured", "", ":8080", "", http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			g := auth.NewGuard(auth.New(&auth.Options{Static: []auth.Static{auth.AdminToken(tt.token)}}), nil)
			metricsHandler(inner, g, tt.token, tt.listen).ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("status = %d, want %d", rec.Code, tt.want)
			}
		})
	}
}
