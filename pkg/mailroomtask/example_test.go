package mailroomtask_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/pkg/mailroomtask"
)

// LinkArgs is the input of the example's tool.
type LinkArgs struct {
	Link string `json:"link" jsonschema:"the payment link to wait for"`
}

// A payments MCP server whose wait_for_payment tool returns a Task that
// mailroom completes when the payment webhook arrives. Here a mailroom runs
// in the process (a real one, on SQLite) and the payment already landed,
// so a client without Tasks gets the matched event at once; a client with
// Tasks (2025-11-25 or 2026-07-28) gets a task instead. See
// examples/payments for the whole story.
func ExampleAddTool() {
	env := &exampleTB{}
	defer env.Close()
	m := startMailroom(env) // your mailroom: its base URL and API token

	tasks, err := mailroomtask.New(m.url, &mailroomtask.Options{Token: ""})
	if err != nil {
		log.Fatal(err)
	}
	defer tasks.Close()
	server := mcp.NewServer(&mcp.Implementation{Name: "payments", Version: "1.0.0"}, nil)
	mailroomtask.AddTool(tasks, server, &mcp.Tool{Name: "wait_for_payment", Description: "Completes when the link is paid"},
		func(ctx context.Context, _ *mcp.CallToolRequest, in LinkArgs) (*mailroomtask.Wait, error) {
			return &mailroomtask.Wait{
				Source:  "pay",
				Type:    "link.paid",
				Match:   map[string]any{"link": in.Link},
				Timeout: 24 * time.Hour,
				Message: "waiting for the customer to pay " + in.Link,
			}, nil
		})
	hs := httptest.NewServer(tasks.HTTPHandler(server, nil)) // or http.Handle("/mcp", ...)
	defer hs.Close()

	m.pay(env, "plink_123") // the webhook: a moment before the call still counts

	ctx := context.Background()
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: hs.URL}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		log.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "wait_for_payment", Arguments: LinkArgs{Link: "plink_123"}})
	if err != nil {
		log.Fatal(err)
	}
	out := res.StructuredContent.(map[string]any)
	event := out["event"].(map[string]any)
	fmt.Println(out["status"], event["type"], event["body"].(map[string]any)["link"])
	// Output: matched link.paid plink_123
}
