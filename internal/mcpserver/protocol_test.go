package mcpserver_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/mcpserver"
)

// rawHTTP posts body to /mcp with exactly the given headers (plus the
// content type and Accept) and returns the status, content type and body.
func rawHTTP(t *testing.T, url string, headers map[string]string, body string) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// rpcErrorOf decodes the JSON-RPC error of a JSON or SSE answer.
func rpcErrorOf(t *testing.T, ctype string, b []byte) (code int, msg string) {
	t.Helper()
	if strings.HasPrefix(ctype, "text/event-stream") {
		for line := range strings.SplitSeq(string(b), "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(data, `"error"`) {
				b = []byte(data)
			}
		}
	}
	var m struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Error == nil {
		t.Fatalf("not a JSON-RPC error (%s): %s", ctype, b)
	}
	return m.Error.Code, m.Error.Message
}

func modernBody(t *testing.T, method string, params map[string]any) string {
	t.Helper()
	c := &rpcClient{tasksExt: true}
	params["_meta"] = c.meta()
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	return string(b)
}

// TestTaskMcpNameMustMatch: on 2026-07-28, tasks/get, tasks/update and
// tasks/cancel carry the task id in Mcp-Name; a missing or different
// header is HTTP 400 with -32020, and the body's task is left alone.
func TestTaskMcpNameMustMatch(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url, modern: true, tasksExt: true}
	id := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_name")}).Result["taskId"].(string)
	for _, method := range []string{"tasks/get", "tasks/update", "tasks/cancel"} {
		for _, name := range []string{"task_wrong", ""} {
			h := map[string]string{"Mcp-Protocol-Version": mcpserver.ProtocolModern, "Mcp-Method": method}
			if name != "" {
				h["Mcp-Name"] = name
			}
			status, ctype, b := rawHTTP(t, e.url, h, modernBody(t, method, map[string]any{"taskId": id}))
			if status != http.StatusBadRequest {
				t.Errorf("%s with Mcp-Name %q: HTTP %d %.200s", method, name, status, b)
				continue
			}
			if code, _ := rpcErrorOf(t, ctype, b); code != -32020 {
				t.Errorf("%s with Mcp-Name %q: code %d", method, name, code)
			}
		}
	}
	// A base64-encoded header that decodes to the id matches.
	h := map[string]string{"Mcp-Protocol-Version": mcpserver.ProtocolModern, "Mcp-Method": "tasks/get",
		"Mcp-Name": "=?base64?" + base64.StdEncoding.EncodeToString([]byte(id)) + "?="}
	if status, _, b := rawHTTP(t, e.url, h, modernBody(t, "tasks/get", map[string]any{"taskId": id})); status != 200 {
		t.Errorf("base64 Mcp-Name: %d %s", status, b)
	}
	if got := c.call("tasks/get", map[string]any{"taskId": id}); got.Result["status"] != "working" {
		t.Errorf("after mismatched cancels the task is %v", got.Result["status"])
	}
}

// plainResult strips _meta so that results can be compared.
func plainResult(r map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range r {
		if k != "_meta" && k != "resultType" {
			out[k] = v
		}
	}
	return out
}

