package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/mcpserver"
)

// TestMain lets this test binary double as a stdio MCP upstream.
func TestMain(m *testing.M) {
	if os.Getenv("MAILROOM_FAKE_VENDOR") == "stdio" {
		if err := fakeVendor().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type linkArgs struct {
	Amount int `json:"amount"`
}

type link struct {
	ID  string `json:"id"`
	URL string `json:"url"`
}

var linkSeq atomic.Int64

// fakeVendor is a payments vendor's MCP server that knows nothing of
// webhooks: create_payment_link answers "link created" and that is all.
func fakeVendor() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "fake-payments", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "create_payment_link", Description: "Create a payment link"},
		func(ctx context.Context, _ *mcp.CallToolRequest, a linkArgs) (*mcp.CallToolResult, link, error) {
			id := fmt.Sprintf("plink_%d_%d", os.Getpid(), linkSeq.Add(1))
			return nil, link{ID: id, URL: "https://pay.example/" + id}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "get_balance", Description: "The account balance"},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, map[string]int, error) {
			return nil, map[string]int{"balance": 4200}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "Takes its time"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, map[string]string, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Message: "working"})
			}
			select {
			case <-time.After(3 * time.Second):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return nil, map[string]string{"done": "yes"}, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "refund_policy", Description: "How refunds work"}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "Refunds take 5 days."}}}}, nil
	})
	return s
}

func payRules() []mcpserver.AsyncTool {
	return []mcpserver.AsyncTool{{
		Tool: "pay__create_payment_link", Source: "stripe", Type: "checkout.session.completed",
		Match:   map[string]string{"data.object.payment_link": "result.structuredContent.id"},
		Timeout: time.Hour,
		Fail: &mcpserver.AsyncFail{Type: "payment_intent.payment_failed",
			Match: map[string]string{"data.object.payment_link": "result.structuredContent.id"}},
	}}
}

func proxyEnv(t *testing.T, up mcpserver.Upstream) *env {
	t.Helper()
	return newEnvOpts(t, "", nil, &mcpserver.Options{SyncWait: 2 * time.Second, PollInterval: 100 * time.Millisecond,
		Upstreams: []mcpserver.Upstream{up}, AsyncTools: payRules()})
}

func httpVendor(t *testing.T) *httptest.Server {
	v := fakeVendor()
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return v }, nil))
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close() })
	return hs
}

