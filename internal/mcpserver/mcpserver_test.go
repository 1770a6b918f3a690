package mcpserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/httpguard"
	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/mcpserver"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/task"
	"github.com/mailroomhq/mailroom/internal/verify"
)

const stripeSecret = "whsec_mcp_test"

// env is a real mailroom on loopback: SQLite, ingest at /e/, MCP at /mcp.
type env struct {
	t     testing.TB
	store store.Store
	url   string
	mcp   *mcpserver.Server
	tasks *task.Tasks
	cat   *catalog.Catalog
	// stop shuts the server down; it also runs at cleanup.
	stop func()
}

func newEnv(t testing.TB, dbPath string, httpOpts *mcpserver.HTTPOptions) *env {
	t.Helper()
	return newEnvOpts(t, dbPath, httpOpts, &mcpserver.Options{SyncWait: 2 * time.Second, PollInterval: 100 * time.Millisecond})
}

func newEnvOpts(t testing.TB, dbPath string, httpOpts *mcpserver.HTTPOptions, opts *mcpserver.Options) *env {
	t.Helper()
	return newEnvAt(t, dbPath, func(string, *http.ServeMux) *mcpserver.HTTPOptions { return httpOpts }, opts)
}

// newEnvAt is newEnvOpts with HTTP options made once the server's URL is
// known (an OAuth resource URL names it); the function may add routes.
func newEnvAt(t testing.TB, dbPath string, httpOpts func(url string, mux *http.ServeMux) *mcpserver.HTTPOptions, opts *mcpserver.Options) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "mailroom.db")
	}
	st, err := sqlite.Open(ctx, dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SourceUpsert(ctx, &store.Source{Name: "stripe", Verify: verify.Config{Type: "stripe", Secret: stripeSecret}}); err != nil {
		t.Fatal(err)
	}
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(st, compiler, nil)
	if err := cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	tasks := task.New(st, cat, nil)
	srv, err := mcpserver.New(st, cat, tasks, opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ingest.New(st, cat, nil).Register(mux)
	// The guard cmd/mailroom puts in front of /mcp (Host and Origin checks).
	hs := httptest.NewServer(httpguard.New(&httpguard.Options{Listen: "127.0.0.1:0", Public: []string{"/e/", "/.well-known/"}}).Handler(mux))
	mux.Handle("/mcp", srv.HTTPHandler(httpOpts(hs.URL, mux)))
	done := make(chan struct{})
	var loops sync.WaitGroup
	loops.Go(func() { srv.Run(ctx) })
	loops.Go(func() { tasks.Run(ctx) })
	go func() { defer close(done); loops.Wait() }()
	go cat.Run(ctx)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			hs.CloseClientConnections()
			hs.Close()
			cancel()
			<-done
			st.Close()
		})
	}
	t.Cleanup(stop)
	return &env{t: t, store: st, url: hs.URL, mcp: srv, tasks: tasks, cat: cat, stop: stop}
}

