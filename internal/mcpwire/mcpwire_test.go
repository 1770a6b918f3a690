package mcpwire

import (
	"encoding/json"
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

func FuzzMoveTaskParam(f *testing.F) {
	f.Add([]byte(`{"method":"tools/call","params":{"task":{"ttl":1},"_meta":{"x":1}}}`))
	f.Add([]byte(`{"method":"tools/call","params":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := MoveTaskParam(b, "k")
		var m struct {
			Params struct {
				Task *json.RawMessage `json:"task"`
			} `json:"params"`
			Method string `json:"method"`
		}
		if json.Unmarshal(out, &m) == nil && m.Method == "tools/call" && m.Params.Task != nil && string(out) != string(b) {
			t.Errorf("task left in params after a rewrite: %s", out)
		}
	})
}
