package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/task"
)

const (
	eventURIPrefix  = "mailroom://events/"
	sourceURIPrefix = "mailroom://sources/"
	// latestEvents is how many events a source resource shows.
	latestEvents = 20
)

// sourceEventsURI is the resource of a source's latest events.
func sourceEventsURI(source string) string {
	return sourceURIPrefix + url.PathEscape(source) + "/events"
}

func (s *Server) addResources() {
	s.mcp.AddResourceTemplate(&mcp.ResourceTemplate{
		Name: "event", Title: "Webhook event", URITemplate: eventURIPrefix + "{id}", MIMEType: "application/json",
		Description: "One event: source, type, headers and decoded body.",
	}, s.readEvent)
	s.mcp.AddResourceTemplate(&mcp.ResourceTemplate{
		Name: "source-events", Title: "Latest events of a source", URITemplate: sourceURIPrefix + "{name}/events", MIMEType: "application/json",
		Description: "The latest events of a source, newest first. Subscribe to hear of each new one.",
	}, s.readSourceEvents)
}

func jsonResource(uri string, v any) (*mcp.ReadResourceResult, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(b)}}}, nil
}

// sourceOfURI returns the source (full name) a source-events URI names.
func sourceOfURI(uri string) (string, bool) {
	name, ok := strings.CutSuffix(strings.TrimPrefix(uri, sourceURIPrefix), "/events")
	if !ok || !strings.HasPrefix(uri, sourceURIPrefix) {
		return "", false
	}
	name, err := url.PathUnescape(name)
	return name, err == nil
}

func (s *Server) readEvent(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	id := strings.TrimPrefix(uri, eventURIPrefix)
	ev, err := s.store.EventGetByID(ctx, id)
	if err != nil || !callerFrom(ctx).sees(ev.Project) {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	view, _, err := task.LoadEvent(ctx, s.store, ev)
	if err != nil {
		return nil, err
	}
	if view == nil {
		view = &EventView{EventID: ev.ID, Source: ev.Source, Type: ev.Type, ReceivedAt: ev.ReceivedAt}
	}
	return jsonResource(uri, view)
}

func (s *Server) readSourceEvents(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	name, ok := sourceOfURI(uri)
	if !ok || !callerFrom(ctx).sees(store.ProjectOf(name)) {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	if _, err := s.store.SourceGet(ctx, name); err != nil {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	evs, err := s.store.EventList(ctx, &store.EventListParams{Source: name, Limit: latestEvents})
	if err != nil {
		return nil, fmt.Errorf("list events of %s: %w", name, err)
	}
	views := make([]*EventView, 0, len(evs))
	for _, ev := range evs {
		view, _, err := task.LoadEvent(ctx, s.store, ev)
		if err != nil {
			return nil, err
		}
		if view != nil {
			views = append(views, view)
		}
	}
	return jsonResource(uri, map[string]any{"source": name, "events": views})
}

// syncSourceResources lists one concrete resource per source.
func (s *Server) syncSourceResources(ctx context.Context) {
	srcs, err := s.store.SourceList(ctx)
	if err != nil {
		s.log.Warn("list sources for resources", "err", err)
		return
	}
	want := map[string]bool{}
	for _, src := range srcs {
		want[src.Name] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.sources {
		if !want[name] {
			s.mcp.RemoveResources(sourceEventsURI(name))
			delete(s.sources, name)
		}
	}
	for name := range want {
		if s.sources[name] {
			continue
		}
		s.mcp.AddResource(&mcp.Resource{
			Name: name + "-events", Title: "Latest " + name + " events", URI: sourceEventsURI(name), MIMEType: "application/json",
			Description: "The latest events received on source " + name + "; subscribe for each new one.",
		}, s.readSourceEvents)
		s.sources[name] = true
	}
}

// eventCreated tells subscribers of the source's resource.
func (s *Server) eventCreated(ctx context.Context, source, _ string) {
	if source == "" {
		return
	}
	if err := s.mcp.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: sourceEventsURI(source)}); err != nil {
		s.log.Debug("notify resource subscribers", "source", source, "err", err)
	}
}