// TestTaskOutcomeSameAsPlainCall: a wait that runs out of time, and
// arguments the tool refuses, give in task mode exactly the plain call's
// result: an isError tool result. 2025-11-25 returns it from tasks/result
// (the task failed); 2026-07-28 carries it in a completed task (failed is
// for JSON-RPC errors), or answers it at once for bad arguments.
func TestTaskOutcomeSameAsPlainCall(t *testing.T) {
	e := newEnv(t, "", nil)
	legacy := &rpcClient{t: t, url: e.url}
	legacy.initialize()
	modern := &rpcClient{t: t, url: e.url, modern: true, tasksExt: true}

	timeout := waitArgs("plink_never")
	timeout["timeout"] = "1s"
	for _, tc := range []struct {
		name string
		args map[string]any
	}{
		{"timeout", timeout},
		{"wrong type", map[string]any{"source": 5}},
		{"unknown source", map[string]any{"source": "nope"}},
		{"bad timeout", map[string]any{"source": "stripe", "timeout": "soon"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain := legacy.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": tc.args})
			if plain.Error != nil || plain.Result["isError"] != true {
				t.Fatalf("plain call: %+v", plain)
			}
			if msg := toolText(plain.Result); strings.Contains(msg, "Go struct") || strings.Contains(msg, "unmarshal") {
				t.Errorf("plain call message is a decoder message: %q", msg)
			}

			created := legacy.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": tc.args, "task": map[string]any{"ttl": 60000}})
			task, _ := created.Result["task"].(map[string]any)
			if created.Error != nil || task == nil || task["ttl"] != float64(60000) {
				t.Fatalf("2025-11-25 task (with the ttl asked for): %+v", created)
			}
			res := legacy.call("tasks/result", map[string]any{"taskId": task["taskId"]})
			if res.Error != nil || !reflect.DeepEqual(plainResult(res.Result), plainResult(plain.Result)) {
				t.Errorf("2025-11-25 tasks/result:\n got %v %+v\nwant %v", res.Result, res.Error, plain.Result)
			}
			if got := legacy.call("tasks/get", map[string]any{"taskId": task["taskId"]}); got.Result["status"] != "failed" {
				t.Errorf("2025-11-25 status %v, want failed (isError)", got.Result["status"])
			}

			m := modern.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": tc.args})
			if m.Error != nil {
				t.Fatalf("2026-07-28 call: %+v", m.Error)
			}
			result := m.Result
			if m.Result["resultType"] == "task" {
				got := pollDone(t, modern, m.Result["taskId"].(string))
				if got.Result["status"] != "completed" || got.Result["error"] != nil {
					t.Fatalf("2026-07-28 task: %+v", got.Result)
				}
				result, _ = got.Result["result"].(map[string]any)
			}
			if !reflect.DeepEqual(plainResult(result), plainResult(plain.Result)) {
				t.Errorf("2026-07-28 result:\n got %v\nwant %v", result, plain.Result)
			}
		})
	}
}

func toolText(r map[string]any) string {
	content, _ := r["content"].([]any)
	for _, c := range content {
		if cm, _ := c.(map[string]any); cm["type"] == "text" {
			s, _ := cm["text"].(string)
			return s
		}
	}
	return ""
}

// TestUnknownMethodLegacy: a method the server does not have is a
// JSON-RPC -32601 on a 2025-11-25 session, not a plain-text HTTP 400.
func TestUnknownMethodLegacy(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url}
	c.initialize()
	h := map[string]string{"Mcp-Protocol-Version": mcpserver.ProtocolLegacy, "Mcp-Session-Id": c.session}
	status, ctype, b := rawHTTP(t, e.url, h, `{"jsonrpc":"2.0","id":3,"method":"no/such/method","params":{}}`)
	if !strings.Contains(ctype, "json") && !strings.Contains(ctype, "event-stream") {
		t.Fatalf("unknown method: HTTP %d %s %q", status, ctype, b)
	}
	if code, _ := rpcErrorOf(t, ctype, b); code != -32601 {
		t.Errorf("unknown method: code %d", code)
	}
}

// TestTasksListCursor: an invalid cursor is -32602; a real one pages.
func TestTasksListCursor(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url}
	c.initialize()
	if r := c.call("tasks/list", map[string]any{"cursor": "not-a-cursor"}); r.Error == nil || r.Error.Code != -32602 {
		t.Errorf("invalid cursor: %+v", r)
	}
	created := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_list"), "task": map[string]any{}})
	id := created.Result["task"].(map[string]any)["taskId"].(string)
	if r := c.call("tasks/list", map[string]any{"cursor": id}); r.Error != nil {
		t.Errorf("a task id cursor: %+v", r.Error)
	}
}

