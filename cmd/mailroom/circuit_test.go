package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCircuitBreakerFlapping runs the binary with a destination that fails
// until told to recover, behind a circuit breaker (3 failures in a row,
// 400ms cooldown), and a healthy destination beside it. The circuit opens
// after three failures, so the failing destination sees a handful of
// attempts (the three, then one probe per cooldown) instead of a retry
// storm; the healthy one gets every event meanwhile; after recovery a probe
// closes the circuit and every event arrives (0 lost); the transitions
// show in the API, /metrics and the alerts.
func TestCircuitBreakerFlapping(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const n = 20
	var up atomic.Bool
	f := newFaultSink(t, func(path string, k int, w http.ResponseWriter, r *http.Request) bool {
		if path == "/flaky" && !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return false
		}
		return true
	})
	cfg := fmt.Sprintf(`storage: sqlite://%s/m.db
%s
destinations:
  - name: healthy
    url: %s/healthy
  - name: flaky
    url: %s/flaky
    max_concurrency: 1
    retry: {max_attempts: 1000, initial: 20ms, max: 100ms}
    circuit_breaker: {failures: 3, cooldown: 400ms, max_cooldown: 800ms}
connections:
  - {source: custom, destination: healthy}
  - {source: custom, destination: flaky}
`, t.TempDir(), hmacSource, f.srv.URL, f.srv.URL)
	inst := start(t, binary(t), writeYAML(t, t.TempDir(), cfg))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("circuit-%d", i)
		if code := post(http.DefaultClient, inst.addr, ids[i]); code != http.StatusOK {
			t.Fatalf("ingest %s: %d", ids[i], code)
		}
	}
	type dest struct {
		Circuit struct {
			State  string `json:"state"`
			Reason string `json:"reason"`
			Opens  int    `json:"opens"`
		} `json:"circuit"`
	}
	circuit := func() dest {
		var d dest
		getJSON(t, "http://"+inst.addr+"/api/v1/destinations/flaky", &d)
		return d
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, inst.logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil("the circuit to open", func() bool { return circuit().Circuit.State == "open" })
	if d := circuit(); !strings.Contains(d.Circuit.Reason, "3 failed attempts in a row") {
		t.Errorf("circuit = %+v", d.Circuit)
	}
	waitUntil("the healthy destination to get every event", func() bool { return f.delivered("/healthy", ids) == n })
	// Let the circuit probe and reopen at least twice while down.
	waitUntil("two failed probes", func() bool { return circuit().Circuit.Opens >= 3 })
	whileDown := f.requests("/flaky")
	// 3 failures, then one probe per opening: without the breaker this
	// many cooldowns of 20-100ms retries would be dozens of attempts.
	if whileDown > 3+circuit().Circuit.Opens {
		t.Errorf("%d attempts reached the failing destination with the circuit opened %d times; want 3 + one probe per reopening",
			whileDown, circuit().Circuit.Opens)
	}
	up.Store(true)
	waitUntil("every event at the recovered destination", func() bool { return f.delivered("/flaky", ids) == n })
	waitUntil("the circuit to close", func() bool { return circuit().Circuit.State == "" })

	resp, err := http.Get("http://" + inst.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`mailroom_circuit_transitions_total{destination="flaky",project="default",transition="opened"} 1`,
		`mailroom_circuit_transitions_total{destination="flaky",project="default",transition="closed"} 1`,
		`mailroom_circuit_transitions_total{destination="flaky",project="default",transition="reopened"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var alerts struct {
		Data []struct {
			Destination string    `json:"destination"`
			Reason      string    `json:"reason"`
			ResolvedAt  time.Time `json:"resolved_at"`
		} `json:"data"`
	}
	getJSON(t, "http://"+inst.addr+"/api/v1/alerts", &alerts)
	found := false
	for _, a := range alerts.Data {
		if a.Destination == "flaky" && a.Reason == "circuit_open" && !a.ResolvedAt.IsZero() {
			found = true
		}
	}
	if !found {
		t.Errorf("no resolved circuit_open alert for flaky in %+v", alerts.Data)
	}
	t.Logf("%d attempts reached the failing destination while down; all %d events delivered after recovery", whileDown, n)
}