func waitTools(t *testing.T, c *rpcClient, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.call("tools/list", nil)
		have := map[string]bool{}
		for _, tl := range r.Result["tools"].([]any) {
			have[tl.(map[string]any)["name"].(string)] = true
		}
		ok := true
		for _, w := range want {
			ok = ok && have[w]
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tools %v not all listed: %v", want, have)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func linkOf(t *testing.T, upstream any) string {
	t.Helper()
	b, _ := json.Marshal(upstream)
	var r struct {
		StructuredContent link `json:"structuredContent"`
	}
	json.Unmarshal(b, &r)
	if r.StructuredContent.ID == "" {
		t.Fatalf("no link in upstream result %s", b)
	}
	return r.StructuredContent.ID
}

// TestProxyAsyncToolModern: through mailroom, the vendor's plain tool is
// forwarded unchanged, and create_payment_link returns a task (2026-07-28
// extension) that completes with the link and the paid session.
func TestProxyAsyncToolModern(t *testing.T) {
	e := proxyEnv(t, mcpserver.Upstream{Name: "pay", URL: httpVendor(t).URL})
	c := &rpcClient{t: t, url: e.url, modern: true, tasksExt: true}
	waitTools(t, c, "pay__create_payment_link", "pay__get_balance", "wait_for_event")

	bal := c.call("tools/call", map[string]any{"name": "pay__get_balance", "arguments": map[string]any{}})
	if sc, _ := bal.Result["structuredContent"].(map[string]any); sc["balance"] != float64(4200) {
		t.Errorf("forwarded result changed: %+v", bal.Result)
	}
	created := c.call("tools/call", map[string]any{"name": "pay__create_payment_link", "arguments": map[string]any{"amount": 1200}})
	taskID, _ := created.Result["taskId"].(string)
	if created.Error != nil || created.Result["resultType"] != "task" || taskID == "" {
		t.Fatalf("CreateTaskResult: %+v", created)
	}
	// The link id is in the task's status; find it from the API-visible task.
	got := c.call("tasks/get", map[string]any{"taskId": taskID})
	if got.Result["status"] != "working" {
		t.Fatalf("task before payment: %+v", got.Result)
	}
	tasks, err := e.store.TaskGet(context.Background(), taskID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var stored struct {
		Upstream json.RawMessage `json:"upstream"`
	}
	json.Unmarshal(tasks.Arguments, &stored)
	plink := linkOf(t, stored.Upstream)
	if msg, _ := got.Result["statusMessage"].(string); !strings.Contains(msg, plink) {
		t.Errorf("the working task does not show the vendor's link: %q", msg)
	}

	evID := e.sendStripe("evt_paid_"+plink, "checkout.session.completed", plink)
	done := pollDone(t, c, taskID)
	res, _ := done.Result["result"].(map[string]any)
	sc, _ := res["structuredContent"].(map[string]any)
	ev, _ := sc["event"].(map[string]any)
	if done.Result["status"] != "completed" || ev["event_id"] != evID || linkOf(t, sc["upstream"]) != plink {
		t.Fatalf("completed task: %+v", done.Result)
	}
}

// TestProxyAsyncToolLegacyFailureEvent: the 2025-11-25 form, failed by the
// failure event a second rule names.
func TestProxyAsyncToolLegacyFailureEvent(t *testing.T) {
	e := proxyEnv(t, mcpserver.Upstream{Name: "pay", URL: httpVendor(t).URL})
	c := &rpcClient{t: t, url: e.url}
	c.initialize()
	waitTools(t, c, "pay__create_payment_link")
	tools := c.call("tools/list", nil)
	for _, tl := range tools.Result["tools"].([]any) {
		tm := tl.(map[string]any)
		if tm["name"] == "pay__create_payment_link" {
			if ex, _ := tm["execution"].(map[string]any); ex["taskSupport"] != "optional" {
				t.Errorf("async tool execution: %v", tm["execution"])
			}
		}
	}
	created := c.call("tools/call", map[string]any{"name": "pay__create_payment_link", "arguments": map[string]any{"amount": 5}, "task": map[string]any{"ttl": 60000}})
	taskID, _ := created.Result["task"].(map[string]any)["taskId"].(string)
	if taskID == "" {
		t.Fatalf("CreateTaskResult: %+v", created)
	}
	tk, _ := e.store.TaskGet(context.Background(), taskID, time.Time{})
	var stored struct {
		Upstream json.RawMessage `json:"upstream"`
	}
	json.Unmarshal(tk.Arguments, &stored)
	plink := linkOf(t, stored.Upstream)
	e.sendStripe("evt_failed_"+plink, "payment_intent.payment_failed", plink)
	res := c.call("tasks/result", map[string]any{"taskId": taskID})
	if res.Error == nil || !strings.Contains(res.Error.Message, "failure event") {
		t.Fatalf("tasks/result of a failed payment: %+v", res)
	}
	if got := c.call("tasks/get", map[string]any{"taskId": taskID}); got.Result["status"] != "failed" {
		t.Errorf("status: %+v", got.Result)
	}
}

// TestProxyStdioUpstreamAndSlowCalls: a stdio upstream (this test binary);
// a slow upstream call does not block others, and its progress passes
// through; without task support the async tool answers with the event.
func TestProxyStdioUpstreamAndSlowCalls(t *testing.T) {
	e := proxyEnv(t, mcpserver.Upstream{Name: "pay", Command: []string{os.Args[0]}, Env: map[string]string{"MAILROOM_FAKE_VENDOR": "stdio"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	progress := make(chan string, 4)
	client := mcp.NewClient(&mcp.Implementation{Name: "proxy-test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) { progress <- r.Params.Message },
	})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp"}, &mcp.ClientSessionOptions{ProtocolVersion: mcpserver.ProtocolLegacy})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	waitTools(t, &rpcClient{t: t, url: e.url, modern: true}, "pay__slow", "pay__get_balance")

	slowDone := make(chan error, 1)
	go func() {
		p := &mcp.CallToolParams{Name: "pay__slow", Arguments: map[string]any{}}
		p.SetProgressToken("tok-1")
		_, err := cs.CallTool(ctx, p)
		slowDone <- err
	}()
	select {
	case msg := <-progress:
		if msg != "working" {
			t.Errorf("progress message %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Error("upstream progress not passed through")
	}
	start := time.Now()
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "pay__get_balance", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a fast call waited %s behind a slow one", d)
	}
	if err := <-slowDone; err != nil {
		t.Errorf("slow call: %v", err)
	}
	pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "pay__refund_policy"})
	if err != nil || len(pr.Messages) != 1 {
		t.Errorf("forwarded prompt: %v %+v", err, pr)
	}

	// Synchronous async tool: the payment lands while the call waits.
	type out struct {
		res *mcp.CallToolResult
		err error
	}
	ch := make(chan out, 1)
	go func() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "pay__create_payment_link", Arguments: map[string]any{"amount": 1}})
		ch <- out{res, err}
	}()
	// No payment comes within the bounded wait: the answer carries the
	// vendor's result and the wait_for_event call that keeps waiting.
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	b, _ := json.Marshal(r.res.StructuredContent)
	var waiting struct {
		Status   string          `json:"status"`
		Upstream json.RawMessage `json:"upstream"`
		Next     struct {
			Tool string `json:"tool"`
		} `json:"next"`
	}
	json.Unmarshal(b, &waiting)
	if waiting.Status != "waiting" || waiting.Next.Tool != "wait_for_event" {
		t.Fatalf("synchronous async tool without an event: %s", b)
	}
	plink := linkOf(t, waiting.Upstream)
	e.sendStripe("evt_sync_paid", "checkout.session.completed", plink)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "wait_for_event", Arguments: map[string]any{
		"source": "stripe", "type": "checkout.session.completed", "match": map[string]any{"data.object.payment_link": plink}, "since": "1m"}})
	if err != nil || !strings.Contains(fmt.Sprint(res.StructuredContent), "evt_") {
		t.Errorf("wait_for_event after the proxied call: %v %+v", err, res)
	}
}

