package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/mcpserver"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/task"
)

// mountMCP serves the MCP server at /mcp, unless the config disables it.
// With no token and no OAuth configured it serves only on a loopback
// listener, like the admin API. With mcp.oauth it also serves the
// protected resource metadata. Streams end when streamsCtx does, so that
// shutdown does not wait on idle SSE connections.
func mountMCP(mux *http.ServeMux, st store.Store, cat *catalog.Catalog, tasks *task.Tasks, cfg *config.Config, authn *auth.Authenticator, log *slog.Logger, streamsCtx context.Context) (*mcpserver.Server, error) {
	if cfg.MCP.Disabled {
		return nil, nil
	}
	if !isLoopback(cfg.Listen) && cfg.API.Token == "" && len(cfg.MCP.Tokens) == 0 && !cfg.MCP.OAuth.Enabled() {
		// Without a static token or OAuth /mcp would be open off
		// loopback until a token is stored: it is off there, as the
		// admin API is without api.token.
		authn = nil
	}
	guard, err := mcpGuard(mux, cfg, authn, log)
	if err != nil {
		return nil, err
	}
	if guard.Empty() && !isLoopback(cfg.Listen) {
		log.Warn("no api.token, mcp.tokens or mcp.oauth set and the listener is not loopback: /mcp is disabled")
		mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "MCP disabled: set api.token, mcp.tokens or mcp.oauth to serve /mcp on a non-loopback listener", http.StatusForbidden)
		})
		return nil, nil
	}
	srv, err := mcpserver.New(st, cat, tasks, &mcpserver.Options{Logger: log.With("component", "mcp"),
		EventsExtension: cfg.MCP.EventsExtension,
		Upstreams:       upstreams(cfg), AsyncTools: asyncTools(cfg)})
	if err != nil {
		return nil, err
	}
	h := srv.HTTPHandler(&mcpserver.HTTPOptions{Auth: guard})
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// SSE streams outlive the server's write timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(streamsCtx, cancel)()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	return srv, nil
}

// mcpGuard builds the authentication of /mcp: api.token (an admin named
// "api"), each of mcp.tokens (the MCP role, named by its name) and, with
// mcp.oauth, OAuth access tokens, whose protected resource metadata it
// registers on mux.
func mcpGuard(mux *http.ServeMux, cfg *config.Config, authn *auth.Authenticator, log *slog.Logger) (*mcpauth.Guard, error) {
	static := map[string]access.Principal{}
	if cfg.API.Token != "" {
		static[cfg.API.Token] = access.Principal{TokenID: "api", Name: "api", Role: access.RoleAdmin}
	}
	for _, t := range cfg.MCP.Tokens {
		static[t.Token] = access.Principal{TokenID: t.Name, Name: t.Name, Role: access.RoleMCP}
	}
	opts := mcpauth.GuardOptions{Static: static, Logger: log, Tokens: authn}
	if o := cfg.MCP.OAuth; o.Enabled() {
		a, err := mcpauth.New(oauthOptions(o, log))
		if err != nil {
			return nil, fmt.Errorf("mcp.oauth: %w", err)
		}
		log.Info("mcp: OAuth access tokens accepted", "resource", o.Resource, "authorization_servers", o.AuthorizationServers,
			"metadata", a.MetadataURL(), "scopes", a.Scopes())
		a.Register(mux)
		opts.OAuth = a
	}
	return mcpauth.NewGuard(opts), nil
}

// oauthOptions converts mcp.oauth.
func oauthOptions(o config.MCPOAuthConfig, log *slog.Logger) mcpauth.Options {
	return mcpauth.Options{Resource: o.Resource, AuthorizationServers: o.AuthorizationServers,
		JWKSURL: o.JWKSURL, IntrospectionURL: o.IntrospectionURL, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Scopes: o.Scopes, Algorithms: o.Algorithms, Leeway: o.Leeway.D(), Logger: log}
}

// upstreams converts the config's upstream MCP servers.
func upstreams(cfg *config.Config) []mcpserver.Upstream {
	out := make([]mcpserver.Upstream, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		out = append(out, mcpserver.Upstream{Name: u.Name, URL: u.URL, Headers: u.Headers, Command: u.Command, Env: u.Env, Timeout: u.Timeout.D()})
	}
	return out
}

// asyncTools converts the config's async tool rules.
func asyncTools(cfg *config.Config) []mcpserver.AsyncTool {
	out := make([]mcpserver.AsyncTool, 0, len(cfg.AsyncTools))
	for _, a := range cfg.AsyncTools {
		t := mcpserver.AsyncTool{Tool: a.Tool, Source: a.Source, Type: a.Type, Match: a.Match, Filter: a.Filter, Timeout: a.Timeout.D()}
		if f := a.Fail; f.IsSet() {
			t.Fail = &mcpserver.AsyncFail{Source: f.Source, Type: f.Type, Match: f.Match, Filter: f.Filter}
		}
		out = append(out, t)
	}
	return out
}
