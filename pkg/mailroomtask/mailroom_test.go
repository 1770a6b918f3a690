package mailroomtask_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/task"
	"github.com/mailroomhq/mailroom/internal/verify"
	"github.com/mailroomhq/mailroom/pkg/mailroomtask"
)

// mailroom is a real mailroom in this process: SQLite, the task service,
// the admin API (whose /api/v1/tasks the library calls) and ingest, with
// one source, "pay", that takes unsigned webhooks.
type mailroom struct {
	url  string
	stop func()
}

// fataler is the part of testing.TB the helpers use; examples pass an
// [exampleTB].
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

func startMailroom(tb fataler) *mailroom {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "mailroom.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.SourceUpsert(ctx, &store.Source{Name: "pay", Verify: verify.Config{Type: "none"}}); err != nil {
		tb.Fatal(err)
	}
	compiler, err := route.NewCompiler()
	if err != nil {
		tb.Fatal(err)
	}
	cat := catalog.New(st, compiler, nil)
	if err := cat.Load(ctx); err != nil {
		tb.Fatal(err)
	}
	tasks := task.New(st, cat, nil)
	mux := http.NewServeMux()
	ingest.New(st, cat, nil).Register(mux)
	api.New(st, cat, &api.Options{Tasks: tasks}).Register(mux)
	hs := httptest.NewServer(mux)
	var loops sync.WaitGroup
	loops.Go(func() { tasks.Run(ctx) })
	loops.Go(func() { cat.Run(ctx) })
	var once sync.Once
	m := &mailroom{url: hs.URL}
	m.stop = func() {
		once.Do(func() {
			hs.CloseClientConnections()
			hs.Close()
			cancel()
			loops.Wait()
			st.Close()
		})
	}
	tb.Cleanup(m.stop)
	return m
}

// pay posts a "paid" webhook for link and returns the event id.
func (m *mailroom) pay(tb fataler, link string) string {
	tb.Helper()
	body := fmt.Sprintf(`{"type":"link.paid","link":%q}`, link)
	resp, err := http.Post(m.url+"/e/pay", "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		EventID string `json:"event_id"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 || out.EventID == "" {
		tb.Fatalf("webhook: %d", resp.StatusCode)
	}
	return out.EventID
}

// PayArgs is the input of the test server's pay_link tool.
type PayArgs struct {
	Link    string `json:"link"`
	Timeout string `json:"timeout,omitempty"`
}

// startToolServer is an MCP server built with the go-sdk whose pay_link
// tool waits, through mailroom, for its link to be paid.
func startToolServer(tb fataler, m *mailroom) (url string, stop func()) {
	tb.Helper()
	tasks, err := mailroomtask.New(m.url, &mailroomtask.Options{SyncWait: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "payments", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "balance"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "42"}}}, nil, nil
	})
	mailroomtask.AddTool(tasks, server, &mcp.Tool{Name: "pay_link", Description: "completes when the link is paid"},
		func(_ context.Context, _ *mcp.CallToolRequest, in PayArgs) (*mailroomtask.Wait, error) {
			if in.Link == "" {
				return nil, fmt.Errorf("link is required")
			}
			timeout, _ := time.ParseDuration(in.Timeout)
			return &mailroomtask.Wait{Source: "pay", Type: "link.paid", Match: map[string]any{"link": in.Link}, Timeout: timeout, Message: "waiting for " + in.Link}, nil
		})
	hs := httptest.NewServer(tasks.HTTPHandler(server, nil))
	var once sync.Once
	stop = func() {
		once.Do(func() {
			hs.CloseClientConnections()
			hs.Close()
			tasks.Close()
		})
	}
	tb.Cleanup(stop)
	return hs.URL, stop
}

// client speaks raw JSON-RPC to the tool server in one wire form.
type client struct {
	tb      testing.TB
	url     string
	modern  bool
	ext     bool // declare the Tasks extension (modern)
	session string
	id      int
}