// TestProxyUpstreamDiesMidCall: the upstream goes away during a call; the
// agent gets a clear MCP error naming the upstream, and mailroom serves on.
func TestProxyUpstreamDiesMidCall(t *testing.T) {
	v := httpVendor(t)
	e := proxyEnv(t, mcpserver.Upstream{Name: "pay", URL: v.URL, Timeout: 5 * time.Second})
	c := &rpcClient{t: t, url: e.url, modern: true}
	waitTools(t, c, "pay__slow")
	go func() {
		time.Sleep(300 * time.Millisecond)
		v.CloseClientConnections()
		v.Close()
	}()
	r := c.call("tools/call", map[string]any{"name": "pay__slow", "arguments": map[string]any{}})
	msg := ""
	if r.Error != nil {
		msg = r.Error.Message
	} else if r.Result["isError"] == true {
		msg = fmt.Sprint(r.Result["content"])
	}
	if !strings.Contains(msg, `upstream MCP server "pay"`) {
		t.Fatalf("call to a dying upstream: %+v %q", r, msg)
	}
	if got := c.call("tools/call", map[string]any{"name": "list_sources", "arguments": map[string]any{}}); got.Error != nil {
		t.Errorf("mailroom's own tools after the upstream died: %+v", got.Error)
	}
}
