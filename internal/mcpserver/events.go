package mcpserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/mcpwire"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/task"
)

// This file implements, behind Options.EventsExtension, the draft MCP
// Events extension of the Triggers & Events working group
// (modelcontextprotocol/experimental-ext-triggers-events): events/list,
// events/poll with cursors, and events/stream with notifications/events/*.
// Each mailroom source is one event type; its subscription arguments are
// wait_for_event's filters. Event ids reuse the provider's id (the dedup
// key) when there is one.

// Error codes of the Events draft.
const (
	codeEventsNotFound    = -32011
	codeEventsUnsupported = -32014
)

// eventsArgs are an event type's subscription arguments.
type eventsArgs struct {
	Type   string         `json:"type,omitempty"`
	Match  map[string]any `json:"match,omitempty"`
	Filter string         `json:"filter,omitempty"`
}

var eventsInputSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"type":   map[string]any{"type": "string", "description": "only events of this provider type"},
		"match":  map[string]any{"type": "object", "description": "dotted body paths and the values they must equal"},
		"filter": map[string]any{"type": "string", "description": "CEL expression over body, headers, query, path, source"},
	},
}

var eventsPayloadSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"event_id":    map[string]any{"type": "string"},
		"source":      map[string]any{"type": "string"},
		"type":        map[string]any{"type": "string"},
		"received_at": map[string]any{"type": "string", "format": "date-time"},
		"headers":     map[string]any{"type": "object"},
		"body":        map[string]any{},
	},
}

// eventsCursor is an opaque position: the received time and id of the
// last event delivered. It encodes as base64 "micros:id".
type eventsCursor struct {
	at time.Time
	id string
}

func (c eventsCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.at.UnixMicro(), 10) + ":" + c.id))
}

func parseEventsCursor(s string) (eventsCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return eventsCursor{}, err
	}
	micros, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil {
		return eventsCursor{}, fmt.Errorf("malformed cursor")
	}
	return eventsCursor{at: time.UnixMicro(n), id: id}, nil
}

type eventsListParams struct {
	mcp.ParamsBase
	Cursor string `json:"cursor,omitempty"`
}

func (s *Server) eventsList(ctx context.Context, _ *mcp.ServerSession, _ *eventsListParams) (*rawResult, error) {
	srcs, err := s.store.SourceList(ctx)
	if err != nil {
		return nil, rpcError(jsonrpc.CodeInternalError, "list sources: %v", err)
	}
	evs := []map[string]any{}
	c := callerFrom(ctx)
	for _, src := range srcs {
		if !c.sees(store.ProjectOf(src.Name)) {
			continue
		}
		evs = append(evs, map[string]any{
			"name":          src.Name,
			"description":   "Webhooks received on mailroom source " + src.Name + " (verified, deduplicated, durable)",
			"delivery":      []string{"poll", "push"},
			"inputSchema":   eventsInputSchema,
			"payloadSchema": eventsPayloadSchema,
		})
	}
	return &rawResult{Body: map[string]any{"events": evs}}, nil
}

type eventsPollParams struct {
	mcp.ParamsBase
	Name      string     `json:"name"`
	Arguments eventsArgs `json:"arguments"`
	Cursor    *string    `json:"cursor"`
	MaxAgeMs  int64      `json:"maxAgeMs,omitempty"`
	MaxEvents int        `json:"maxEvents,omitempty"`
}

// eventsSubscription is a validated (name, arguments) pair.
type eventsSubscription struct {
	source string
	m      *task.Matcher
}

func (s *Server) eventsSubscribe(c caller, name string, args eventsArgs) (*eventsSubscription, error) {
	name, ok := c.qualify(name)
	if _, known := s.catalog.Current().Sources[name]; !ok || !known {
		data, _ := json.Marshal(map[string]any{"kind": "event"})
		return nil, &jsonrpc.Error{Code: codeEventsNotFound, Message: fmt.Sprintf("no event type %q (see events/list)", name), Data: data}
	}
	m, err := s.tasks.Compile(task.Spec{Source: name, Type: args.Type, Match: task.MatchStrings(args.Match), Filter: args.Filter})
	if err != nil {
		return nil, rpcError(jsonrpc.CodeInvalidParams, "arguments.filter: %v", err)
	}
	return &eventsSubscription{source: name, m: m}, nil
}

// occurrence is an EventOccurrence of the draft.
func occurrence(ev *store.Event, view *EventView) map[string]any {
	id := ev.DedupKey
	if id == "" {
		id = ev.ID
	}
	return map[string]any{"eventId": id, "name": ev.Source, "timestamp": mcpwire.Stamp(ev.ReceivedAt), "data": view}
}

// eventsAfter returns the matching events after cur, oldest first, at most
// limit, and whether more remain.
func (s *Server) eventsAfter(ctx context.Context, sub *eventsSubscription, cur eventsCursor, limit int) ([]map[string]any, eventsCursor, bool, error) {
	p := &store.EventListParams{Source: sub.source, Type: sub.m.Spec().Type, Since: cur.at, Limit: 1000}
	var all []*store.Event
	for {
		page, err := s.store.EventList(ctx, p)
		if err != nil {
			return nil, cur, false, err
		}
		all = append(all, page...)
		if len(page) < p.Limit || len(all) > 10*limit+1000 {
			break
		}
		p.Cursor = page[len(page)-1].ID
	}
	slices.Reverse(all) // oldest first
	var out []map[string]any
	for i, ev := range all {
		if !ev.ReceivedAt.After(cur.at) && ev.ID <= cur.id {
			continue
		}
		if len(out) == limit {
			return out, cur, i < len(all), nil
		}
		cur = eventsCursor{at: ev.ReceivedAt, id: ev.ID}
		view, in, err := task.LoadEvent(ctx, s.store, ev)
		if err != nil {
			return nil, cur, false, err
		}
		if in == nil || !sub.m.Matches(ev, in) {
			continue
		}
		out = append(out, occurrence(ev, view))
	}
	return out, cur, false, nil
}

