// Package mcpserver is mailroom's MCP server: tools over the event store,
// durable Tasks that complete when a correlated webhook arrives (in both
// the 2025-11-25 core form and the 2026-07-28 extension form), and
// resources whose subscribers hear of each new event.
//
// It is built on the official go-sdk, which has no Tasks: the tasks/*
// methods are custom methods, task creation happens in receiving
// middleware, and the few pieces the SDK withholds (the legacy params.task,
// custom notifications, listen with taskIds) live in the thin HTTP and
// stdio layers of this package. Tasks live in the [store.Store], so they
// survive restarts and are shared by every instance on one database.
package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/logx"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/task"
)

// Options configures a [Server].
type Options struct {
	Logger *slog.Logger
	// DefaultOwner is the identity of callers without a token (stdio, or a
	// loopback listener without auth). Empty means "local".
	DefaultOwner string
	// SyncWait bounds how long wait_for_event blocks for a client without
	// task support. Zero means 25s.
	SyncWait time.Duration
	// PollInterval is suggested to clients polling tasks. Zero means 1s.
	PollInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// EventsExtension turns on the experimental draft MCP Events
	// extension (events/list, events/poll, events/stream).
	EventsExtension bool
	// Upstreams are MCP servers to front; AsyncTools turn some of their
	// tools into task-returning tools.
	Upstreams  []Upstream
	AsyncTools []AsyncTool
}

// Server is mailroom's MCP server. Build it with [New], serve it with
// [Server.HTTPHandler] or [Server.RunStdio], and run [Server.Run] beside.
type Server struct {
	store   store.Store
	catalog *catalog.Catalog
	mcp     *mcp.Server
	tasks   *task.Tasks
	log     *slog.Logger
	opts    Options
	now     func() time.Time

	// streams deliver custom notifications (task status) to clients.
	streams *streamRegistry
	// proxy fronts upstream MCP servers.
	proxy *proxy

	mu sync.Mutex
	// changed wakes tasks/result callers waiting on a task.
	changed map[string][]chan struct{}
	// sources are the per-source resources currently registered.
	sources map[string]bool
}

