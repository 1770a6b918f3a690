package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// TestTasksWithMCPDisabled: with mcp.disabled, tasks created through
// POST /api/v1/tasks still complete on their event (one that already
// arrived, found by the look-back after the call returned, and one that
// comes later), fail at their timeout, and are gone after their TTL. They
// used to stay working forever: completion ran only inside the MCP server.
func TestTasksWithMCPDisabled(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mailroom.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
storage: sqlite://%s/m.db
mcp: {disabled: true}
sources:
  - name: github
    verify: {type: none}
`, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := start(t, binary(t), cfg)
	base := "http://" + inst.addr
	send := func(id string) string {
		t.Helper()
		resp, err := http.Post(base+"/e/github", "application/json", strings.NewReader(fmt.Sprintf(`{"id":%q}`, id)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			EventID string `json:"event_id"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("webhook: %d %v", resp.StatusCode, err)
		}
		return out.EventID
	}
	call := func(method, path, body string, wantStatus int) store.Task {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, wantStatus)
		}
		var tk store.Task
		json.Unmarshal(b, &tk)
		return tk
	}
	awaitTask := func(id string) store.Task {
		t.Helper()
		var tk store.Task
		for range 3 { // the server's longest wait is 30s
			tk = call(http.MethodGet, "/api/v1/tasks/"+id+"?wait=30s", "", http.StatusOK)
			if store.TaskTerminal(tk.Status) {
				break
			}
		}
		return tk
	}

	past := send("past")
	tk := call(http.MethodPost, "/api/v1/tasks", `{"source":"github","match":{"id":"past"}}`, http.StatusCreated)
	if tk.Status != store.TaskWorking {
		t.Errorf("POST /tasks answered %s: the look-back ran before the answer", tk.Status)
	}
	if got := awaitTask(tk.ID); got.Status != store.TaskCompleted || got.EventID != past {
		t.Fatalf("task on a past event: %s %q (event %s), want completed by %s", got.Status, got.StatusMessage, got.EventID, past)
	}

	tk = call(http.MethodPost, "/api/v1/tasks", `{"source":"github","match":{"id":"later"}}`, http.StatusCreated)
	later := send("later")
	if got := awaitTask(tk.ID); got.Status != store.TaskCompleted || got.EventID != later {
		t.Fatalf("task on a new event: %s %q (event %s), want completed by %s", got.Status, got.StatusMessage, got.EventID, later)
	}

	tk = call(http.MethodPost, "/api/v1/tasks", `{"source":"github","match":{"id":"never"},"timeout":"1s","ttl":"2s"}`, http.StatusCreated)
	if got := awaitTask(tk.ID); got.Status != store.TaskFailed || !strings.Contains(got.StatusMessage, "no matching github event within 1s") {
		t.Fatalf("task past its timeout: %s %q, want failed, timed out", got.Status, got.StatusMessage)
	}
	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/tasks/"+tk.ID, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			break
		}
		time.Sleep(200 * time.Millisecond) // until its TTL passes
	}

	call(http.MethodPost, "/api/v1/tasks", `{"source":"github","filter":"\"x\""}`, http.StatusBadRequest)
}