// waitConnections waits until the catalog, which reloads on its own
// after a change to the store, routes n connections.
func (e *env) waitConnections(n int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.cat.Current().Connections) != n {
		if time.Now().After(deadline) {
			e.t.Fatalf("the catalog routes %d connections after 10 s, want %d", len(e.cat.Current().Connections), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sendStripe posts a signed Stripe webhook and returns the event id.
func (e *env) sendStripe(id, typ, link string) string {
	e.t.Helper()
	return e.sendStripeBody(fmt.Sprintf(`{"id":%q,"type":%q,"data":{"object":{"id":"cs_1","payment_link":%q}}}`, id, typ, link))
}

// rpcClient speaks raw JSON-RPC over Streamable HTTP, so tests see the wire.
type rpcClient struct {
	t       testing.TB
	url     string
	modern  bool
	session string
	token   string
	nextID  atomic.Int64
	// tasksExt declares the Tasks extension on modern requests.
	tasksExt bool
}

type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result map[string]any  `json:"result"`
	Params map[string]any  `json:"params"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func (c *rpcClient) meta() map[string]any {
	caps := map[string]any{}
	if c.tasksExt {
		caps["extensions"] = map[string]any{mcpserver.TasksExtension: map[string]any{}}
	}
	return map[string]any{
		"io.modelcontextprotocol/protocolVersion":    mcpserver.ProtocolModern,
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "raw-test", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": caps,
	}
}

// post sends one message and returns every message of the response.
func (c *rpcClient) post(ctx context.Context, method string, params map[string]any, notify bool) (*http.Response, []rpcResponse) {
	c.t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	msg := map[string]any{"jsonrpc": "2.0", "method": method, "params": params}
	if c.modern {
		params["_meta"] = c.meta()
	}
	if !notify {
		msg["id"] = c.nextID.Add(1)
	}
	b, _ := json.Marshal(msg)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/mcp", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.modern {
		req.Header.Set("Mcp-Protocol-Version", mcpserver.ProtocolModern)
		req.Header.Set("Mcp-Method", method)
		if name, ok := params["name"].(string); ok {
			req.Header.Set("Mcp-Name", name)
		}
		if id, ok := params["taskId"].(string); ok {
			req.Header.Set("Mcp-Name", id)
		}
	} else {
		req.Header.Set("Mcp-Protocol-Version", mcpserver.ProtocolLegacy)
		if c.session != "" {
			req.Header.Set("Mcp-Session-Id", c.session)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	if s := resp.Header.Get("Mcp-Session-Id"); s != "" {
		c.session = s
	}
	if method == "subscriptions/listen" || (method == "events/stream" && resp.Header.Get("Content-Type") == "text/event-stream") {
		return resp, nil // the caller reads the stream
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
		(resp.StatusCode == http.StatusBadRequest && !strings.Contains(resp.Header.Get("Content-Type"), "json")) {
		resp.Body.Close()
		return resp, nil
	}
	defer resp.Body.Close()
	return resp, readMessages(c.t, resp)
}

func readMessages(t testing.TB, resp *http.Response) []rpcResponse {
	t.Helper()
	var out []rpcResponse
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && data != "" { // empty: a priming event
				var m rpcResponse
				if err := json.Unmarshal([]byte(data), &m); err != nil {
					t.Fatalf("bad SSE data %q: %v", data, err)
				}
				out = append(out, m)
			}
		}
		return out
	}
	b, _ := io.ReadAll(resp.Body)
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var m rpcResponse
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("bad JSON response %d %q: %v", resp.StatusCode, b, err)
	}
	return []rpcResponse{m}
}

// call sends a request and returns its response message.
func (c *rpcClient) call(method string, params map[string]any) rpcResponse {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, msgs := c.post(ctx, method, params, false)
	for _, m := range msgs {
		if len(m.ID) > 0 && m.Method == "" {
			return m
		}
	}
	c.t.Fatalf("%s: no response in %+v", method, msgs)
	return rpcResponse{}
}

func (c *rpcClient) initialize() rpcResponse {
	c.t.Helper()
	r := c.call("initialize", map[string]any{
		"protocolVersion": mcpserver.ProtocolLegacy, "clientInfo": map[string]any{"name": "raw-test", "version": "1"},
		"capabilities": map[string]any{"tasks": map[string]any{}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.post(ctx, "notifications/initialized", nil, true)
	return r
}

// openStream opens the legacy GET stream and returns its messages.
func (c *rpcClient) openStream(ctx context.Context) <-chan rpcResponse {
	c.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/mcp", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", c.session)
	req.Header.Set("Mcp-Protocol-Version", mcpserver.ProtocolLegacy)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET stream: %d", resp.StatusCode)
	}
	return sseMessages(resp)
}

func sseMessages(resp *http.Response) <-chan rpcResponse {
	ch := make(chan rpcResponse, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m rpcResponse
				if json.Unmarshal([]byte(data), &m) == nil {
					ch <- m
				}
			}
		}
	}()
	return ch
}

// waitFor returns the first message on ch for which ok is true.
func waitFor(t testing.TB, ch <-chan rpcResponse, what string, ok func(rpcResponse) bool) rpcResponse {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m, open := <-ch:
			if !open {
				t.Fatalf("stream closed before %s", what)
			}
			if ok(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s within 15s", what)
		}
	}
}

func waitArgs(link string) map[string]any {
	return map[string]any{"source": "stripe", "type": "checkout.session.completed", "match": map[string]any{"data.object.payment_link": link}}
}

func structuredEventID(t testing.TB, result map[string]any) string {
	t.Helper()
	sc, _ := result["structuredContent"].(map[string]any)
	ev, _ := sc["event"].(map[string]any)
	id, _ := ev["event_id"].(string)
	if sc["status"] != "matched" || id == "" {
		t.Fatalf("result is not a matched event: %v", result)
	}
	return id
}

// TestLegacyTaskRoundTrip: 2025-11-25 task-augmented tools/call, a signed
// webhook, notifications/tasks/status on the GET stream, tasks/result.
func TestLegacyTaskRoundTrip(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url}
	init := c.initialize()
	caps, _ := init.Result["capabilities"].(map[string]any)
	tasksCap, _ := caps["tasks"].(map[string]any)
	if tasksCap["requests"] == nil || tasksCap["list"] == nil || tasksCap["cancel"] == nil {
		t.Fatalf("initialize capabilities: %v", caps)
	}
	if _, ok := caps["extensions"]; ok {
		t.Errorf("legacy initialize advertises extensions: %v", caps)
	}
	tools := c.call("tools/list", nil)
	found := false
	for _, tl := range tools.Result["tools"].([]any) {
		tm := tl.(map[string]any)
		if tm["name"] == "wait_for_event" {
			found = true
			if ex, _ := tm["execution"].(map[string]any); ex["taskSupport"] != "optional" {
				t.Errorf("wait_for_event execution: %v", tm["execution"])
			}
		}
	}
	if !found {
		t.Fatal("no wait_for_event tool")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := c.openStream(ctx)

	created := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_legacy"), "task": map[string]any{"ttl": 60000}})
	task, _ := created.Result["task"].(map[string]any)
	taskID, _ := task["taskId"].(string)
	if created.Error != nil || !strings.HasPrefix(taskID, "task_") || task["status"] != "working" || task["ttl"] != float64(60000) {
		t.Fatalf("CreateTaskResult: %+v", created)
	}
	got := c.call("tasks/get", map[string]any{"taskId": taskID})
	if got.Result["status"] != "working" {
		t.Fatalf("tasks/get before the webhook: %+v", got)
	}
	e.sendStripe("evt_other", "checkout.session.completed", "plink_someone_else")
	evID := e.sendStripe("evt_legacy", "checkout.session.completed", "plink_legacy")

	note := waitFor(t, stream, "notifications/tasks/status completed", func(m rpcResponse) bool {
		return m.Method == "notifications/tasks/status" && m.Params["taskId"] == taskID && m.Params["status"] == "completed"
	})
	_ = note
	res := c.call("tasks/result", map[string]any{"taskId": taskID})
	if res.Error != nil {
		t.Fatalf("tasks/result: %+v", res.Error)
	}
	if id := structuredEventID(t, res.Result); id != evID {
		t.Errorf("completed by %s, want %s", id, evID)
	}
	meta, _ := res.Result["_meta"].(map[string]any)
	if rel, _ := meta["io.modelcontextprotocol/related-task"].(map[string]any); rel["taskId"] != taskID {
		t.Errorf("tasks/result _meta: %v", res.Result["_meta"])
	}
	list := c.call("tasks/list", nil)
	if ts, _ := list.Result["tasks"].([]any); len(ts) != 1 {
		t.Errorf("tasks/list: %+v", list.Result)
	}
	// Cancelling a terminal task is an error; an unknown task is -32602.
	if r := c.call("tasks/cancel", map[string]any{"taskId": taskID}); r.Error == nil || r.Error.Code != -32602 {
		t.Errorf("cancel of completed task: %+v", r)
	}
	if r := c.call("tasks/get", map[string]any{"taskId": "task_nope"}); r.Error == nil || r.Error.Code != -32602 {
		t.Errorf("unknown task: %+v", r)
	}
}

// TestModernTaskRoundTrip: 2026-07-28 with the Tasks extension: the server
// answers a flat CreateTaskResult, notifications/tasks arrive over
// subscriptions/listen, and tasks/get carries the result inline.
func TestModernTaskRoundTrip(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url, modern: true, tasksExt: true}
	disc := c.call("server/discover", nil)
	caps, _ := disc.Result["capabilities"].(map[string]any)
	if exts, _ := caps["extensions"].(map[string]any); exts[mcpserver.TasksExtension] == nil {
		t.Fatalf("discover: %+v", disc)
	}
	created := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_modern")})
	taskID, _ := created.Result["taskId"].(string)
	if created.Error != nil || created.Result["resultType"] != "task" || created.Result["status"] != "working" || taskID == "" {
		t.Fatalf("CreateTaskResult: %+v", created)
	}
	if _, ok := created.Result["ttlMs"]; !ok {
		t.Errorf("no ttlMs: %v", created.Result)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, _ := c.post(ctx, "subscriptions/listen", map[string]any{"notifications": map[string]any{"taskIds": []string{taskID, "task_not_mine"}}}, false)
	stream := sseMessages(resp)
	ack := waitFor(t, stream, "acknowledged", func(m rpcResponse) bool { return m.Method == "notifications/subscriptions/acknowledged" })
	agreed, _ := ack.Params["notifications"].(map[string]any)["taskIds"].([]any)
	if len(agreed) != 1 || agreed[0] != taskID {
		t.Errorf("ack: %v", ack.Params)
	}
	evID := e.sendStripe("evt_modern", "checkout.session.completed", "plink_modern")
	note := waitFor(t, stream, "notifications/tasks completed", func(m rpcResponse) bool {
		return m.Method == "notifications/tasks" && m.Params["status"] == "completed"
	})
	if id := structuredEventID(t, note.Params["result"].(map[string]any)); id != evID {
		t.Errorf("notification result event %s, want %s", id, evID)
	}
	got := c.call("tasks/get", map[string]any{"taskId": taskID})
	if got.Result["resultType"] != "complete" || got.Result["status"] != "completed" {
		t.Fatalf("tasks/get: %+v", got)
	}
	structuredEventID(t, got.Result["result"].(map[string]any))
	if r := c.call("tasks/update", map[string]any{"taskId": taskID, "inputResponses": map[string]any{}}); r.Error != nil || r.Result["resultType"] != "complete" {
		t.Errorf("tasks/update: %+v", r)
	}
	if r := c.call("tasks/cancel", map[string]any{"taskId": taskID}); r.Error != nil || r.Result["resultType"] != "complete" {
		t.Errorf("tasks/cancel of terminal task acks: %+v", r)
	}

	// A client without the extension cannot use tasks/get or listen for tasks.
	plain := &rpcClient{t: t, url: e.url, modern: true}
	if r := plain.call("tasks/get", map[string]any{"taskId": taskID}); r.Error == nil || r.Error.Code != -32021 {
		t.Errorf("tasks/get without the extension: %+v", r)
	}
}

// TestEventBeforeWait: the look-back finds an event that arrived before
// the wait was registered.
func TestEventBeforeWait(t *testing.T) {
	e := newEnv(t, "", nil)
	evID := e.sendStripe("evt_early", "checkout.session.completed", "plink_early")
	c := &rpcClient{t: t, url: e.url, modern: true, tasksExt: true}
	created := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_early")})
	taskID := created.Result["taskId"].(string)
	got := pollDone(t, c, taskID)
	if id := structuredEventID(t, got.Result["result"].(map[string]any)); id != evID {
		t.Errorf("completed by %s, want %s", id, evID)
	}
}

func pollDone(t testing.TB, c *rpcClient, taskID string) rpcResponse {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := c.call("tasks/get", map[string]any{"taskId": taskID})
		if s, _ := got.Result["status"].(string); s != "working" || got.Error != nil {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still working", taskID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTwoWaitsOneEvent: one event completes every wait it matches, each
// exactly once; racing duplicates cannot complete a task twice.
func TestTwoWaitsOneEvent(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url, modern: true, tasksExt: true}
	var ids []string
	for range 2 {
		r := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_shared")})
		ids = append(ids, r.Result["taskId"].(string))
	}
	evID := e.sendStripe("evt_shared", "checkout.session.completed", "plink_shared")
	e.sendStripe("evt_shared_2", "checkout.session.completed", "plink_shared")
	for _, id := range ids {
		got := pollDone(t, c, id)
		if eid := structuredEventID(t, got.Result["result"].(map[string]any)); eid != evID {
			t.Errorf("task %s completed by %s, want the first event %s", id, eid, evID)
		}
	}
}

// TestCancelAndTimeout: cancelling a task stops its wait at once (the
// correlator drops it), so its event, which another wait proves was
// correlated, leaves it cancelled; a wait with a timeout ends with the
// timed-out tool result.
func TestCancelAndTimeout(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url}
	c.initialize()
	r := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_cancel"), "task": map[string]any{}})
	id := r.Result["task"].(map[string]any)["taskId"].(string)
	if n := e.tasks.Len(); n != 1 {
		t.Fatalf("%d waits indexed before the cancel, want 1", n)
	}
	if r := c.call("tasks/cancel", map[string]any{"taskId": id}); r.Error != nil || r.Result["status"] != "cancelled" {
		t.Fatalf("cancel: %+v", r)
	}
	if n := e.tasks.Len(); n != 0 {
		t.Errorf("%d waits still indexed after the cancel", n)
	}
	witness := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_cancel"), "task": map[string]any{}})
	witnessID := witness.Result["task"].(map[string]any)["taskId"].(string)
	e.sendStripe("evt_cancel", "checkout.session.completed", "plink_cancel")
	if res := c.call("tasks/result", map[string]any{"taskId": witnessID}); res.Error != nil {
		t.Fatalf("the witness wait: %+v", res.Error)
	}
	if got := c.call("tasks/get", map[string]any{"taskId": id}); got.Result["status"] != "cancelled" {
		t.Errorf("after the event: %+v", got.Result)
	}
	if res := c.call("tasks/result", map[string]any{"taskId": id}); res.Error == nil {
		t.Errorf("tasks/result of a cancelled task: %+v", res)
	}

	args := waitArgs("plink_never")
	args["timeout"] = "1s"
	r = c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": args, "task": map[string]any{"ttl": 30000}})
	id = r.Result["task"].(map[string]any)["taskId"].(string)
	res := c.call("tasks/result", map[string]any{"taskId": id})
	sc, _ := res.Result["structuredContent"].(map[string]any)
	if res.Error != nil || res.Result["isError"] != true || sc["status"] != "timed_out" || !strings.Contains(toolText(res.Result), "within 1s") {
		t.Fatalf("timed-out task result: %+v", res)
	}
	if got := c.call("tasks/get", map[string]any{"taskId": id}); got.Result["status"] != "failed" {
		t.Errorf("timed-out task: %+v", got.Result)
	}
}

// TestTTLExpiry: a task past its ttl is gone.
func TestTTLExpiry(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url}
	c.initialize()
	r := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_ttl"), "task": map[string]any{"ttl": 300}})
	id := r.Result["task"].(map[string]any)["taskId"].(string)
	time.Sleep(500 * time.Millisecond)
	if got := c.call("tasks/get", map[string]any{"taskId": id}); got.Error == nil || got.Error.Code != -32602 {
		t.Errorf("expired task: %+v", got)
	}
}

// TestRestartBetweenTaskAndWebhook: the task is in the store, so a new
// server on the same database completes it.
func TestRestartBetweenTaskAndWebhook(t *testing.T) {
	db := filepath.Join(t.TempDir(), "restart.db")
	first := newEnv(t, db, nil)
	c := &rpcClient{t: t, url: first.url, modern: true, tasksExt: true}
	r := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_restart")})
	taskID := r.Result["taskId"].(string)
	first.stop()

	e := newEnv(t, db, nil)
	evID := e.sendStripe("evt_restart", "checkout.session.completed", "plink_restart")
	c = &rpcClient{t: t, url: e.url, modern: true, tasksExt: true}
	got := pollDone(t, c, taskID)
	if id := structuredEventID(t, got.Result["result"].(map[string]any)); id != evID {
		t.Errorf("completed by %s, want %s", id, evID)
	}
}

// TestAuthAndOrigin: with tokens, /mcp needs one, tasks are per token, and
// foreign origins are refused.
func TestAuthAndOrigin(t *testing.T) {
	e := newEnv(t, "", &mcpserver.HTTPOptions{Auth: mcpauth.NewGuard(mcpauth.GuardOptions{Static: map[string]access.Principal{
		"tok-alice": {TokenID: "alice", Name: "alice", Role: access.RoleMCP},
		"tok-bob":   {TokenID: "bob", Name: "bob", Role: access.RoleMCP},
	}})})
	anon := &rpcClient{t: t, url: e.url, modern: true, tasksExt: true}
	ctx := context.Background()
	if resp, _ := anon.post(ctx, "server/discover", nil, false); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	alice := &rpcClient{t: t, url: e.url, modern: true, tasksExt: true, token: "tok-alice"}
	bob := &rpcClient{t: t, url: e.url, modern: true, tasksExt: true, token: "tok-bob"}
	r := alice.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_auth")})
	id := r.Result["taskId"].(string)
	if got := bob.call("tasks/get", map[string]any{"taskId": id}); got.Error == nil || got.Error.Code != -32602 {
		t.Errorf("bob sees alice's task: %+v", got)
	}
	if got := alice.call("tasks/get", map[string]any{"taskId": id}); got.Error != nil {
		t.Errorf("alice: %+v", got.Error)
	}
	// A wrong token is refused; another token can neither cancel nor
	// read the result of a task that is not its own.
	mallory := &rpcClient{t: t, url: e.url, modern: true, tasksExt: true, token: "tok-mallory"}
	if resp, _ := mallory.post(ctx, "server/discover", nil, false); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	if got := bob.call("tasks/cancel", map[string]any{"taskId": id}); got.Error == nil {
		t.Errorf("bob cancelled alice's task: %+v", got.Result)
	}
	if got := bob.call("tasks/result", map[string]any{"taskId": id}); got.Error == nil {
		t.Errorf("bob read alice's task result: %+v", got.Result)
	}
	if got := alice.call("tasks/get", map[string]any{"taskId": id}); got.Error != nil || strings.Contains(fmt.Sprint(got.Result), "cancelled") {
		t.Errorf("alice's task after bob's attempts: %+v %+v", got.Result, got.Error)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url+"/mcp", strings.NewReader(`{}`))
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Authorization", "Bearer tok-alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: %d", resp.StatusCode)
	}
}
