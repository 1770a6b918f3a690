package mailroomtask_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/pkg/mailroomtask"
)

// LinkArgs is the input of the example's tool.
type LinkArgs struct {
	Amount int64 `json:"amount" jsonschema:"amount in cents"`
}

// A payments MCP server whose create_payment_link tool returns a Task that
// mailroom completes when Stripe reports the link paid. See
// examples/payments for the whole story, with an end-to-end test.
func ExampleAddTool() {
	tasks, err := mailroomtask.New("http://127.0.0.1:8080", &mailroomtask.Options{Token: "mailroom-api-token"})
	if err != nil {
		log.Fatal(err)
	}
	defer tasks.Close()

	server := mcp.NewServer(&mcp.Implementation{Name: "payments", Version: "1.0.0"}, nil)
	mailroomtask.AddTool(tasks, server, &mcp.Tool{Name: "create_payment_link", Description: "Create a payment link; completes when paid"},
		func(ctx context.Context, _ *mcp.CallToolRequest, in LinkArgs) (*mailroomtask.Wait, error) {
			linkID := "plink_123" // call your payments API here
			return &mailroomtask.Wait{
				Source:  "stripe",
				Type:    "checkout.session.completed",
				Match:   map[string]any{"data.object.payment_link": linkID},
				Timeout: 24 * time.Hour,
				Message: "waiting for the customer to pay " + linkID,
			}, nil
		})

	http.Handle("/mcp", tasks.Handler(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)))
	// http.ListenAndServe("127.0.0.1:3000", nil)
}