type answer struct {
	Result map[string]any `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (c *client) call(method string, params map[string]any) answer {
	c.tb.Helper()
	if params == nil {
		params = map[string]any{}
	}
	c.id++
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}}
	if c.modern {
		caps := map[string]any{}
		if c.ext {
			caps["extensions"] = map[string]any{"io.modelcontextprotocol/tasks": map[string]any{}}
		}
		params["_meta"] = map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28",
			"io.modelcontextprotocol/clientInfo": map[string]any{"name": "t", "version": "1"}, "io.modelcontextprotocol/clientCapabilities": caps}
		h.Set("Mcp-Protocol-Version", "2026-07-28")
		h.Set("Mcp-Method", method)
		for _, k := range []string{"name", "taskId"} {
			if v, ok := params[k].(string); ok {
				h.Set("Mcp-Name", v)
			}
		}
	} else if c.session != "" {
		h.Set("Mcp-Session-Id", c.session)
		h.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(b))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	if s := resp.Header.Get("Mcp-Session-Id"); s != "" {
		c.session = s
	}
	raw, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(raw), "\n") { // an SSE answer: its data line
		if data, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(data, `"id"`) {
			raw = []byte(data)
		}
	}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		c.tb.Fatalf("%s: HTTP %d %q", method, resp.StatusCode, raw)
	}
	return a
}

func (c *client) initialize() {
	c.tb.Helper()
	c.call("initialize", map[string]any{"protocolVersion": "2025-11-25", "clientInfo": map[string]any{"name": "t", "version": "1"}, "capabilities": map[string]any{}})
	req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", c.session)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// createTask calls pay_link as a task in c's wire form and returns its id.
func (c *client) createTask(args map[string]any) string {
	c.tb.Helper()
	params := map[string]any{"name": "pay_link", "arguments": args}
	if !c.modern {
		params["task"] = map[string]any{"ttl": 60000}
	}
	a := c.call("tools/call", params)
	var id string
	if c.modern {
		if a.Result["resultType"] != "task" {
			c.tb.Fatalf("2026-07-28 CreateTaskResult: %+v", a)
		}
		id, _ = a.Result["taskId"].(string)
	} else {
		task, _ := a.Result["task"].(map[string]any)
		id, _ = task["taskId"].(string)
	}
	if id == "" {
		c.tb.Fatalf("no task: %+v %+v", a.Result, a.Error)
	}
	return id
}

// outcome waits for the task to end and returns its status and what the
// call returned: tasks/result (2025-11-25) or tasks/get's inline result.
func (c *client) outcome(id string) (status string, result map[string]any) {
	c.tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got := c.call("tasks/get", map[string]any{"taskId": id})
		status, _ = got.Result["status"].(string)
		if status == "working" {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if c.modern {
			result, _ = got.Result["result"].(map[string]any)
			return status, result
		}
		res := c.call("tasks/result", map[string]any{"taskId": id})
		return status, res.Result
	}
	c.tb.Fatalf("task %s still working", id)
	return "", nil
}

func eventOf(result map[string]any) string {
	sc, _ := result["structuredContent"].(map[string]any)
	ev, _ := sc["event"].(map[string]any)
	id, _ := ev["event_id"].(string)
	return id
}

func forms(tb testing.TB, url string) []*client {
	legacy := &client{tb: tb, url: url}
	legacy.initialize()
	return []*client{legacy, {tb: tb, url: url, modern: true, ext: true}}
}

// TestBothForms: each wire form declares Tasks, creates a task for
// pay_link, and ends it with the webhook's event.
func TestBothForms(t *testing.T) {
	m := startMailroom(t)
	url, _ := startToolServer(t, m)
	for _, c := range forms(t, url) {
		t.Run(fmt.Sprint("modern=", c.modern), func(t *testing.T) {
			c.tb = t
			if c.modern {
				disc := c.call("server/discover", nil)
				if exts, _ := disc.Result["capabilities"].(map[string]any)["extensions"].(map[string]any); exts["io.modelcontextprotocol/tasks"] == nil {
					t.Errorf("server/discover: %v", disc.Result)
				}
			} else {
				tools := c.call("tools/list", nil)
				for _, tl := range tools.Result["tools"].([]any) {
					tm := tl.(map[string]any)
					if tm["name"] == "pay_link" && fmt.Sprint(tm["execution"]) != "map[taskSupport:optional]" {
						t.Errorf("tools/list: %v", tm)
					}
				}
				// A tool that takes no task (taskSupport forbidden by default) refuses one.
				if a := c.call("tools/call", map[string]any{"name": "balance", "arguments": map[string]any{}, "task": map[string]any{}}); a.Error == nil || a.Error.Code != -32601 {
					t.Errorf("task request to a tool without task support: %+v", a)
				}
			}
			link := fmt.Sprint("plink_form_", c.modern)
			id := c.createTask(map[string]any{"link": link})
			evID := m.pay(t, link)
			status, result := c.outcome(id)
			if status != "completed" || eventOf(result) != evID {
				t.Errorf("status %s, result %v; want completed with %s", status, result, evID)
			}
		})
	}
	plain := &client{tb: t, url: url, modern: true} // no extension
	if a := plain.call("tasks/get", map[string]any{"taskId": "task_x"}); a.Error == nil || a.Error.Code != -32021 {
		t.Errorf("tasks/get without the extension: %+v", a)
	}
}

// TestStartFails: a call whose start function fails creates no task.
// 2025-11-25 answers the task-augmented call with a JSON-RPC error (its
// receiver returns a CreateTaskResult only for a request it accepts, and
// the TypeScript SDK client parses the answer as one); arguments the SDK
// refuses are -32602. 2026-07-28 answers what a plain call returns: an
// isError tool result with resultType complete.
func TestStartFails(t *testing.T) {
	m := startMailroom(t)
	url, _ := startToolServer(t, m)
	for _, c := range forms(t, url) {
		t.Run(fmt.Sprint("modern=", c.modern), func(t *testing.T) {
			c.tb = t
			call := func(args map[string]any) answer {
				params := map[string]any{"name": "pay_link", "arguments": args}
				if !c.modern {
					params["task"] = map[string]any{"ttl": 60000}
				}
				return c.call("tools/call", params)
			}
			a := call(map[string]any{"link": ""}) // the start function refuses it
			if c.modern {
				content, _ := a.Result["content"].([]any)
				if a.Error != nil || a.Result["resultType"] != "complete" || a.Result["isError"] != true || !strings.Contains(fmt.Sprint(content), "link is required") {
					t.Errorf("2026-07-28 start failure: %+v", a)
				}
				return
			}
			if a.Error == nil || a.Error.Code != -32603 || !strings.Contains(a.Error.Message, "link is required") || a.Result != nil {
				t.Errorf("2025-11-25 start failure: want JSON-RPC error -32603, got result %v error %+v", a.Result, a.Error)
			}
			a = call(map[string]any{}) // the SDK refuses the arguments
			if a.Error == nil || a.Error.Code != -32602 || !strings.Contains(a.Error.Message, "link") || a.Result != nil {
				t.Errorf("2025-11-25 bad arguments: want JSON-RPC error -32602, got result %v error %+v", a.Result, a.Error)
			}
			// The session still creates tasks.
			id := c.createTask(map[string]any{"link": "plink_after_failure"})
			evID := m.pay(t, "plink_after_failure")
			if status, result := c.outcome(id); status != "completed" || eventOf(result) != evID {
				t.Errorf("after a failure: status %s, result %v", status, result)
			}
		})
	}
}

// TestTimeout: a wait that runs out of time ends with the timed-out tool
// result (isError): a failed task whose tasks/result returns it on
// 2025-11-25, a completed task holding it on 2026-07-28.
func TestTimeout(t *testing.T) {
	m := startMailroom(t)
	url, _ := startToolServer(t, m)
	for _, c := range forms(t, url) {
		id := c.createTask(map[string]any{"link": "plink_never", "timeout": "1s"})
		status, result := c.outcome(id)
		want := "failed"
		if c.modern {
			want = "completed"
		}
		sc, _ := result["structuredContent"].(map[string]any)
		if status != want || result["isError"] != true || sc["status"] != "timed_out" {
			t.Errorf("modern=%v: status %s, result %v; want %s with the timed-out isError result", c.modern, status, result, want)
		}
	}
}

// TestCancel: tasks/cancel cancels the task in mailroom, so its webhook no
// longer completes it; 2025-11-25 then refuses a second cancel, 2026-07-28
// acknowledges it.
func TestCancel(t *testing.T) {
	m := startMailroom(t)
	url, _ := startToolServer(t, m)
	for _, c := range forms(t, url) {
		link := fmt.Sprint("plink_cancel_", c.modern)
		id := c.createTask(map[string]any{"link": link})
		if a := c.call("tasks/cancel", map[string]any{"taskId": id}); a.Error != nil {
			t.Fatalf("modern=%v cancel: %+v", c.modern, a.Error)
		}
		witness := c.createTask(map[string]any{"link": link})
		evID := m.pay(t, link)
		if _, res := c.outcome(witness); eventOf(res) != evID {
			t.Fatalf("modern=%v: the witness task did not see the event: %v", c.modern, res)
		}
		if got := c.call("tasks/get", map[string]any{"taskId": id}); got.Result["status"] != "cancelled" {
			t.Errorf("modern=%v: cancelled task is now %v", c.modern, got.Result["status"])
		}
		again := c.call("tasks/cancel", map[string]any{"taskId": id})
		if c.modern && (again.Error != nil || again.Result["resultType"] != "complete") {
			t.Errorf("2026-07-28 second cancel: %+v", again)
		}
		if !c.modern && (again.Error == nil || again.Error.Code != -32602) {
			t.Errorf("2025-11-25 second cancel: %+v", again)
		}
	}
}

// TestRestart: the task lives in mailroom, so a new MCP server process
// (new Tasks, new go-sdk server) answers for a task the old one created.
func TestRestart(t *testing.T) {
	m := startMailroom(t)
	first, stop := startToolServer(t, m)
	id := (&client{tb: t, url: first, modern: true, ext: true}).createTask(map[string]any{"link": "plink_restart"})
	stop()
	second, _ := startToolServer(t, m)
	evID := m.pay(t, "plink_restart")
	status, result := (&client{tb: t, url: second, modern: true, ext: true}).outcome(id)
	if status != "completed" || eventOf(result) != evID {
		t.Errorf("after the restart: %s %v", status, result)
	}
}

// exampleTB lets examples use the test helpers: failures panic, and
// Close runs the cleanups.
type exampleTB struct{ cleanups []func() }

func (*exampleTB) Helper()                           {}
func (*exampleTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (*exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleTB) Cleanup(f func())                { e.cleanups = append(e.cleanups, f) }

func (e *exampleTB) TempDir() string {
	dir, err := os.MkdirTemp("", "mailroomtask-example")
	if err != nil {
		panic(err)
	}
	e.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (e *exampleTB) Close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// TestTaskMcpName: on 2026-07-28 a tasks/get or tasks/cancel whose
// Mcp-Name is not its params.taskId is HTTP 400 with -32020, and the task
// is left alone.
func TestTaskMcpName(t *testing.T) {
	m := startMailroom(t)
	url, _ := startToolServer(t, m)
	c := &client{tb: t, url: url, modern: true, ext: true}
	id := c.createTask(map[string]any{"link": "plink_name"})
	for _, method := range []string{"tasks/get", "tasks/cancel"} {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":5,"method":%q,"params":{"taskId":%q,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}}}}`, method, id)
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", method)
		req.Header.Set("Mcp-Name", "task_other")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "-32020") {
			t.Errorf("%s with a mismatched Mcp-Name: %d %s", method, resp.StatusCode, raw)
		}
	}
	if got := c.call("tasks/get", map[string]any{"taskId": id}); got.Result["status"] != "working" {
		t.Errorf("the task after a mismatched cancel: %v", got.Result["status"])
	}
}
