package mcpserver_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/mcpserver"
)

// FuzzToolArguments calls every tool through a real MCP session with
// arbitrary JSON arguments: each call must end in a result or a tool
// error, never a crash, a hang or a broken session. The seeds below run
// in every go test; .ci/run fuzzes it briefly.
func FuzzToolArguments(f *testing.F) {
	tools := []string{"wait_for_event", "list_events", "get_event", "list_sources", "retry_delivery", "replay_event", "list_dead_deliveries"}
	for i, args := range []string{
		`{"source":"stripe","type":"checkout.session.completed","match":{"data.object.payment_link":"plink_1"},"timeout":"1ms"}`,
		`{"source":"stripe","filter":"body.a.b.c == 1 && size(headers) > 0","since":"2025-03-01T00:00:00Z","timeout":"5ms"}`,
		`{"source":"stripe","since":"evt_01jnb6s0h35gzj5f2c4tsjra94","match":{"":null,"a..b":[1,{"x":2}]},"timeout":"-1h"}`,
		`{"source":"stripe","filter":"(((((((((((1)))))))))))","timeout":"9999999999h"}`,
		`{"source":"nope","since":"-5m"}`,
		`{"source":"stripe","type":"x","limit":1000000,"cursor":"' OR 1=1 --","since":"1e309"}`,
		`{"event_id":"evt_\u0000\ud800"}`,
		`{"delivery_id":"../../etc/passwd"}`,
		`{"destination":"a","limit":-1,"cursor":"dlv_zzzzzzzzzzzzzzzzzzzzzzzzzz"}`,
		`{"source":["stripe"],"timeout":5}`,
		`{}`,
		`null`,
	} {
		f.Add(tools[i%len(tools)], args)
	}
	e := newEnvOpts(f, "", nil, &mcpserver.Options{SyncWait: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	ctx := context.Background()
	client := mcp.NewClient(&mcp.Implementation{Name: "fuzz", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { cs.Close() })
	f.Fuzz(func(t *testing.T, tool, args string) {
		if !json.Valid([]byte(args)) || !strings.HasPrefix(strings.TrimSpace(args), "{") {
			return // the client only sends JSON objects
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: tool, Arguments: json.RawMessage(args)})
		if cctx.Err() != nil {
			t.Fatalf("%s(%s) did not answer within 10s", tool, args)
		}
		if err == nil && res == nil {
			t.Fatalf("%s(%s): no result and no error", tool, args)
		}
		// The session still works.
		if _, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "list_sources", Arguments: map[string]any{}}); err != nil {
			t.Fatalf("after %s(%s) the session is broken: %v", tool, args, err)
		}
	})
}
