package mcpserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/mcpserver"
)

// TestEventsExtension exercises the experimental draft MCP Events
// extension: events/list, events/poll with cursors and filters, and
// events/stream with notifications/events/*. Event ids are the provider's.
func TestEventsExtension(t *testing.T) {
	e := newEnvOpts(t, "", nil, &mcpserver.Options{EventsExtension: true})
	c := &rpcClient{t: t, url: e.url}
	init := c.initialize()
	if caps := init.Result["capabilities"].(map[string]any); caps["events"] == nil {
		t.Fatalf("no events capability: %v", caps)
	}
	list := c.call("events/list", nil)
	evs, _ := list.Result["events"].([]any)
	if len(evs) != 1 || evs[0].(map[string]any)["name"] != "stripe" {
		t.Fatalf("events/list: %+v", list)
	}
	args := map[string]any{"type": "checkout.session.completed"}
	first := c.call("events/poll", map[string]any{"name": "stripe", "arguments": args, "cursor": nil})
	cursor, _ := first.Result["cursor"].(string)
	if got := first.Result["events"].([]any); len(got) != 0 || cursor == "" {
		t.Fatalf("first poll: %+v", first)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, _ := c.post(ctx, "events/stream", map[string]any{"name": "stripe", "arguments": args, "cursor": cursor}, false)
	stream := sseMessages(resp)
	waitFor(t, stream, "notifications/events/active", func(m rpcResponse) bool { return m.Method == "notifications/events/active" })

	e.sendStripe("evt_ignored", "invoice.paid", "x")
	time.Sleep(20 * time.Millisecond)
	e.sendStripe("evt_provider_1", "checkout.session.completed", "plink_ev")
	pushed := waitFor(t, stream, "notifications/events/event", func(m rpcResponse) bool { return m.Method == "notifications/events/event" })
	if pushed.Params["eventId"] != "evt_provider_1" || pushed.Params["cursor"] == nil {
		t.Errorf("pushed: %v", pushed.Params)
	}
	polled := c.call("events/poll", map[string]any{"name": "stripe", "arguments": args, "cursor": cursor})
	got, _ := polled.Result["events"].([]any)
	if len(got) != 1 || got[0].(map[string]any)["eventId"] != "evt_provider_1" {
		t.Fatalf("poll after webhooks: %+v", polled.Result)
	}
	again := c.call("events/poll", map[string]any{"name": "stripe", "arguments": args, "cursor": polled.Result["cursor"]})
	if got := again.Result["events"].([]any); len(got) != 0 {
		t.Errorf("cursor did not advance: %+v", again.Result)
	}
	if r := c.call("events/poll", map[string]any{"name": "nope", "cursor": nil}); r.Error == nil || r.Error.Code != -32011 {
		t.Errorf("unknown event type: %+v", r)
	}
}

// TestEventsExtensionOff: without the flag the methods are refused.
func TestEventsExtensionOff(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url}
	c.initialize()
	if r := c.call("events/list", nil); r.Error == nil || r.Error.Code != -32601 {
		t.Errorf("events/list with the extension off: %+v", r)
	}
	if r := c.call("events/stream", map[string]any{"name": "stripe"}); r.Error == nil || r.Error.Code != -32014 {
		t.Errorf("events/stream with the extension off: %+v", r)
	}
}
