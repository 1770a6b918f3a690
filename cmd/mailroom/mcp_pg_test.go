package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// modernCall sends one 2026-07-28 request declaring the Tasks extension
// and returns its result.
func modernCall(t *testing.T, ctx context.Context, addr, method string, params map[string]any) (*http.Response, map[string]any) {
	t.Helper()
	params["_meta"] = map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "pg-test", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": map[string]any{"extensions": map[string]any{"io.modelcontextprotocol/tasks": map[string]any{}}},
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/mcp", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", method)
	if n, ok := params["name"].(string); ok {
		req.Header.Set("Mcp-Name", n)
	}
	if id, ok := params["taskId"].(string); ok {
		req.Header.Set("Mcp-Name", id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if method == "subscriptions/listen" {
		return resp, nil
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "data: ")
		var m struct {
			ID     any            `json:"id"`
			Result map[string]any `json:"result"`
			Error  any            `json:"error"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.ID != nil {
			if m.Error != nil {
				t.Fatalf("%s: %v", method, m.Error)
			}
			return resp, m.Result
		}
	}
	t.Fatalf("%s: no response", method)
	return nil, nil
}

// TestMCPTaskAcrossInstances: two instances share one PostgreSQL. A task
// created on A completes from a webhook sent to B; the client listening
// on A is notified, and tasks/get answers the same on both.
func TestMCPTaskAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dsn := schemaDSN(t, localPostgres(t))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mailroom.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("storage: %q\nsources:\n  - name: stripe\n    verify: {type: stripe, secret: %s}\n", dsn, mcpStripeSecret)), 0o600)
	a := start(t, binary(t), cfg)
	b := start(t, binary(t), cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	_, created := modernCall(t, ctx, a.addr, "tools/call", map[string]any{"name": "wait_for_event",
		"arguments": map[string]any{"source": "stripe", "match": map[string]any{"data.object.payment_link": "plink_pg"}}})
	taskID, _ := created["taskId"].(string)
	if created["resultType"] != "task" || taskID == "" {
		t.Fatalf("CreateTaskResult: %v", created)
	}
	resp, _ := modernCall(t, ctx, a.addr, "subscriptions/listen", map[string]any{"notifications": map[string]any{"taskIds": []string{taskID}}})
	defer resp.Body.Close()
	notes := make(chan map[string]any, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal([]byte(strings.TrimPrefix(sc.Text(), "data: ")), &m) == nil {
				notes <- m
			}
		}
		close(notes)
	}()
	_, onB := modernCall(t, ctx, b.addr, "tasks/get", map[string]any{"taskId": taskID})
	if onB["status"] != "working" {
		t.Fatalf("tasks/get on B before the webhook: %v", onB)
	}
	start := time.Now()
	evID := sendSigned(t, b.addr, "stripe", "evt_pg_cross", "checkout.session.completed", "plink_pg")
	deadline := time.After(20 * time.Second)
	for done := false; !done; {
		select {
		case m, ok := <-notes:
			if !ok {
				t.Fatal("listen stream on A closed")
			}
			params, _ := m["params"].(map[string]any)
			if m["method"] == "notifications/tasks" && params["status"] == "completed" {
				done = true
				t.Logf("notification on A %s after the webhook on B", time.Since(start).Round(time.Millisecond))
			}
		case <-deadline:
			t.Fatalf("no notifications/tasks on A\nA:\n%s\nB:\n%s", a.logs, b.logs)
		}
	}
	for name, inst := range map[string]*instance{"A": a, "B": b} {
		_, got := modernCall(t, ctx, inst.addr, "tasks/get", map[string]any{"taskId": taskID})
		res, _ := got["result"].(map[string]any)
		sc, _ := res["structuredContent"].(map[string]any)
		ev, _ := sc["event"].(map[string]any)
		if got["status"] != "completed" || ev["event_id"] != evID {
			t.Errorf("tasks/get on %s: %v", name, got)
		}
	}
}
