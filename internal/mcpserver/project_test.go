package mcpserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/mcpserver"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
)

// TestProjectIsolationMCP checks that an MCP token of project b neither
// sees nor changes anything of project a through the tools, the
// resources (list, read, subscribe) and the tasks, while it sees its own.
func TestProjectIsolationMCP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "mailroom.db")
	st, err := sqlite.Open(ctx, dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]*store.RequestIngestResult{}
	for _, p := range []string{"a", "b"} {
		if err := st.SourceUpsert(ctx, &store.Source{Name: p + "/hooks"}); err != nil {
			t.Fatal(err)
		}
		if err := st.DestinationUpsert(ctx, &store.Destination{Name: p + "/sink", URL: "http://127.0.0.1:1/"}); err != nil {
			t.Fatal(err)
		}
		res, err := st.RequestIngest(ctx, &store.RequestIngestParams{
			Request:    &store.Request{Source: p + "/hooks", Method: "POST", Headers: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"` + p + `-1"}`)},
			Event:      &store.Event{Type: "thing.done"},
			Deliveries: []*store.Delivery{{Destination: p + "/sink", ConnectionID: p + "/hooks->sink"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids[p] = res
	}
	st.Close()
	static := map[string]access.Principal{
		"token-of-project-a-0001": {TokenID: "ta", Name: "agent-a", Role: access.RoleMCP, Project: "a"},
		"token-of-project-b-0001": {TokenID: "tb", Name: "agent-b", Role: access.RoleMCP, Project: "b"},
	}
	e := newEnvOpts(t, dbPath, &mcpserver.HTTPOptions{Auth: mcpauth.NewGuard(mcpauth.GuardOptions{Static: static})},
		&mcpserver.Options{SyncWait: time.Second, PollInterval: 100 * time.Millisecond})
	a := &rpcClient{t: t, url: e.url, token: "token-of-project-a-0001"}
	a.initialize()
	b := &rpcClient{t: t, url: e.url, token: "token-of-project-b-0001"}
	b.initialize()
	evA, dlvA := ids["a"].EventID, ids["a"].DeliveryIDs[0]

	// a's task, created through a's wait_for_event.
	created := a.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": map[string]any{"source": "hooks", "type": "never.happens"}, "task": map[string]any{"ttl": 60000}})
	task, _ := created.Result["task"].(map[string]any)
	taskA, _ := task["taskId"].(string)
	if taskA == "" {
		t.Fatalf("a's task: %+v", created)
	}

	tool := func(c *rpcClient, name string, args map[string]any) (string, bool) {
		t.Helper()
		r := c.call("tools/call", map[string]any{"name": name, "arguments": args})
		if r.Error != nil {
			return r.Error.Message, true
		}
		out, _ := json.Marshal(r.Result)
		isErr, _ := r.Result["isError"].(bool)
		return string(out), isErr
	}
	leaks := []string{evA, dlvA, ids["a"].RequestID, taskA, "a/hooks", "a/sink", `a-1`}
	noLeak := func(what, body string) {
		t.Helper()
		for _, s := range leaks {
			if strings.Contains(body, s) {
				t.Errorf("%s as b shows %q of project a: %s", what, s, body)
			}
		}
	}
	// Lists: b's own, none of a's.
	for _, c := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"list_sources", map[string]any{}, `b/hooks`},
		{"list_events", map[string]any{}, ids["b"].EventID},
		{"list_events", map[string]any{"source": "hooks"}, ids["b"].EventID},
		{"list_events", map[string]any{"source": "a/hooks"}, `"events":[]`},
		{"list_events", map[string]any{"query": "a-1"}, `"events":[]`},
		{"list_dead_deliveries", map[string]any{"destination": "a/sink"}, `"deliveries":[]`},
	} {
		body, isErr := tool(b, c.name, c.args)
		if isErr || !strings.Contains(body, c.want) {
			t.Errorf("%s %v as b: %s, want it to hold %s", c.name, c.args, body, c.want)
		}
		noLeak(c.name, body)
	}
	// What names a's: refused as missing.
	for _, c := range []struct {
		name string
		args map[string]any
	}{
		{"get_event", map[string]any{"event_id": evA}},
		{"replay_event", map[string]any{"event_id": evA}},
		{"retry_delivery", map[string]any{"delivery_id": dlvA}},
		{"wait_for_event", map[string]any{"source": "a/hooks"}},
	} {
		body, isErr := tool(b, c.name, c.args)
		if !isErr {
			t.Errorf("%s %v as b: %s, want an error", c.name, c.args, body)
		}
	}
	// Resources.
	for _, uri := range []string{"mailroom://events/" + evA, "mailroom://sources/" + url.PathEscape("a/hooks") + "/events"} {
		if r := b.call("resources/read", map[string]any{"uri": uri}); r.Error == nil {
			t.Errorf("resources/read %s as b: %+v, want an error", uri, r.Result)
		}
		if r := b.call("resources/subscribe", map[string]any{"uri": uri}); r.Error == nil && strings.Contains(uri, "sources") {
			t.Errorf("resources/subscribe %s as b: %+v, want an error", uri, r.Result)
		}
	}
	if r := b.call("resources/read", map[string]any{"uri": "mailroom://events/" + ids["b"].EventID}); r.Error != nil {
		t.Errorf("b reads its own event: %+v", r.Error)
	}
	list := b.call("resources/list", nil)
	out, _ := json.Marshal(list.Result)
	noLeak("resources/list", string(out))
	if !strings.Contains(string(out), url.PathEscape("b/hooks")) {
		t.Errorf("resources/list as b lacks b's source: %s", out)
	}
	// Tasks: a's task is unknown to b.
	if r := b.call("tasks/get", map[string]any{"taskId": taskA}); r.Error == nil {
		t.Errorf("tasks/get of a's task as b: %+v", r.Result)
	}
	tl := b.call("tasks/list", nil)
	out, _ = json.Marshal(tl.Result)
	noLeak("tasks/list", string(out))
	// And a still has everything: its event, its pending delivery, its task.
	if body, isErr := tool(a, "get_event", map[string]any{"event_id": evA}); isErr {
		t.Errorf("a's own event: %s", body)
	}
	d, err := e.store.DeliveryGetByID(ctx, dlvA)
	if err != nil || d.Status != store.DeliveryPending || d.Attempts != 0 || !d.UpdatedAt.Equal(d.CreatedAt) {
		t.Errorf("a's delivery changed: %+v, %v", d, err)
	}
	if r := a.call("tasks/get", map[string]any{"taskId": taskA}); r.Error != nil {
		t.Errorf("a's own task: %+v", r.Error)
	}
}
