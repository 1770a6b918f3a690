package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogLinesDoNotGrowWithEvents runs the binary at the default log level
// through two rounds of the same traffic: webhooks delivered to one
// destination and failing at another until dead, duplicates, refused
// signatures, and MCP waits each completed by a webhook. The second round
// is ten times the first; it may add a few lines (a rate-limited warning
// whose interval ended), never a line per event.
func TestLogLinesDoNotGrowWithEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	good := newSink(t)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
storage: sqlite://%s/mailroom.db
sources:
  - name: custom
    verify: {type: hmac, header: X-Signature, algorithm: sha256, encoding: hex, secret: testsecret}
    dedup: {key: 'body.id'}
destinations:
  - name: sink
    url: %s/hooks
  - name: down
    url: %s/hooks
    retry: {max_attempts: 2, initial: 10ms, max: 10ms}
connections:
  - {source: custom, destination: sink}
  - {source: custom, destination: down}
`, dir, good.srv.URL, down.URL)
	path := filepath.Join(dir, "mailroom.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := start(t, binary(t), path) // MAILROOM_LOG_LEVEL=info: the default
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	post := func(id string, sig string) int {
		body := []byte(fmt.Sprintf(`{"id":%q,"type":"test"}`, id))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+inst.addr+"/e/custom", bytes.NewReader(body))
		req.Header.Set("X-Signature", cmp.Or(sig, sign(body)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	round := func(name string, n int) {
		var ids, tasks []string
		for i := range n {
			id := fmt.Sprintf("%s-%d", name, i)
			if i%10 == 0 {
				_, created := modernCall(t, ctx, inst.addr, "tools/call", map[string]any{"name": "wait_for_event",
					"arguments": map[string]any{"source": "custom", "match": map[string]any{"id": id}}})
				taskID, _ := created["taskId"].(string)
				if taskID == "" {
					t.Fatalf("wait_for_event: %v", created)
				}
				tasks = append(tasks, taskID)
			}
			if code := post(id, ""); code != http.StatusOK {
				t.Fatalf("webhook %s: %d", id, code)
			}
			if code := post(id, ""); code != http.StatusOK { // a duplicate
				t.Fatalf("duplicate %s: %d", id, code)
			}
			if code := post(id+"-forged", strings.Repeat("0", 64)); code != http.StatusUnauthorized {
				t.Fatalf("forged %s: %d, want 401", id, code)
			}
			ids = append(ids, id)
		}
		waitDelivered(t, good, ids, time.Minute)
		for _, id := range tasks {
			waitUntil(t, "task "+id+" completed", func() bool {
				_, got := modernCall(t, ctx, inst.addr, "tasks/get", map[string]any{"taskId": id})
				return got["status"] == "completed"
			})
		}
		deadline := time.Now().Add(time.Minute)
		for {
			var pending struct{ Data []any }
			getJSON(t, "http://"+inst.addr+"/api/v1/deliveries?destination=down&status=pending&limit=1", &pending)
			if len(pending.Data) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("deliveries to down still pending after a minute")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	round("first", 20)
	first := inst.logs.String()
	round("second", 200)
	all := inst.logs.String()
	added := strings.TrimPrefix(all, first)
	if n := strings.Count(first, "\n"); n > 40 {
		t.Errorf("%d lines after start-up and 20 events, want at most 40:\n%s", n, first)
	}
	// Lines of rate-limited warnings may come again if the interval ended
	// during the round (a minute on a slow machine): at most one each for
	// refused signatures and for failed and dead attempts.
	if n := strings.Count(added, "\n"); n > 3 {
		t.Errorf("200 more events added %d log lines, want at most 3:\n%s", n, added)
	}
	for _, want := range []string{`msg="ingest: request rejected"`, `msg="delivery attempt failed" destination=down`} {
		if !strings.Contains(first, want) {
			t.Errorf("the log lacks %s (warnings are rate-limited, not dropped):\n%s", want, first)
		}
	}
}