// TestCapabilitiesMatchMethods: on both revisions the server declares
// what it serves and serves what it declares: each declared capability's
// methods answer, and completion, which is not served, is not declared
// and is -32601.
func TestCapabilitiesMatchMethods(t *testing.T) {
	e := newEnv(t, "", nil)
	legacy := &rpcClient{t: t, url: e.url}
	init := legacy.initialize()
	modern := &rpcClient{t: t, url: e.url, modern: true, tasksExt: true}
	disc := modern.call("server/discover", nil)
	for _, tc := range []struct {
		c    *rpcClient
		caps any
	}{{legacy, init.Result["capabilities"]}, {modern, disc.Result["capabilities"]}} {
		caps, _ := tc.caps.(map[string]any)
		for _, want := range []string{"tools", "prompts", "resources", "logging"} {
			if caps[want] == nil {
				t.Errorf("modern %v: %s not declared: %v", tc.c.modern, want, caps)
			}
		}
		if caps["completions"] != nil {
			t.Errorf("modern %v: completions declared but not served", tc.c.modern)
		}
		methods := map[string]map[string]any{"tools/list": nil, "prompts/list": nil, "resources/list": nil, "resources/templates/list": nil}
		if !tc.c.modern { // 2026-07-28 sets the log level per request in _meta
			methods["logging/setLevel"] = map[string]any{"level": "info"}
		}
		for method, params := range methods {
			if r := tc.c.call(method, params); r.Error != nil {
				t.Errorf("modern %v: declared %s fails: %+v", tc.c.modern, method, r.Error)
			}
		}
		if r := tc.c.call("prompts/get", map[string]any{"name": "nope"}); r.Error == nil || r.Error.Code == 0 {
			t.Errorf("modern %v: prompts/get of an unknown prompt: %+v", tc.c.modern, r)
		}
		r := tc.c.call("completion/complete", map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "x"}, "argument": map[string]any{"name": "a", "value": ""}})
		if r.Error == nil || r.Error.Code != -32601 {
			t.Errorf("modern %v: completion/complete: %+v", tc.c.modern, r)
		}
	}
}

// TestForbiddenToolAsTask: a 2025-11-25 task request to a tool whose
// taskSupport is forbidden is refused with -32601, not run.
func TestForbiddenToolAsTask(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url}
	c.initialize()
	r := c.call("tools/call", map[string]any{"name": "list_sources", "arguments": map[string]any{}, "task": map[string]any{}})
	if r.Error == nil || r.Error.Code != -32601 {
		t.Errorf("forbidden tool as a task: %+v", r)
	}
}

// TestPostWithoutSession: a 2025-11-25 request other than initialize
// without Mcp-Session-Id is HTTP 400 with a real JSON-RPC error code.
func TestPostWithoutSession(t *testing.T) {
	e := newEnv(t, "", nil)
	status, ctype, b := rawHTTP(t, e.url, map[string]string{"Mcp-Protocol-Version": mcpserver.ProtocolLegacy},
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`)
	if status != http.StatusBadRequest {
		t.Fatalf("no session: HTTP %d %s", status, b)
	}
	if code, _ := rpcErrorOf(t, ctype, b); code == 0 || code > -32000 || code < -32768 {
		t.Errorf("no session: code %d", code)
	}
}

// TestPostStreamPriming: a 2025-11-25 POST answered as an SSE stream
// starts with a priming event (an id, empty data) carrying retry:, also
// when the client's header names an older revision.
func TestPostStreamPriming(t *testing.T) {
	e := newEnv(t, "", nil)
	c := &rpcClient{t: t, url: e.url}
	c.initialize()
	for i, version := range []string{mcpserver.ProtocolLegacy, "2025-03-26"} {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list","params":{}}`, 100+i)
		req, _ := http.NewRequest(http.MethodPost, e.url+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream, application/json")
		req.Header.Set("Mcp-Session-Id", c.session)
		req.Header.Set("Mcp-Protocol-Version", version)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		first := firstSSEEvent(ctx, resp.Body)
		cancel()
		resp.Body.Close()
		if first["id"] == "" || first["data"] != "" || first["retry"] == "" {
			t.Errorf("header %s: first event %.300q, want a priming event with id, retry and empty data", version, first)
		}
	}
}

// firstSSEEvent reads the fields of the first SSE event.
func firstSSEEvent(ctx context.Context, r io.Reader) map[string]string {
	ev := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() && ctx.Err() == nil {
		line := sc.Text()
		if line == "" {
			if len(ev) > 0 {
				return ev
			}
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		ev[k] += strings.TrimPrefix(v, " ")
	}
	return ev
}