// New builds the server over the store and catalog. Tasks are created
// and completed by tasks, which the caller runs. s, cat and tasks must not
// be nil.
func New(s store.Store, cat *catalog.Catalog, tasks *task.Tasks, opts *Options) (*Server, error) {
	if s == nil || cat == nil || tasks == nil {
		panic("mcpserver.New: nil store, catalog or tasks")
	}
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DefaultOwner == "" {
		o.DefaultOwner = "local"
	}
	if o.SyncWait <= 0 {
		o.SyncWait = 25 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	srv := &Server{
		store: s, catalog: cat, tasks: tasks, log: o.Logger, opts: o, now: o.Now,
		streams: newStreamRegistry(), changed: map[string][]chan struct{}{}, sources: map[string]bool{},
	}

	// Declare what is served: the SDK answers prompts/list and prompts/get
	// whether or not prompts exist (upstream servers bring them), so the
	// capability is declared, with an empty list until an upstream adds
	// some. Completion is not served, and not declared.
	caps := &mcp.ServerCapabilities{
		Tools:     &mcp.ToolCapabilities{ListChanged: true},
		Prompts:   &mcp.PromptCapabilities{ListChanged: true},
		Resources: &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
		Logging:   &mcp.LoggingCapabilities{},
	}
	caps.AddExtension(TasksExtension, map[string]any{})
	srv.mcp = mcp.NewServer(&mcp.Implementation{Name: "mailroom", Title: "mailroom event gateway", Version: buildinfo.Read().Version}, &mcp.ServerOptions{
		Instructions: "mailroom receives third-party webhooks (payments, deployments, fulfilments). " +
			"Call wait_for_event right after starting an operation that finishes later: it returns a task that " +
			"completes when the matching webhook arrives. Use list_events/get_event to see what arrived and where it was delivered.",
		Logger:             srv.sdkLog(),
		Capabilities:       caps,
		SubscribeHandler:   func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	srv.addTools()
	srv.addResources()
	var err error
	if srv.proxy, err = newProxy(srv, o.Upstreams, o.AsyncTools); err != nil {
		return nil, err
	}
	if err := srv.registerTaskMethods(); err != nil {
		return nil, err
	}
	if o.EventsExtension {
		if err := srv.registerEventMethods(); err != nil {
			return nil, fmt.Errorf("register events methods: %w", err)
		}
	}
	srv.mcp.AddReceivingMiddleware(srv.middleware)
	return srv, nil
}

// MCP returns the underlying SDK server.
func (s *Server) MCP() *mcp.Server { return s.mcp }

// middleware identifies the caller and its Tasks wire form, patches the
// handshake and tool list for Tasks, and turns task-augmented calls into
// tasks.
func (s *Server) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		c := s.identify(req)
		ctx = context.WithValue(ctx, callerKey{}, c)
		switch method {
		case "initialize":
			res, err := next(ctx, method, req)
			if err != nil {
				return res, err
			}
			return s.patchEventsCapability(c.wire.patchInitialize(res)), nil
		case "server/discover":
			res, err := next(ctx, method, req)
			if err != nil {
				return res, err
			}
			return s.patchEventsCapability(res), nil
		case "tools/list":
			res, err := next(ctx, method, req)
			if err != nil {
				return res, err
			}
			return c.wire.patchToolList(res, s.takesTasks), nil
		case "resources/list":
			res, err := next(ctx, method, req)
			if lr, ok := res.(*mcp.ListResourcesResult); ok && err == nil && c.project != "" {
				kept := lr.Resources[:0:0]
				for _, r := range lr.Resources {
					if src, ok := sourceOfURI(r.URI); !ok || c.sees(store.ProjectOf(src)) {
						kept = append(kept, r)
					}
				}
				lr.Resources = kept
			}
			return res, err
		case "resources/subscribe":
			if r, ok := req.(*mcp.SubscribeRequest); ok && r.Params != nil {
				if src, ok := sourceOfURI(r.Params.URI); ok && !c.sees(store.ProjectOf(src)) {
					return nil, mcp.ResourceNotFoundError(r.Params.URI)
				}
			}
		case "tools/call":
			if r, ok := req.(*mcp.CallToolRequest); ok && r.Params != nil {
				if ttl, asTask := c.wire.taskRequested(c, r.Params); asTask {
					return s.callAsTask(ctx, next, r, ttl)
				}
			}
		}
		return next(ctx, method, req)
	}
}

// takesTasks reports whether a tool can run as a task.
func (s *Server) takesTasks(tool string) bool {
	return tool == toolWaitForEvent || s.proxy.async[tool] != nil
}

// callAsTask serves a tools/call that asked for a task. A tool that takes
// none is refused or run synchronously, as the wire form says. Arguments
// the plain call would reject get exactly the plain call's answer.
func (s *Server) callAsTask(ctx context.Context, next mcp.MethodHandler, r *mcp.CallToolRequest, ttl time.Duration) (mcp.Result, error) {
	c := callerFrom(ctx)
	if !s.takesTasks(r.Params.Name) {
		if err := c.wire.refuseTask(r.Params.Name); err != nil {
			return nil, err
		}
		return next(ctx, "tools/call", r)
	}
	if ca := s.proxy.async[r.Params.Name]; ca != nil {
		return s.proxy.createAsyncTask(ctx, r, ca, ttl)
	}
	t, err := s.createWaitTask(ctx, r, ttl)
	if errors.Is(err, errBadArguments) {
		// The plain call validates the same arguments and fails at once,
		// before it waits for anything: its answer is the one to give.
		res, err := next(ctx, "tools/call", r)
		if err != nil {
			return nil, err
		}
		tr, ok := res.(*mcp.CallToolResult)
		if !ok || !tr.IsError {
			return nil, rpcError(jsonrpc.CodeInternalError, "wait_for_event: arguments refused for a task were accepted by the plain call")
		}
		return c.wire.endedAtOnce(ctx, c, r.Params, ttl, tr)
	}
	if err != nil {
		return nil, err
	}
	return c.wire.created(t), nil
}

// identify reads who is calling and in which protocol revision.
func (s *Server) identify(req mcp.Request) caller {
	c := caller{owner: s.opts.DefaultOwner}
	if ex := req.GetExtra(); ex != nil && ex.TokenInfo != nil && ex.TokenInfo.UserID != "" {
		c.owner = ex.TokenInfo.UserID
		if p, ok := mcpauth.PrincipalOf(ex.TokenInfo); ok && !p.AllProjects() {
			c.project = store.ProjectOrDefault(p.Project)
		}
	}
	var meta map[string]any
	if p := req.GetParams(); p != nil && !reflect.ValueOf(p).IsNil() { // typed nil when a client sends no params
		meta = p.GetMeta()
	}
	if v := metaProtocol(meta); v != "" {
		c.protocol = v
		c.tasksExt = metaHasTasks(meta)
	}
	if ss, ok := req.GetSession().(*mcp.ServerSession); ok && ss != nil {
		c.session = ss.ID()
		if c.protocol == "" {
			if ip := ss.InitializeParams(); ip != nil {
				c.protocol = ip.ProtocolVersion
			}
		}
	}
	if c.protocol == "" {
		c.protocol = ProtocolLegacy
	}
	c.wire = s.wireFor(c.protocol)
	return c
}

// patchEventsCapability advertises the Events extension when it is on.
func (s *Server) patchEventsCapability(res mcp.Result) mcp.Result {
	if !s.opts.EventsExtension {
		return res
	}
	var body map[string]any
	var meta map[string]any
	if rr, ok := res.(*rawResult); ok {
		body, meta = rr.Body, rr.Meta
	} else {
		body = objectOf(res)
		meta, _ = body["_meta"].(map[string]any)
		delete(body, "_meta")
	}
	caps, _ := body["capabilities"].(map[string]any)
	if caps == nil {
		return res
	}
	caps["events"] = map[string]any{"listChanged": true}
	out := &rawResult{Body: body}
	out.Meta = meta
	return out
}

// errBadArguments marks a wait_for_event call whose arguments the tool
// refuses.
var errBadArguments = errors.New("bad wait_for_event arguments")

// createWaitTask creates the task of a wait_for_event call. Arguments the
// tool refuses are errBadArguments.
func (s *Server) createWaitTask(ctx context.Context, r *mcp.CallToolRequest, ttl time.Duration) (*store.Task, error) {
	c := callerFrom(ctx)
	var args waitArgs
	if len(r.Params.Arguments) > 0 {
		if err := decodeWaitArgs(r.Params.Arguments, &args); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadArguments, err)
		}
	}
	w, err := waitOf(&args)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadArguments, err)
	}
	t, err := s.tasks.Create(ctx, &task.CreateParams{Wait: w, TTL: ttl, Owner: c.owner, Project: c.project, SessionID: c.session,
		Protocol: c.protocol, Tool: toolWaitForEvent, PollInterval: s.opts.PollInterval})
	if ie := (*task.InputError)(nil); errors.As(err, &ie) {
		return nil, fmt.Errorf("%w: %v", errBadArguments, err)
	}
	if err != nil {
		return nil, createError(err)
	}
	return t, nil
}

