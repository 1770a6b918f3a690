package mcpserver_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/mcpauth/mcpauthtest"
	"github.com/mailroomhq/mailroom/internal/mcpserver"
)

// newOAuthEnv is a mailroom whose /mcp accepts the access tokens of as
// and the static token "static-token-0000001" (identity "laptop").
func newOAuthEnv(t *testing.T, as *mcpauthtest.Server) (*env, *mcpauth.Authenticator) {
	t.Helper()
	var a *mcpauth.Authenticator
	e := newEnvAt(t, "", func(url string, mux *http.ServeMux) *mcpserver.HTTPOptions {
		var err error
		a, err = mcpauth.New(mcpauth.Options{Resource: url + "/mcp", AuthorizationServers: []string{as.Issuer()}})
		if err != nil {
			t.Fatal(err)
		}
		a.Register(mux)
		return &mcpserver.HTTPOptions{Auth: mcpauth.NewGuard(mcpauth.GuardOptions{OAuth: a,
			Static: map[string]access.Principal{"static-token-0000001": {TokenID: "laptop", Name: "laptop", Role: access.RoleMCP}}})}
	}, &mcpserver.Options{SyncWait: 2 * time.Second, PollInterval: 100 * time.Millisecond})
	return e, a
}

// TestOAuthGoSDKClientFlow: the go-sdk client, given only /mcp's URL and
// a preregistered client, follows the 401's resource_metadata to the
// protected resource metadata, discovers the authorization server, runs
// the authorization code grant with PKCE and the resource indicator, and
// calls a tool with the JWT it got.
func TestOAuthGoSDKClientFlow(t *testing.T) {
	as := mcpauthtest.New(t, map[string]mcpauthtest.Client{"claude": {Secret: "s3cret", Subject: "alice"}})
	e, _ := newOAuthEnv(t, as)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient: &oauthex.ClientCredentials{ClientID: "claude", ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: "s3cret"}},
		RedirectURL:         "http://127.0.0.1:1/callback",
		AuthorizationCodeFetcher: func(_ context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			code, state, err := mcpauthtest.Authorize(args.URL)
			return &auth.AuthorizationResult{Code: code, State: state}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{mcpserver.ProtocolLegacy, mcpserver.ProtocolModern} {
		client := mcp.NewClient(&mcp.Implementation{Name: "oauth-test", Version: "1"}, nil)
		cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp", OAuthHandler: h}, &mcp.ClientSessionOptions{ProtocolVersion: version})
		if err != nil {
			t.Fatalf("%s: connect: %v", version, err)
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_sources", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			t.Fatalf("%s: list_sources: %v %+v", version, err, res)
		}
		cs.Close()
	}
}