// startCursor resolves a request cursor: nil is now; maxAgeMs floors it.
func (s *Server) startCursor(raw *string, maxAgeMs int64) (eventsCursor, bool, error) {
	now := s.now()
	if raw == nil || *raw == "" {
		return eventsCursor{at: now}, false, nil
	}
	cur, err := parseEventsCursor(*raw)
	if err != nil {
		return cur, false, rpcError(jsonrpc.CodeInvalidParams, "cursor: %v", err)
	}
	if maxAgeMs > 0 {
		if floor := now.Add(-time.Duration(maxAgeMs) * time.Millisecond); cur.at.Before(floor) {
			return eventsCursor{at: floor}, true, nil
		}
	}
	return cur, false, nil
}

func (s *Server) eventsPoll(ctx context.Context, _ *mcp.ServerSession, p *eventsPollParams) (*rawResult, error) {
	sub, err := s.eventsSubscribe(callerFrom(ctx), p.Name, p.Arguments)
	if err != nil {
		return nil, err
	}
	cur, truncated, err := s.startCursor(p.Cursor, p.MaxAgeMs)
	if err != nil {
		return nil, err
	}
	limit := p.MaxEvents
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	evs, cur, more, err := s.eventsAfter(ctx, sub, cur, limit)
	if err != nil {
		return nil, rpcError(jsonrpc.CodeInternalError, "poll: %v", err)
	}
	if evs == nil {
		evs = []map[string]any{}
	}
	return &rawResult{Body: map[string]any{
		"events": evs, "cursor": cur.String(), "truncated": truncated, "hasMore": more, "nextPollMs": 5000,
	}}, nil
}

func (s *Server) registerEventMethods() error {
	if err := mcp.AddReceivingCustomMethod(s.mcp, "events/list", s.eventsList); err != nil {
		return err
	}
	return mcp.AddReceivingCustomMethod(s.mcp, "events/poll", s.eventsPoll)
}

// eventsHeartbeat is how often an idle events/stream sends a heartbeat.
const eventsHeartbeat = 15 * time.Second

// streamEvents serves events/stream: a long-lived POST whose SSE response
// carries notifications/events/active, /event and /heartbeat.
func (h *httpShim) streamEvents(w http.ResponseWriter, r *http.Request, body []byte, id json.RawMessage) {
	s := h.srv
	var msg struct {
		Params eventsPollParams `json:"params"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		writeRPCError(w, id, http.StatusOK, rpcError(jsonrpc.CodeInvalidParams, "events/stream params: %v", err))
		return
	}
	p := msg.Params
	c := caller{}
	if pr, ok := access.From(r.Context()); ok && !pr.AllProjects() {
		c.project = store.ProjectOrDefault(pr.Project)
	}
	sub, err := s.eventsSubscribe(c, p.Name, p.Arguments)
	if err != nil {
		writeRPCError(w, id, http.StatusOK, err)
		return
	}
	cur, truncated, err := s.startCursor(p.Cursor, p.MaxAgeMs)
	if err != nil {
		writeRPCError(w, id, http.StatusOK, err)
		return
	}
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	meta := map[string]any{"io.modelcontextprotocol/subscriptionId": id}
	ctx := r.Context()
	notes := s.store.Subscribe(ctx) // before the first read, so nothing falls between
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	stream := mcpwire.NewSSEStream(w, true)
	defer stream.Close()
	stream.Send(notification("notifications/events/active", map[string]any{"cursor": cur.String(), "truncated": truncated, "_meta": meta}))
	drain := func() bool {
		for {
			evs, next, more, err := s.eventsAfter(ctx, sub, cur, 100)
			if err != nil {
				stream.Send(notification("notifications/events/error", map[string]any{
					"error": map[string]any{"code": jsonrpc.CodeInternalError, "message": "StorageError", "data": map[string]any{"reason": err.Error()}}, "_meta": meta}))
				return true
			}
			cur = next
			for _, ev := range evs {
				ev["cursor"] = cur.String()
				ev["_meta"] = meta
				if !stream.Send(notification("notifications/events/event", ev)) {
					return false
				}
			}
			if !more {
				return true
			}
		}
	}
	if !drain() { // replay from the cursor first
		return
	}
	beat := time.NewTicker(eventsHeartbeat)
	defer beat.Stop()
	poll := time.NewTicker(5 * time.Second) // notifications are hints
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case n, ok := <-notes:
			if !ok {
				return
			}
			if n.Kind == store.NotifyEventCreated && n.Source == sub.source && !drain() {
				return
			}
		case <-poll.C:
			if !drain() {
				return
			}
		case <-beat.C:
			if !stream.Send(notification("notifications/events/heartbeat", map[string]any{"cursor": cur.String(), "_meta": meta})) {
				return
			}
		}
	}
}

// eventsUnsupported answers events/* when the extension is off.
func eventsUnsupported(w http.ResponseWriter, id json.RawMessage) {
	data, _ := json.Marshal(map[string]any{"feature": "events", "value": "disabled"})
	writeRPCError(w, id, http.StatusOK, &jsonrpc.Error{Code: codeEventsUnsupported, Message: "the MCP Events extension is off on this server (mcp.events_extension)", Data: data})
}