// createError is the JSON-RPC error of a task that could not be created:
// invalid params for a wrong argument, internal otherwise.
func createError(err error) error {
	if ie := (*task.InputError)(nil); errors.As(err, &ie) {
		return rpcError(jsonrpc.CodeInvalidParams, "%v", err)
	}
	return rpcError(jsonrpc.CodeInternalError, "%v", err)
}

// waitChange blocks until task id changes, poll passes, or ctx ends.
func (s *Server) waitChange(ctx context.Context, id string, poll time.Duration) error {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.changed[id] = append(s.changed[id], ch)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		list := s.changed[id]
		for i, c := range list {
			if c == ch {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.changed, id)
		} else {
			s.changed[id] = list
		}
	}()
	if poll <= 0 || poll > 5*time.Second {
		poll = 5 * time.Second
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// taskChanged wakes waiters on the task and pushes its status to clients.
func (s *Server) taskChanged(ctx context.Context, id string) {
	s.mu.Lock()
	for _, ch := range s.changed[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	if !s.streams.interested(id) {
		return
	}
	t, err := s.store.TaskGet(ctx, id, s.now())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("load changed task", "task", id, "err", err)
		}
		return
	}
	s.streams.publishTask(t, s.wireFor(t.Protocol).sessionNotification(t))
}

// Run pushes notifications (task status, new events, resource list
// changes) and keeps upstream connections until ctx ends. It does not
// complete tasks: the [task.Tasks] given to [New] does.
func (s *Server) Run(ctx context.Context) error {
	notes := s.store.Subscribe(ctx)
	s.proxy.start(ctx)
	s.syncSourceResources(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case n, ok := <-notes:
			if !ok {
				return nil
			}
			switch n.Kind {
			case store.NotifyTaskChanged:
				s.taskChanged(ctx, n.ID)
			case store.NotifyEventCreated:
				s.eventCreated(ctx, n.Source, n.ID)
			case store.NotifyCatalogChanged:
				s.syncSourceResources(ctx)
			}
		}
	}
}

// sdkLog is the logger handed to the MCP SDK, which logs every session,
// subscription and resource notification at info level (one line per
// ingested event): those lines go to debug; its warnings and errors stay.
func (s *Server) sdkLog() *slog.Logger {
	return slog.New(logx.Demote(s.log.Handler()))
}
