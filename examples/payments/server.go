package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/pkg/mailroomtask"
)

// linkArgs is the input of create_payment_link.
type linkArgs struct {
	Amount   int64  `json:"amount" jsonschema:"amount in cents, e.g. 2000 for $20.00"`
	Currency string `json:"currency,omitempty" jsonschema:"ISO currency code, default usd"`
}

// newMCPServer is the payments MCP server: one tool, create_payment_link,
// whose task completes when the link is paid. payAPI is the payments
// API's base URL.
func newMCPServer(tasks *mailroomtask.Tasks, payAPI string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "payments-example", Version: "0.1.0"}, nil)
	hc := &http.Client{Timeout: 10 * time.Second}
	mailroomtask.AddTool(tasks, s, &mcp.Tool{
		Name:        "create_payment_link",
		Description: "Create a payment link. As a task, it completes with the paid checkout session when the customer pays.",
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in linkArgs) (*mailroomtask.Wait, error) {
		link, err := createLink(ctx, hc, payAPI, in)
		if err != nil {
			return nil, err
		}
		return &mailroomtask.Wait{
			Source:  "stripe",
			Type:    "checkout.session.completed",
			Match:   map[string]any{"data.object.payment_link": link.ID},
			Timeout: 24 * time.Hour,
			Message: fmt.Sprintf("waiting for the customer to pay %s at %s", link.ID, link.URL),
		}, nil
	})
	return s
}

// createLink calls the payments API.
func createLink(ctx context.Context, hc *http.Client, payAPI string, in linkArgs) (*paymentLink, error) {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, payAPI+"/v1/payment_links", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("payments API %q: %w", payAPI, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("create payment link: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("create payment link: %d %s", resp.StatusCode, raw)
	}
	var l paymentLink
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("create payment link: decode: %w", err)
	}
	return &l, nil
}
