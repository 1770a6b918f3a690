package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mailroomhq/mailroom/internal/mcpauth/mcpauthtest"
)

// freeAddr returns a loopback address that was free a moment ago, for a
// server whose URL must be in its own config (the OAuth resource).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startOAuthServer runs the binary with mcp.oauth trusting as, and a
// static mcp token.
func startOAuthServer(t *testing.T, as *mcpauthtest.Server) (inst *instance, resource string) {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	resource = "http://" + addr + "/mcp"
	cfg := filepath.Join(dir, "mailroom.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
storage: sqlite://%s/m.db
mcp:
  tokens:
    - {name: laptop, token: static-laptop-token-1}
  oauth:
    resource: %s
    authorization_servers: [%s]
sources:
  - name: stripe
    verify: {type: none}
`, dir, resource, as.Issuer())), 0o600)
	return startProcess(t, binary(t), []string{"serve", "--config", cfg, "--listen", addr}, nil), resource
}

// TestMCPOAuthBinary: the real binary with mcp.oauth serves the protected
// resource metadata at both well-known paths (to any origin), answers a
// request without a token with the challenge that points there, and the
// go-sdk client goes from that 401 through the authorization code grant
// with the local authorization server to a tool call; the static token
// keeps working.
func TestMCPOAuthBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	as := mcpauthtest.New(t, map[string]mcpauthtest.Client{"claude-code": {Secret: "cc-secret", Subject: "alice"}})
	inst, resource := startOAuthServer(t, as)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	base := "http://" + inst.addr
	for _, u := range []string{base + "/.well-known/oauth-protected-resource/mcp", base + "/.well-known/oauth-protected-resource"} {
		prm, err := oauthex.GetProtectedResourceMetadata(ctx, u, resource, http.DefaultClient)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != as.Issuer() {
			t.Errorf("%s: authorization_servers %v", u, prm.AuthorizationServers)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Origin", "http://localhost:6274") // the MCP Inspector
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s from a browser origin: %d, ACAO %q", u, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, resource, nil)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs, _ := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if resp.StatusCode != 401 || len(cs) != 1 || cs[0].Params["resource_metadata"] != base+"/.well-known/oauth-protected-resource/mcp" || cs[0].Params["scope"] != "mailroom:mcp" {
		t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient: &oauthex.ClientCredentials{ClientID: "claude-code", ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: "cc-secret"}},
		RedirectURL:         "http://127.0.0.1:1/callback",
		AuthorizationCodeFetcher: func(_ context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			code, state, err := mcpauthtest.Authorize(args.URL)
			return &auth.AuthorizationResult{Code: code, State: state}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, transport := range map[string]*mcp.StreamableClientTransport{
		"oauth":  {Endpoint: resource, OAuthHandler: h},
		"static": {Endpoint: resource, HTTPClient: &http.Client{Transport: bearer("static-laptop-token-1")}},
	} {
		session, err := mcp.NewClient(&mcp.Implementation{Name: "oauth-binary-test", Version: "1"}, nil).Connect(ctx, transport, nil)
		if err != nil {
			t.Fatalf("%s: connect: %v\n%s", name, err, inst.logs)
		}
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "list_sources", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			t.Errorf("%s: list_sources: %v %+v", name, err, res)
		}
		session.Close()
	}
}

// bearer is a RoundTripper that adds a static bearer token.
type bearer string

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

// TestMCPOAuthNodeClient runs test/mcp-oauth.mjs: the official MCP
// TypeScript SDK's client auth (the code Claude Code builds on) goes from
// the real binary's 401 through the metadata and the local authorization
// server's code grant to a tool call.
func TestMCPOAuthNodeClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	node := needNode(t)
	as := mcpauthtest.New(t, map[string]mcpauthtest.Client{"node-client": {Secret: "node-secret", Subject: "nora"}})
	inst, resource := startOAuthServer(t, as)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "../../test/mcp-oauth.mjs", resource, "node-client", "node-secret").CombinedOutput()
	t.Logf("node:\n%s", out)
	if err != nil {
		t.Fatalf("node OAuth client: %v\nserver log:\n%s", err, inst.logs)
	}
}
