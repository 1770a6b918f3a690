package mcpserver_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/mcpserver"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
)

// bearer adds a bearer token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// TestToolActionsAudited: retry_delivery and replay_event called with a
// stored mcp token are in the audit log under that token, with the
// delivery's state before and after; a stored viewer token cannot use
// /mcp at all (403).
func TestToolActionsAudited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbPath := filepath.Join(t.TempDir(), "mailroom.db")
	tokens, err := sqlite.Open(ctx, dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tokens.Close()
	authn := auth.New(&auth.Options{Store: tokens})
	_, _, err = authn.Create(ctx, access.Anonymous, &auth.CreateParams{Name: "root", Role: access.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	agent, agentSecret, err := authn.Create(ctx, access.Principal{Name: "root"}, &auth.CreateParams{Name: "agent", Role: access.RoleMCP})
	if err != nil {
		t.Fatal(err)
	}
	_, viewerSecret, err := authn.Create(ctx, access.Principal{Name: "root"}, &auth.CreateParams{Name: "dash", Role: access.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvAt(t, dbPath, func(string, *http.ServeMux) *mcpserver.HTTPOptions {
		return &mcpserver.HTTPOptions{Auth: mcpauth.NewGuard(mcpauth.GuardOptions{Tokens: authn})}
	}, &mcpserver.Options{SyncWait: time.Second})

	if err := e.store.DestinationUpsert(ctx, &store.Destination{Name: "billing", URL: "https://example.com/h"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "billing"}); err != nil {
		t.Fatal(err)
	}
	e.waitConnections(1) // the webhook below must find the connection routed
	connect := func(token string) (*mcp.ClientSession, error) {
		client := mcp.NewClient(&mcp.Implementation{Name: "audit-test", Version: "1"}, nil)
		return client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp",
			HTTPClient: &http.Client{Transport: bearer{token, http.DefaultTransport}}}, nil)
	}
	if _, err := connect(viewerSecret); err == nil || !strings.Contains(err.Error(), "403") && !strings.Contains(strings.ToLower(err.Error()), "forbidden") {
		t.Errorf("a viewer token at /mcp: %v, want 403", err)
	}
	cs, err := connect(agentSecret)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	evID := e.sendStripe("evt_audit_1", "checkout.session.completed", "plink_audit")
	ds, err := e.store.DeliveryList(ctx, &store.DeliveryListParams{EventID: evID})
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries of the event: %v %v", ds, err)
	}
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"retry_delivery", map[string]any{"delivery_id": ds[0].ID}},
		{"replay_event", map[string]any{"event_id": evID}},
		{"retry_delivery", map[string]any{"delivery_id": "dlv_none"}},
	} {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args}); err != nil {
			t.Fatalf("%s: %v", c.tool, err)
		}
	}
	es, err := e.store.AuditList(ctx, &store.AuditListParams{TokenID: agent.ID})
	if err != nil || len(es) != 3 {
		t.Fatalf("audit entries of the agent: %d, %v; want 3", len(es), err)
	}
	var got []string
	for _, en := range es {
		got = append(got, en.Action+" "+en.Target+" "+http.StatusText(en.Status))
	}
	want := "mcp: retry_delivery dlv_none Not Found|mcp: replay_event " + evID + " OK|mcp: retry_delivery " + ds[0].ID + " OK"
	if strings.Join(got, "|") != want {
		t.Errorf("audit: %q\nwant %q", strings.Join(got, "|"), want)
	}
	if r := es[2]; r.Actor != "agent" || r.Role != "mcp" || r.Project != "default" || !strings.Contains(string(r.Before), ds[0].ID) || !strings.Contains(string(r.After), `"status":"pending"`) {
		t.Errorf("retry entry: %+v before %s after %s", r, r.Before, r.After)
	}
}
