package mcpwire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMoveTaskParam(t *testing.T) {
	const key = "x.internal/task"
	for _, tc := range []struct{ name, in, want string }{
		{"moves task", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"w","task":{"ttl":5}}}`,
			`{"id":1,"jsonrpc":"2.0","method":"tools/call","params":{"_meta":{"x.internal/task":{"ttl":5}},"name":"w"}}`},
		{"drops a planted key", `{"method":"tools/call","params":{"name":"w","_meta":{"x.internal/task":{},"k":1}}}`,
			`{"method":"tools/call","params":{"_meta":{"k":1},"name":"w"}}`},
		{"other methods untouched", `{"method":"tools/list","params":{"task":{}}}`, `{"method":"tools/list","params":{"task":{}}}`},
		{"no task untouched", `{"method":"tools/call","params":{"name":"w"}}`, `{"method":"tools/call","params":{"name":"w"}}`},
		{"batch untouched", `[{"method":"tools/call"}]`, `[{"method":"tools/call"}]`},
		{"junk untouched", `{nope`, `{nope`},
	} {
		got := string(MoveTaskParam([]byte(tc.in), key))
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestLegacyTaskTTL(t *testing.T) {
	b, _ := json.Marshal(NewLegacyTask("t", "working", "", time.Time{}, time.Time{}, 0, 0))
	var m map[string]any
	json.Unmarshal(b, &m)
	if v, ok := m["ttl"]; !ok || v != nil {
		t.Errorf("unlimited ttl must be null and present: %s", b)
	}
}

// FuzzMoveTaskParam: for a tools/call whose params is an object, the
// output has no params.task; its _meta[key] is the input's params.task
// (or absent when there was none, even if the client planted one); every
// other params field is kept. Anything else comes back byte for byte.
func FuzzMoveTaskParam(f *testing.F) {
	const key = "k"
	f.Add([]byte(`{"method":"tools/call","params":{"task":{"ttl":1},"_meta":{"x":1}}}`))
	f.Add([]byte(`{"method":"tools/call","params":{"name":"w","_meta":{"k":{"ttl":9}}}}`))
	f.Add([]byte(`{"method":"tools/call","params":{"task":null,"name":"w"}}`))
	f.Add([]byte(`{"method":"tools/call","params":null}`))
	f.Add([]byte(`{"method":"tools/list","params":{"task":{}}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := MoveTaskParam(in, key)
		// Keys are matched exactly, as the SDK's decoder does
		// (encoding/json's struct fields would also take "pArAms").
		var msg struct {
			Method string
			Params map[string]json.RawMessage
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(in, &top) == nil {
			_ = json.Unmarshal(top["method"], &msg.Method)
			_ = json.Unmarshal(top["params"], &msg.Params)
		}
		if top == nil || msg.Method != "tools/call" || msg.Params == nil {
			if string(out) != string(in) {
				t.Fatalf("changed a message it must leave alone:\n in %s\nout %s", in, out)
			}
			return
		}
		var meta map[string]json.RawMessage
		if json.Unmarshal(msg.Params["_meta"], &meta) != nil && len(msg.Params["_meta"]) > 0 {
			return // a _meta that is not an object: left to the SDK to refuse
		}
		var gotTop map[string]json.RawMessage
		if err := json.Unmarshal(out, &gotTop); err != nil {
			t.Fatalf("output is not JSON: %v: %s", err, out)
		}
		var got struct{ Params map[string]json.RawMessage }
		_ = json.Unmarshal(gotTop["params"], &got.Params)
		if _, ok := got.Params["task"]; ok {
			t.Fatalf("params.task left in place: %s", out)
		}
		var gotMeta map[string]json.RawMessage
		_ = json.Unmarshal(got.Params["_meta"], &gotMeta)
		task, hadTask := msg.Params["task"]
		switch moved, ok := gotMeta[key]; {
		case hadTask && (!ok || !jsonEqual(moved, task)):
			t.Fatalf("params.task %s not moved to _meta[%q]: %s", task, key, out)
		case !hadTask && ok:
			t.Fatalf("a client-planted _meta[%q] survived: %s", key, out)
		}
		for k, v := range msg.Params {
			if k != "task" && k != "_meta" && !jsonEqual(got.Params[k], v) {
				t.Fatalf("params.%s changed from %s to %s", k, v, got.Params[k])
			}
		}
		for k, v := range meta {
			if k != key && !jsonEqual(gotMeta[k], v) {
				t.Fatalf("_meta.%s changed from %s to %s", k, v, gotMeta[k])
			}
		}
	})
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return reflect.DeepEqual(x, y)
}

// TestObjectOfKeepsNumbers checks that re-encoding a result (as Patch and
// tasks/result do) writes every number back as it was: a webhook body's
// integer beyond 2^53 is not rounded.
func TestObjectOfKeepsNumbers(t *testing.T) {
	in := json.RawMessage(`{"structuredContent":{"event":{"body":{"id":9007199254740993,"amount":1.50,"big":1e400}}},"ttl":60000}`)
	decoded, err := DecodeObject(in)
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]map[string]any{"ObjectOf": ObjectOf(in), "DecodeObject": decoded} {
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"id":9007199254740993`, `"amount":1.50`, `"big":1e400`, `"ttl":60000`} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s: %s lacks %s", name, out, want)
			}
		}
	}
	if _, err := DecodeObject([]byte(`[1]`)); err == nil {
		t.Error("DecodeObject accepted an array")
	}
}
