package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
	"github.com/mailroomhq/mailroom/internal/mcpserver"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// TestGoSDKClient drives the server with the official go-sdk client on
// both protocol revisions: tools, a resource subscription notified by a
// webhook, and wait_for_event without task support (synchronous).
func TestGoSDKClient(t *testing.T) {
	for _, version := range []string{mcpserver.ProtocolLegacy, mcpserver.ProtocolModern} {
		t.Run(version, func(t *testing.T) {
			e := newEnv(t, "", nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			updated := make(chan string, 10)
			client := mcp.NewClient(&mcp.Implementation{Name: "go-sdk-test", Version: "1"}, &mcp.ClientOptions{
				ResourceUpdatedHandler: func(_ context.Context, r *mcp.ResourceUpdatedNotificationRequest) { updated <- r.Params.URI },
			})
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp"}, &mcp.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if got, want := cs.InitializeResult().ServerInfo.Version, buildinfo.Read().Version; got != want {
				t.Errorf("serverInfo.version = %q, want the build's %q", got, want)
			}
			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]bool{}
			for _, tl := range tools.Tools {
				names[tl.Name] = true
				if tl.OutputSchema == nil {
					t.Errorf("tool %s has no output schema", tl.Name)
				}
			}
			for _, want := range []string{"wait_for_event", "list_events", "get_event", "list_sources", "retry_delivery", "replay_event", "list_dead_deliveries"} {
				if !names[want] {
					t.Errorf("missing tool %s", want)
				}
			}
			uri := "mailroom://sources/stripe/events"
			if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // let a 2026 listen stream settle

			// A synchronous wait: the webhook lands while the call blocks.
			type callResult struct {
				res *mcp.CallToolResult
				err error
			}
			done := make(chan callResult, 1)
			go func() {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "wait_for_event", Arguments: map[string]any{
					"source": "stripe", "type": "checkout.session.completed", "match": map[string]any{"data.object.payment_link": "plink_sync"},
				}})
				done <- callResult{res, err}
			}()
			time.Sleep(200 * time.Millisecond)
			evID := e.sendStripe("evt_sync_"+version, "checkout.session.completed", "plink_sync")
			r := <-done
			if r.err != nil || r.res.IsError {
				t.Fatalf("wait_for_event: %v %+v", r.err, r.res)
			}
			var out struct {
				Status string `json:"status"`
				Event  struct {
					EventID string `json:"event_id"`
				} `json:"event"`
			}
			b, _ := json.Marshal(r.res.StructuredContent)
			json.Unmarshal(b, &out)
			if out.Status != "matched" || out.Event.EventID != evID {
				t.Errorf("wait_for_event result: %s", b)
			}
			select {
			case got := <-updated:
				if got != uri {
					t.Errorf("updated %s", got)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no notifications/resources/updated")
			}
			res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "mailroom://events/" + evID})
			if err != nil || len(res.Contents) != 1 {
				t.Fatalf("read event resource: %v %+v", err, res)
			}
			// No event within the bounded synchronous wait: a clear
			// "still waiting" result the agent can act on.
			res2, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "wait_for_event", Arguments: map[string]any{"source": "stripe", "type": "never.happens"}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ = json.Marshal(res2.StructuredContent)
			var waiting struct{ Status, Since, Message string }
			json.Unmarshal(b, &waiting)
			if waiting.Status != "waiting" || waiting.Since == "" || waiting.Message == "" {
				t.Errorf("still-waiting result: %s", b)
			}
			// Bad input is a tool error that names the argument.
			res3, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "wait_for_event", Arguments: map[string]any{"source": "nope"}})
			if err == nil && (res3 == nil || !res3.IsError) {
				t.Errorf("unknown source accepted: %+v", res3)
			}
		})
	}
}

// TestWaitMatchesIntegersExactly waits, over the go-sdk client, for an
// event whose n is 2^53+1 when an event with n = 2^53 (the same float64)
// arrived first: the wait finds the right one, although the SDK decodes
// tool arguments through float64.
func TestWaitMatchesIntegersExactly(t *testing.T) {
	e := newEnv(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []string
	for _, n := range []string{"9007199254740992", "9007199254740993"} {
		ids = append(ids, e.sendStripeBody(`{"id":"evt_n`+n+`","type":"big","n":`+n+`}`))
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "go-sdk-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "wait_for_event",
		Arguments: json.RawMessage(`{"source":"stripe","type":"big","match":{"n":9007199254740993}}`)})
	if err != nil || res.IsError {
		t.Fatalf("wait_for_event: %v %+v", err, res)
	}
	var out struct {
		Event struct {
			EventID string `json:"event_id"`
		} `json:"event"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	json.Unmarshal(b, &out)
	if out.Event.EventID != ids[1] {
		t.Errorf("wait_for_event matched %s, want %s (n 9007199254740993; %s has n 9007199254740992)", out.Event.EventID, ids[1], ids[0])
	}
}

// sendStripeBody posts body as a signed Stripe webhook and returns the
// event id.
func (e *env) sendStripeBody(body string) string {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/e/stripe", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", verify.SignStripe(stripeSecret, time.Now(), []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		EventID string `json:"event_id"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("webhook: %d", resp.StatusCode)
	}
	return out.EventID
}

