package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/verify"
)

const mcpStripeSecret = "whsec_stdio_test"

func startStripeServer(t *testing.T) *instance {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mailroom.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
storage: sqlite://%s/m.db
sources:
  - name: stripe
    verify: {type: stripe, secret: %s}
  - name: github
    verify: {type: none}
`, dir, mcpStripeSecret)), 0o600)
	return start(t, binary(t), cfg)
}

func sendSigned(t *testing.T, addr, source, id, typ, link string) string {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"type":%q,"data":{"object":{"payment_link":%q}}}`, id, typ, link)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/e/"+source, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", verify.SignStripe(mcpStripeSecret, time.Now(), []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		EventID string `json:"event_id"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("webhook to %s: %d", source, resp.StatusCode)
	}
	return out.EventID
}

// stdioPeer is a raw JSON-RPC peer of `mailroom mcp` over its stdio.
type stdioPeer struct {
	t    *testing.T
	in   io.WriteCloser
	msgs chan map[string]any
	id   int
	// pending holds messages read but not yet awaited.
	pending []map[string]any
}

func startBridge(t *testing.T, args ...string) *stdioPeer {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"mcp"}, args...)...)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &stdioPeer{t: t, in: in, msgs: make(chan map[string]any, 100)}
	go func() {
		defer close(p.msgs)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("bridge wrote a non-JSON line %q", sc.Text())
				continue
			}
			p.msgs <- m
		}
	}()
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return p
}

func (p *stdioPeer) send(method string, params map[string]any, notify bool) int {
	p.t.Helper()
	msg := map[string]any{"jsonrpc": "2.0", "method": method, "params": params}
	if !notify {
		p.id++
		msg["id"] = p.id
	}
	b, _ := json.Marshal(msg)
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		p.t.Fatal(err)
	}
	return p.id
}

// await returns the first message that ok accepts.
func (p *stdioPeer) await(what string, ok func(map[string]any) bool) map[string]any {
	p.t.Helper()
	for i, m := range p.pending {
		if ok(m) {
			p.pending = append(p.pending[:i], p.pending[i+1:]...)
			return m
		}
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m, open := <-p.msgs:
			if !open {
				p.t.Fatalf("bridge closed stdout before %s", what)
			}
			if ok(m) {
				return m
			}
			p.pending = append(p.pending, m)
		case <-deadline:
			p.t.Fatalf("no %s within 20s", what)
		}
	}
}

func (p *stdioPeer) call(method string, params map[string]any) map[string]any {
	p.t.Helper()
	id := p.send(method, params, false)
	m := p.await(method+" response", func(m map[string]any) bool { return m["id"] == float64(id) })
	if m["error"] != nil {
		p.t.Fatalf("%s: %v", method, m["error"])
	}
	r, _ := m["result"].(map[string]any)
	return r
}

// TestStdioLegacyTaskAndChannel runs `mailroom mcp --channel stripe` as a
// stdio server: a 2025-11-25 task-augmented wait_for_event, a webhook,
// notifications/tasks/status and tasks/result over stdio, and a
// claude/channel message for the stripe event but none for github.
func TestStdioLegacyTaskAndChannel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	srv := startStripeServer(t)
	p := startBridge(t, "--server", "http://"+srv.addr, "--channel", "stripe")
	init := p.call("initialize", map[string]any{"protocolVersion": "2025-11-25", "clientInfo": map[string]any{"name": "stdio-test", "version": "1"}, "capabilities": map[string]any{}})
	caps, _ := init["capabilities"].(map[string]any)
	exp, _ := caps["experimental"].(map[string]any)
	if exp["claude/channel"] == nil || caps["tasks"] == nil {
		t.Fatalf("initialize capabilities: %v", caps)
	}
	p.send("notifications/initialized", map[string]any{}, true)
	created := p.call("tools/call", map[string]any{"name": "wait_for_event", "task": map[string]any{"ttl": 60000},
		"arguments": map[string]any{"source": "stripe", "match": map[string]any{"data.object.payment_link": "plink_stdio"}}})
	taskID, _ := created["task"].(map[string]any)["taskId"].(string)
	if taskID == "" {
		t.Fatalf("CreateTaskResult: %v", created)
	}
	time.Sleep(300 * time.Millisecond) // the bridge's GET stream and channel session connect
	sendSigned(t, srv.addr, "github", "gh_1", "push", "")
	evID := sendSigned(t, srv.addr, "stripe", "evt_stdio", "checkout.session.completed", "plink_stdio")
	p.await("notifications/tasks/status", func(m map[string]any) bool {
		params, _ := m["params"].(map[string]any)
		return m["method"] == "notifications/tasks/status" && params["taskId"] == taskID && params["status"] == "completed"
	})
	ch := p.await("notifications/claude/channel", func(m map[string]any) bool {
		if m["method"] != "notifications/claude/channel" {
			return false
		}
		meta := m["params"].(map[string]any)["meta"].(map[string]any)
		if meta["source"] != "stripe" {
			t.Errorf("channel message for source %v, which is not a channel", meta["source"])
		}
		return true
	})
	if meta := ch["params"].(map[string]any)["meta"].(map[string]any); meta["event_id"] != evID || meta["type"] != "checkout.session.completed" {
		t.Errorf("channel meta: %v", meta)
	}
	res := p.call("tasks/result", map[string]any{"taskId": taskID})
	sc, _ := res["structuredContent"].(map[string]any)
	if ev, _ := sc["event"].(map[string]any); ev["event_id"] != evID {
		t.Errorf("tasks/result: %v", res)
	}

	// The 2026-07-28 form over the same stdio: per-request _meta with the
	// Tasks extension, a flat CreateTaskResult, tasks/get with the result.
	meta := map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "stdio-test", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": map[string]any{"extensions": map[string]any{"io.modelcontextprotocol/tasks": map[string]any{}}},
	}
	modern := p.call("tools/call", map[string]any{"_meta": meta, "name": "wait_for_event",
		"arguments": map[string]any{"source": "stripe", "match": map[string]any{"data.object.payment_link": "plink_stdio_2026"}}})
	modernID, _ := modern["taskId"].(string)
	if modern["resultType"] != "task" || modernID == "" {
		t.Fatalf("2026-07-28 CreateTaskResult over stdio: %v", modern)
	}
	ev2 := sendSigned(t, srv.addr, "stripe", "evt_stdio_2026", "checkout.session.completed", "plink_stdio_2026")
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := p.call("tasks/get", map[string]any{"_meta": meta, "taskId": modernID})
		if got["status"] == "completed" {
			r, _ := got["result"].(map[string]any)
			sc, _ := r["structuredContent"].(map[string]any)
			if ev, _ := sc["event"].(map[string]any); ev["event_id"] != ev2 {
				t.Errorf("2026-07-28 tasks/get over stdio: %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2026-07-28 task over stdio never completed: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStdioGoSDKClient connects the go-sdk client to `mailroom mcp` over
// stdio on 2026-07-28 and waits for an event synchronously.
func TestStdioGoSDKClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	srv := startStripeServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "go-sdk-stdio", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: exec.Command(binary(t), "mcp", "--server", "http://"+srv.addr)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan *mcp.CallToolResult, 1)
	go func() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "wait_for_event", Arguments: map[string]any{"source": "stripe", "match": map[string]any{"data.object.payment_link": "plink_gostdio"}}})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	time.Sleep(300 * time.Millisecond)
	evID := sendSigned(t, srv.addr, "stripe", "evt_gostdio", "checkout.session.completed", "plink_gostdio")
	res := <-done
	b, _ := json.Marshal(res.StructuredContent)
	if !strings.Contains(string(b), evID) {
		t.Errorf("result: %s", b)
	}
}

// TestStdioModernTasks drives `mailroom mcp` as a 2026-07-28 client does,
// with raw JSON-RPC and no initialize: server/discover names both
// revisions, a tools/call declaring the Tasks extension returns a flat
// CreateTaskResult, subscriptions/listen with its task id brings
// notifications/tasks over stdio when the webhook lands, tasks/get holds
// the result, and an unknown method is -32601 in both eras.
func TestStdioModernTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	srv := startStripeServer(t)
	p := startBridge(t, "--server", "http://"+srv.addr)
	meta := map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "stdio-modern", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": map[string]any{"extensions": map[string]any{"io.modelcontextprotocol/tasks": map[string]any{}}},
	}
	disc := p.call("server/discover", map[string]any{"_meta": meta})
	versions := fmt.Sprint(disc["supportedVersions"])
	exts, _ := disc["capabilities"].(map[string]any)["extensions"].(map[string]any)
	if !strings.Contains(versions, "2026-07-28") || !strings.Contains(versions, "2025-11-25") || exts["io.modelcontextprotocol/tasks"] == nil {
		t.Fatalf("server/discover over stdio: %v", disc)
	}
	created := p.call("tools/call", map[string]any{"_meta": meta, "name": "wait_for_event",
		"arguments": map[string]any{"source": "stripe", "match": map[string]any{"data.object.payment_link": "plink_modern_stdio"}}})
	taskID, _ := created["taskId"].(string)
	if created["resultType"] != "task" || created["status"] != "working" || taskID == "" {
		t.Fatalf("CreateTaskResult over stdio: %v", created)
	}
	listenID := p.send("subscriptions/listen", map[string]any{"_meta": meta, "notifications": map[string]any{"taskIds": []string{taskID}}}, false)
	p.await("notifications/subscriptions/acknowledged", func(m map[string]any) bool {
		return m["method"] == "notifications/subscriptions/acknowledged"
	})
	evID := sendSigned(t, srv.addr, "stripe", "evt_modern_stdio", "checkout.session.completed", "plink_modern_stdio")
	note := p.await("notifications/tasks completed", func(m map[string]any) bool {
		params, _ := m["params"].(map[string]any)
		return m["method"] == "notifications/tasks" && params["taskId"] == taskID && params["status"] == "completed"
	})
	if sub := note["params"].(map[string]any)["_meta"].(map[string]any)["io.modelcontextprotocol/subscriptionId"]; sub != float64(listenID) {
		t.Errorf("notification subscriptionId %v, want the listen id %d", sub, listenID)
	}
	got := p.call("tasks/get", map[string]any{"_meta": meta, "taskId": taskID})
	sc, _ := got["result"].(map[string]any)["structuredContent"].(map[string]any)
	if ev, _ := sc["event"].(map[string]any); got["status"] != "completed" || ev["event_id"] != evID {
		t.Errorf("tasks/get over stdio: %v", got)
	}
	if ack := p.call("tasks/cancel", map[string]any{"_meta": meta, "taskId": taskID}); ack["resultType"] != "complete" {
		t.Errorf("tasks/cancel over stdio: %v", ack)
	}

	// Unknown methods are JSON-RPC -32601, modern and after a legacy
	// handshake (the bridge used to turn the latter into -32603).
	unknown := func(params map[string]any) any {
		id := p.send("no/such/method", params, false)
		m := p.await("no/such/method answer", func(m map[string]any) bool { return m["id"] == float64(id) })
		e, _ := m["error"].(map[string]any)
		return e["code"]
	}
	if code := unknown(map[string]any{"_meta": meta}); code != float64(-32601) {
		t.Errorf("unknown method, 2026-07-28: code %v", code)
	}
	init := p.call("initialize", map[string]any{"protocolVersion": "2026-07-28", "clientInfo": map[string]any{"name": "stdio-modern", "version": "1"}, "capabilities": map[string]any{}})
	if init["protocolVersion"] != "2025-11-25" {
		t.Errorf("an initialize offering 2026-07-28 negotiates %v, want 2025-11-25 (the handshake's newest)", init["protocolVersion"])
	}
	p.send("notifications/initialized", map[string]any{}, true)
	if code := unknown(map[string]any{}); code != float64(-32601) {
		t.Errorf("unknown method, 2025-11-25: code %v", code)
	}
}