// TestOAuthTokensAtMCP: tokens from the authorization server at /mcp:
// valid works, wrong audience and expired are 401, a missing scope is 403
// insufficient_scope; a static token works alongside; a task created with
// project A's token is unknown to project B's token of the same subject.
func TestOAuthTokensAtMCP(t *testing.T) {
	as := mcpauthtest.New(t, nil)
	e, a := newOAuthEnv(t, as)
	resource := a.Resource()
	client := func(token string) *rpcClient {
		return &rpcClient{t: t, url: e.url, modern: true, tasksExt: true, token: token}
	}
	ctx := context.Background()
	now := time.Now()
	for _, tc := range []struct {
		name   string
		claims func(*mcpauthtest.Claims)
		status int
		code   string
	}{
		{"wrong audience", func(c *mcpauthtest.Claims) { c.Audience = []string{"https://other.example.com/mcp"} }, 401, "invalid_token"},
		{"expired", func(c *mcpauthtest.Claims) { c.Expiry = now.Add(-time.Hour) }, 401, "invalid_token"},
		{"missing scope", func(c *mcpauthtest.Claims) { c.Scope = "mailroom:project:acme" }, 403, "insufficient_scope"},
	} {
		c := mcpauthtest.Valid("alice", resource, "mailroom:mcp")
		tc.claims(&c)
		resp, _ := client(as.Issue(c)).post(ctx, "tools/call", map[string]any{"name": "list_sources", "arguments": map[string]any{}}, false)
		cs, _ := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
		if resp.StatusCode != tc.status || len(cs) != 1 || cs[0].Params["error"] != tc.code || cs[0].Params["resource_metadata"] != a.MetadataURL() {
			t.Errorf("%s: %d %q, want %d error=%s with resource_metadata", tc.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.status, tc.code)
		}
	}
	for name, token := range map[string]string{"oauth": as.Issue(mcpauthtest.Valid("alice", resource, "mailroom:mcp")), "static": "static-token-0000001"} {
		if r := client(token).call("tools/call", map[string]any{"name": "list_sources", "arguments": map[string]any{}}); r.Error != nil || r.Result["isError"] == true {
			t.Errorf("%s token: list_sources: %+v %+v", name, r.Error, r.Result)
		}
	}

	// Project isolation of tasks: the same subject, two projects (the
	// default one, whose source stripe the wait is on, and b).
	projA := client(as.Issue(mcpauthtest.Valid("alice", resource, "mailroom:mcp mailroom:project:default")))
	projB := client(as.Issue(mcpauthtest.Valid("alice", resource, "mailroom:mcp mailroom:project:b")))
	r := projA.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_oauth")})
	id, _ := r.Result["taskId"].(string)
	if id == "" {
		t.Fatalf("no task: %+v %+v", r.Result, r.Error)
	}
	if got := projB.call("tasks/get", map[string]any{"taskId": id}); got.Error == nil || got.Error.Code != -32602 {
		t.Errorf("project b's token sees project a's task: %+v %+v", got.Result, got.Error)
	}
	if got := projB.call("tasks/cancel", map[string]any{"taskId": id}); got.Error == nil {
		t.Errorf("project b's token cancelled project a's task: %+v", got.Result)
	}
	// A new token of project a (as after a refresh) still owns the task.
	again := client(as.Issue(mcpauthtest.Valid("alice", resource, "mailroom:mcp mailroom:project:default")))
	if got := again.call("tasks/get", map[string]any{"taskId": id}); got.Error != nil || got.Result["status"] != "working" {
		t.Errorf("project a's next token: %+v %+v", got.Result, got.Error)
	}
	task, err := e.store.TaskGet(ctx, id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := "oauth:" + as.Issuer() + "#alice@default"; task.Owner != want {
		t.Errorf("task owner %q, want %q", task.Owner, want)
	}
}

// TestSessionStreamOfAnotherToken: a token of project b that presents the
// session id of project a's session on a GET stream is refused by the
// SDK (403), and that attempt neither receives nor displaces the
// session's own stream: its task status notification still arrives.
func TestSessionStreamOfAnotherToken(t *testing.T) {
	as := mcpauthtest.New(t, nil)
	e, a := newOAuthEnv(t, as)
	alice := &rpcClient{t: t, url: e.url, token: as.Issue(mcpauthtest.Valid("alice", a.Resource(), "mailroom:mcp mailroom:project:default"))}
	alice.initialize()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := alice.openStream(ctx)

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/mcp", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", alice.session)
	req.Header.Set("Mcp-Protocol-Version", mcpserver.ProtocolLegacy)
	req.Header.Set("Authorization", "Bearer "+as.Issue(mcpauthtest.Valid("alice", a.Resource(), "mailroom:mcp mailroom:project:b")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("project b's GET on project a's session: %d, want 403", resp.StatusCode)
	}

	created := alice.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs("plink_session"), "task": map[string]any{"ttl": 60000}})
	task, _ := created.Result["task"].(map[string]any)
	taskID, _ := task["taskId"].(string)
	if taskID == "" {
		t.Fatalf("no task: %+v", created)
	}
	e.sendStripe("evt_session", "checkout.session.completed", "plink_session")
	waitFor(t, stream, "notifications/tasks/status completed on project a's stream", func(m rpcResponse) bool {
		return m.Method == "notifications/tasks/status" && m.Params["taskId"] == taskID && m.Params["status"] == "completed"
	})
}
