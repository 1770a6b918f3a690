package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/mcpserver"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/task"
)

// mountMCP serves the MCP server at /mcp, unless the config disables it.
// With no token configured it serves only on a loopback listener, like
// the admin API. Streams end when streamsCtx does, so that shutdown does
// not wait on idle SSE connections.
func mountMCP(mux *http.ServeMux, st store.Store, cat *catalog.Catalog, tasks *task.Tasks, cfg *config.Config, log *slog.Logger, streamsCtx context.Context) (*mcpserver.Server, error) {
	if cfg.MCP.Disabled {
		return nil, nil
	}
	tokens := map[string]string{}
	if cfg.API.Token != "" {
		tokens[cfg.API.Token] = "api"
	}
	for _, t := range cfg.MCP.Tokens {
		tokens[t.Token] = t.Name
	}
	if len(tokens) == 0 && !isLoopback(cfg.Listen) {
		log.Warn("no api.token or mcp.tokens set and the listener is not loopback: /mcp is disabled")
		mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "MCP disabled: set api.token or mcp.tokens to serve /mcp on a non-loopback listener", http.StatusForbidden)
		})
		return nil, nil
	}
	srv, err := mcpserver.New(st, cat, tasks, &mcpserver.Options{Logger: log.With("component", "mcp"),
		EventsExtension: cfg.MCP.EventsExtension,
		Upstreams:       upstreams(cfg), AsyncTools: asyncTools(cfg)})
	if err != nil {
		return nil, err
	}
	h := srv.HTTPHandler(&mcpserver.HTTPOptions{Tokens: tokens})
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
