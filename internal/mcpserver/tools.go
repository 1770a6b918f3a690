package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/search"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/task"
)

const toolWaitForEvent = "wait_for_event"

// waitArgs is the input of wait_for_event.
type waitArgs struct {
	Source string         `json:"source" jsonschema:"the mailroom source the webhook arrives on, e.g. stripe"`
	Type   string         `json:"type,omitempty" jsonschema:"the provider event type to wait for, e.g. checkout.session.completed"`
	Match  map[string]any `json:"match,omitempty" jsonschema:"dotted body paths and the values they must equal, e.g. {\"data.object.payment_link\": \"plink_123\"}"`
	Filter string         `json:"filter,omitempty" jsonschema:"a CEL expression over body, headers, query, path and source that must be true"`
	Since  string         `json:"since,omitempty" jsonschema:"look back this far for an event that already arrived: a duration (10m, the default), an RFC 3339 time, or an event id"`
	// Timeout is a duration string.
	Timeout string `json:"timeout,omitempty" jsonschema:"how long to wait before the wait fails, e.g. 30m (default 1h)"`
}

// waitResult is the output of wait_for_event: what a completed task
// stores, so that both paths answer alike.
type waitResult = task.WaitResult

// EventView is what tools, resources and channel messages show of an event.
type EventView = task.EventView

// decodeWaitArgs decodes wait_for_event's raw arguments into a, keeping
// the exact text of numbers among the match values (an integer id beyond
// 2^53 would otherwise be rounded, and wait for the wrong event).
func decodeWaitArgs(raw json.RawMessage, a *waitArgs) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(a)
}

// waitOf reads wait_for_event's arguments as a [task.Wait]; the task
// package checks the rest.
func waitOf(a *waitArgs) (task.Wait, error) {
	w := task.Wait{Source: a.Source, Type: a.Type, Match: a.Match, Filter: a.Filter, Since: a.Since}
	if a.Timeout != "" {
		d, err := time.ParseDuration(a.Timeout)
		if err != nil || d <= 0 {
			return w, fmt.Errorf("timeout %q: want a positive duration such as 30m", a.Timeout)
		}
		w.Timeout = d
	}
	return w, nil
}

// checkWait validates wait_for_event's arguments and resolves since and
// timeout. Errors name the argument.
func (s *Server) checkWait(ctx context.Context, a *waitArgs) (task.Spec, error) {
	w, err := waitOf(a)
	if err != nil {
		return task.Spec{}, err
	}
	full, ok := callerFrom(ctx).qualify(w.Source)
	if !ok {
		return task.Spec{}, fmt.Errorf("source: %q does not exist (see list_sources)", w.Source)
	}
	w.Source = full
	return s.tasks.Resolve(ctx, &w)
}

// waitForEvent is the synchronous form, for clients without task support:
// it waits up to SyncWait, with progress notifications, and then says it
// is still waiting.
func (s *Server) waitForEvent(ctx context.Context, req *mcp.CallToolRequest, a waitArgs) (*mcp.CallToolResult, waitResult, error) {
	if len(req.Params.Arguments) > 0 {
		// The SDK hands a over after a round trip through float64; read
		// the match values again from the request as sent.
		var exact waitArgs
		if decodeWaitArgs(req.Params.Arguments, &exact) == nil {
			a.Match = exact.Match
		}
	}
	spec, err := s.checkWait(ctx, &a)
	if err != nil {
		return nil, waitResult{}, err
	}
	timeout := spec.Timeout
	c := callerFrom(ctx)
	limit := min(timeout, s.opts.SyncWait)
	start := s.now()
	deadline := start.Add(limit)
	var ev *EventView
	for step := 0; ; step++ {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		ev, err = s.tasks.WaitSync(ctx, c.owner, spec, min(left, 5*time.Second))
		if err != nil || ev != nil {
			break
		}
		spec.Since = start.Add(-time.Second) // later steps need not look back far
		if tok := req.Params.GetProgressToken(); tok != nil && req.Session != nil {
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: tok, Progress: float64(step + 1),
				Message: fmt.Sprintf("still waiting for a %s event (%s)", spec.Describe(), time.Since(start).Round(time.Second)),
			})
		}
	}
	if err != nil {
		return nil, waitResult{}, err
	}
	if ev != nil {
		r := task.EventResult(ev)
		return r, r.StructuredContent.(waitResult), nil
	}
	if limit >= timeout {
		r := task.TimedOutResult(spec.Describe(), timeout)
		return r, r.StructuredContent.(waitResult), nil
	}
	out := waitResult{
		Status: "waiting", Since: start.UTC().Format(time.RFC3339Nano),
		Message: fmt.Sprintf("No matching %s event yet after %s. Call wait_for_event again with since=%q to keep waiting without missing one; clients with MCP Tasks get a task instead.",
			spec.Describe(), limit.Round(time.Second), start.UTC().Format(time.RFC3339Nano)),
	}
	return nil, out, nil
}