// TestTaskResultKeepsNumbers completes a 2025-11-25 task with an event
// whose body holds 2^53+1 and reads tasks/result off the wire: the number
// is written as it arrived, not rounded through float64.
func TestTaskResultKeepsNumbers(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url}
	c.initialize()
	created := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_big"), "task": map[string]any{"ttl": 60000}})
	task, _ := created.Result["task"].(map[string]any)
	taskID, _ := task["taskId"].(string)
	if taskID == "" {
		t.Fatalf("CreateTaskResult: %+v", created)
	}
	e.sendStripeBody(`{"id":"evt_big","type":"checkout.session.completed","n":9007199254740993,"data":{"object":{"payment_link":"plink_big"}}}`)
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 99, "method": "tasks/result", "params": map[string]any{"taskId": taskID}})
	req, _ := http.NewRequest(http.MethodPost, e.url+"/mcp", strings.NewReader(string(msg)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", mcpserver.ProtocolLegacy)
	req.Header.Set("Mcp-Session-Id", c.session)
	resp, err := http.DefaultClient.Do(req) // tasks/result blocks until the task completes
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), `"n":9007199254740993`) {
		t.Errorf("tasks/result does not carry the body's number as sent:\n%s", raw)
	}
}

// TestListEventsSearch searches event bodies with list_events over the
// go-sdk client: a where condition on 2^53+1 finds that event and not the
// one with 2^53, query finds text, and a malformed where is a tool error.
func TestListEventsSearch(t *testing.T) {
	e := newEnv(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []string
	for _, n := range []string{"9007199254740992", "9007199254740993"} {
		ids = append(ids, e.sendStripeBody(`{"id":"evt_s`+n+`","type":"big","data":{"object":{"n":`+n+`,"note":"Refund `+n+`"}}}`))
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "go-sdk-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	list := func(args map[string]any) []string {
		t.Helper()
		ids, _ := listEvents(ctx, t, cs, args)
		return ids
	}
	if got := list(map[string]any{"where": []string{"data.object.n=9007199254740993"}}); len(got) != 1 || got[0] != ids[1] {
		t.Errorf("where n=2^53+1: %v, want [%s]", got, ids[1])
	}
	if got := list(map[string]any{"where": []string{"data.object.n=9007199254740992"}, "query": "refund"}); len(got) != 1 || got[0] != ids[0] {
		t.Errorf("where n=2^53 and query refund: %v, want [%s]", got, ids[0])
	}
	if got := list(map[string]any{"query": "REFUND 9007199254740993"}); len(got) != 1 || got[0] != ids[1] {
		t.Errorf("query: %v, want [%s]", got, ids[1])
	}
	if got := list(map[string]any{"query": "chargeback"}); len(got) != 0 {
		t.Errorf("query chargeback: %v, want none", got)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_events", Arguments: map[string]any{"where": []string{"data..n=1"}}})
	if err == nil && (res == nil || !res.IsError || !strings.Contains(resultText(res), "empty key")) {
		t.Errorf("malformed where accepted: %+v", res)
	}
}

// resultText joins a tool result's text contents.
func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// TestListEventsPaging pages list_events over the go-sdk client: a page
// that holds the last event carries no next_cursor (a cursor there led an
// agent to an empty page), and the cursor of a fuller list reaches every
// event once.
func TestListEventsPaging(t *testing.T) {
	e := newEnv(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := map[string]bool{}
	for i := range 3 {
		want[e.sendStripeBody(fmt.Sprintf(`{"id":"evt_page%d","type":"paged","data":{"object":{}}}`, i))] = true
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "go-sdk-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	page := func(args map[string]any) (ids []string, next string) {
		t.Helper()
		return listEvents(ctx, t, cs, args)
	}
	if ids, next := page(map[string]any{"type": "paged", "limit": 3}); len(ids) != 3 || next != "" {
		t.Errorf("limit 3 of 3: %v, next_cursor %q, want 3 events and none", ids, next)
	}
	first, next := page(map[string]any{"type": "paged", "limit": 2})
	if len(first) != 2 || next == "" {
		t.Fatalf("limit 2 of 3: %v, next_cursor %q, want 2 events and a cursor", first, next)
	}
	rest, next2 := page(map[string]any{"type": "paged", "limit": 2, "cursor": next})
	if len(rest) != 1 || next2 != "" {
		t.Errorf("second page: %v, next_cursor %q, want 1 event and none", rest, next2)
	}
	for _, id := range append(first, rest...) {
		if !want[id] {
			t.Errorf("event %s listed twice or not sent", id)
		}
		delete(want, id)
	}
}

// listEvents calls list_events with args and returns the ids it listed and
// its next_cursor; a protocol or tool error fails the test.
func listEvents(ctx context.Context, t *testing.T, cs *mcp.ClientSession, args map[string]any) (ids []string, next string) {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_events", Arguments: args})
	if err != nil || res.IsError {
		t.Fatalf("list_events %v: %v %+v", args, err, res)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var out struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for _, ev := range out.Events {
		ids = append(ids, ev.ID)
	}
	return ids, out.NextCursor
}