// listEventsArgs is the input of list_events.
type listEventsArgs struct {
	Source string   `json:"source,omitempty" jsonschema:"only events of this source"`
	Type   string   `json:"type,omitempty" jsonschema:"only events of this type"`
	Status string   `json:"status,omitempty" jsonschema:"routed or ignored"`
	Since  string   `json:"since,omitempty" jsonschema:"only events received in this past duration (e.g. 1h) or after this RFC 3339 time"`
	Limit  int      `json:"limit,omitempty" jsonschema:"at most this many (default 20, max 200)"`
	Cursor string   `json:"cursor,omitempty" jsonschema:"next_cursor of the previous page"`
	Where  []string `json:"where,omitempty" jsonschema:"only events whose body holds VALUE at PATH, each as PATH=VALUE (all must hold): data.object.customer=cus_123, items[0].sku=\"A-1\", amount=9007199254740993; VALUE is JSON (numbers compared exactly), text that is not JSON is a string"`
	Query  string   `json:"query,omitempty" jsonschema:"only events whose body contains this text (ASCII letters in any case)"`
}

type eventList struct {
	Events     []*store.Event `json:"events"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

func (s *Server) listEvents(ctx context.Context, _ *mcp.CallToolRequest, a listEventsArgs) (*mcp.CallToolResult, eventList, error) {
	c := callerFrom(ctx)
	src, ok := c.qualify(a.Source)
	if !ok {
		return nil, eventList{Events: []*store.Event{}}, nil
	}
	p := &store.EventListParams{Project: c.project, Source: src, Type: a.Type, Status: a.Status, Cursor: a.Cursor, Limit: a.Limit}
	p.Limit = toolPageLimit(p.Limit)
	if a.Since != "" {
		since, err := s.tasks.ParseSince(ctx, a.Since)
		if err != nil {
			return nil, eventList{}, err
		}
		p.Since = since
	}
	if len(a.Where) > 0 || a.Query != "" {
		return s.searchEvents(ctx, p, a)
	}
	evs, next, err := store.FetchPage(ctx, p.Cursor, p.Limit, func(ctx context.Context, cursor string, limit int) ([]*store.Event, error) {
		q := *p
		q.Cursor, q.Limit = cursor, limit
		return s.store.EventList(ctx, &q)
	}, func(e *store.Event) string { return e.ID })
	if err != nil {
		return nil, eventList{}, fmt.Errorf("list events: %w", err)
	}
	out := eventList{Events: evs, NextCursor: next}
	if out.Events == nil {
		out.Events = []*store.Event{}
	}
	return nil, out, nil
}

// Page sizes of the list tools: smaller than the API's, as an agent reads
// every row it gets. The limit arguments' jsonschema text states them too
// (a struct tag cannot name a constant).
const (
	toolDefaultLimit = 20
	toolMaxLimit     = 200
)

// toolPageLimit returns a list tool's limit defaulted and clamped.
func toolPageLimit(limit int) int {
	if limit <= 0 {
		return toolDefaultLimit
	}
	return min(limit, toolMaxLimit)
}

// searchEvents is list_events with where or query: one bounded store
// search (see [store.History.EventSearch]), whose page may be short, even
// empty, while next_cursor is set.
func (s *Server) searchEvents(ctx context.Context, p *store.EventListParams, a listEventsArgs) (*mcp.CallToolResult, eventList, error) {
	sp := &store.EventSearchParams{EventListParams: *p}
	sp.Query = a.Query
	if len(a.Where) > 0 {
		f, err := search.ParseFilter(a.Where)
		if err != nil {
			return nil, eventList{}, fmt.Errorf("where: %w", err)
		}
		sp.Body = f
	}
	page, err := s.store.EventSearch(ctx, sp)
	if err != nil {
		return nil, eventList{}, fmt.Errorf("search events: %w", err)
	}
	return nil, eventList{Events: page.Events, NextCursor: page.Next}, nil
}

type eventIDArgs struct {
	EventID string `json:"event_id" jsonschema:"the event id (evt_...)"`
}

type deliveryWithAttempts struct {
	*store.Delivery
	AttemptLog []*store.Attempt `json:"attempt_log"`
}

type eventDetail struct {
	Event      *EventView              `json:"event"`
	Status     string                  `json:"status"`
	RequestID  string                  `json:"request_id"`
	Deliveries []*deliveryWithAttempts `json:"deliveries"`
}

func (s *Server) getEvent(ctx context.Context, _ *mcp.CallToolRequest, a eventIDArgs) (*mcp.CallToolResult, eventDetail, error) {
	ev, err := s.store.EventGetByID(ctx, a.EventID)
	if err == nil && !callerFrom(ctx).sees(ev.Project) {
		err = store.ErrNotFound // another project's event is missing to this caller
	}
	if err != nil {
		return nil, eventDetail{}, fmt.Errorf("event %q: %w", a.EventID, err)
	}
	view, _, err := task.LoadEvent(ctx, s.store, ev)
	if err != nil {
		return nil, eventDetail{}, err
	}
	if view == nil {
		view = &EventView{EventID: ev.ID, Source: ev.Source, Type: ev.Type, ReceivedAt: ev.ReceivedAt}
	}
	out := eventDetail{Event: view, Status: ev.Status, RequestID: ev.RequestID, Deliveries: []*deliveryWithAttempts{}}
	ds, err := s.store.DeliveryList(ctx, &store.DeliveryListParams{EventID: ev.ID, Limit: 1000})
	if err != nil {
		return nil, eventDetail{}, fmt.Errorf("deliveries of %s: %w", ev.ID, err)
	}
	for _, d := range ds {
		as, err := s.store.AttemptList(ctx, d.ID)
		if err != nil {
			return nil, eventDetail{}, fmt.Errorf("attempts of %s: %w", d.ID, err)
		}
		out.Deliveries = append(out.Deliveries, &deliveryWithAttempts{Delivery: d, AttemptLog: as})
	}
	return nil, out, nil
}

type sourceView struct {
	Name        string `json:"name"`
	Verify      string `json:"verify"`
	IngestPath  string `json:"ingest_path"`
	Description string `json:"description,omitempty"`
}

type sourceList struct {
	Sources []sourceView `json:"sources"`
}

func (s *Server) listSources(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, sourceList, error) {
	srcs, err := s.store.SourceList(ctx)
	if err != nil {
		return nil, sourceList{}, fmt.Errorf("list sources: %w", err)
	}
	out := sourceList{Sources: []sourceView{}}
	c := callerFrom(ctx)
	for _, src := range srcs {
		if !c.sees(store.ProjectOf(src.Name)) {
			continue
		}
		out.Sources = append(out.Sources, sourceView{Name: src.Name, Verify: src.Verify.Type, IngestPath: store.IngestPath(src.Name), Description: src.Description})
	}
	return nil, out, nil
}

type deliveryIDArgs struct {
	DeliveryID string `json:"delivery_id" jsonschema:"the delivery id (dlv_...)"`
}

func (s *Server) retryDelivery(ctx context.Context, req *mcp.CallToolRequest, a deliveryIDArgs) (*mcp.CallToolResult, *store.Delivery, error) {
	old, err := s.store.DeliveryGetByID(ctx, a.DeliveryID)
	if err == nil && !callerFrom(ctx).sees(old.Project) {
		err = store.ErrNotFound // another project's delivery is missing to this caller
	}
	var before, d *store.Delivery
	project := ""
	if err == nil {
		before, project = old, old.Project
		d, err = s.store.DeliveryRetry(ctx, a.DeliveryID, s.now())
	}
	s.auditTool(ctx, req, "retry_delivery", a.DeliveryID, project, before, d, err)
	if err != nil {
		return nil, nil, fmt.Errorf("retry delivery %q: %w", a.DeliveryID, err)
	}
	return nil, d, nil
}

type replayResult struct {
	Deliveries []*store.Delivery `json:"deliveries"`
}

func (s *Server) replayEvent(ctx context.Context, req *mcp.CallToolRequest, a eventIDArgs) (*mcp.CallToolResult, replayResult, error) {
	project := ""
	if ev, err := s.store.EventGetByID(ctx, a.EventID); err == nil {
		if !callerFrom(ctx).sees(ev.Project) {
			err := fmt.Errorf("replay event %s: %w", a.EventID, store.ErrNotFound)
			s.auditTool(ctx, req, "replay_event", a.EventID, "", nil, nil, err)
			return nil, replayResult{}, err
		}
		project = ev.Project
	}
	ds, err := ingest.Replay(ctx, s.store, s.catalog, a.EventID)
	s.auditTool(ctx, req, "replay_event", a.EventID, project, nil, replayResult{Deliveries: ds}, err)
	if err != nil {
		return nil, replayResult{}, err
	}
	return nil, replayResult{Deliveries: ds}, nil
}

type deadArgs struct {
	Destination string `json:"destination,omitempty" jsonschema:"only deliveries to this destination"`
	Limit       int    `json:"limit,omitempty" jsonschema:"at most this many (default 20, max 200)"`
	Cursor      string `json:"cursor,omitempty" jsonschema:"next_cursor of the previous page"`
}

type deliveryList struct {
	Deliveries []*store.Delivery `json:"deliveries"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

func (s *Server) listDeadDeliveries(ctx context.Context, _ *mcp.CallToolRequest, a deadArgs) (*mcp.CallToolResult, deliveryList, error) {
	c := callerFrom(ctx)
	dst, ok := c.qualify(a.Destination)
	if !ok {
		return nil, deliveryList{Deliveries: []*store.Delivery{}}, nil
	}
	p := &store.DeliveryListParams{Project: c.project, Destination: dst, Status: store.DeliveryDead, Cursor: a.Cursor, Limit: a.Limit}
	p.Limit = toolPageLimit(p.Limit)
	ds, next, err := store.FetchPage(ctx, p.Cursor, p.Limit, func(ctx context.Context, cursor string, limit int) ([]*store.Delivery, error) {
		q := *p
		q.Cursor, q.Limit = cursor, limit
		return s.store.DeliveryList(ctx, &q)
	}, func(d *store.Delivery) string { return d.ID })
	if err != nil {
		return nil, deliveryList{}, fmt.Errorf("list dead deliveries: %w", err)
	}
	out := deliveryList{Deliveries: ds, NextCursor: next}
	if out.Deliveries == nil {
		out.Deliveries = []*store.Delivery{}
	}
	return nil, out, nil
}

func (s *Server) addTools() {
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true}
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:  toolWaitForEvent,
		Title: "Wait for a webhook event",
		Description: "Wait for the first webhook event of a source that matches (type, match pairs on body paths, CEL filter). " +
			"Looks back over events since `since` (default 10m) first, so an event that arrived just before the call is not missed. " +
			"With MCP Tasks the call returns a task at once that completes with the event; without, it waits up to a bounded time.",
		Annotations: readOnly,
	}, s.waitForEvent)
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "list_events", Title: "List webhook events", Description: "List received events, newest first, with filters and cursor paging; where (PATH=VALUE conditions) and query (text) search their bodies, examining at most 5,000 events per call, so a page may be short or empty while next_cursor is set.", Annotations: readOnly}, s.listEvents)
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "get_event", Title: "Show one event", Description: "An event with its headers, body, and each delivery with its attempts.", Annotations: readOnly}, s.getEvent)
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "list_sources", Title: "List sources", Description: "The webhook sources mailroom receives on, with their ingest paths.", Annotations: readOnly}, s.listSources)
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "retry_delivery", Title: "Retry a delivery", Description: "Make a delivery (dead or pending) due again at once."}, s.retryDelivery)
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "replay_event", Title: "Replay an event", Description: "Route an event again: one new delivery per matching connection."}, s.replayEvent)
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "list_dead_deliveries", Title: "List dead deliveries", Description: "Deliveries that ran out of attempts, newest first.", Annotations: readOnly}, s.listDeadDeliveries)
}
