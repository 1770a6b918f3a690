package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/store"
)

// requestView is a request as the API shows it: the body as a JSON string
// when it is valid UTF-8, else base64 in body_base64. Lists carry no body.
type requestView struct {
	*store.Request
	Body       *string `json:"body,omitempty"`
	BodyBase64 string  `json:"body_base64,omitempty"`
}

func viewRequest(r *store.Request, withBody bool) *requestView {
	v := &requestView{Request: r}
	if withBody {
		v.Body, v.BodyBase64 = bodyFields(r.Body)
	}
	return v
}

// bodyFields renders b as a string when it is valid UTF-8, else as base64.
func bodyFields(b []byte) (*string, string) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

// eventDetail is an event with its request and deliveries. The
// deliveries list replaces the event's delivery count, which moves to
// delivery_count.
type eventDetail struct {
	*store.Event
	DeliveryCount int               `json:"delivery_count"`
	Deliveries    []*store.Delivery `json:"deliveries"`
	// Request is null when retention has removed it.
	Request *requestView `json:"request"`
}

// replayBody is the answer to a replay.
type replayBody struct {
	Deliveries []*store.Delivery `json:"deliveries"`
}

// page fetches one page of a newest-first list and the cursor of the next
// one, by [store.FetchPage]: the one paging rule of every list.
func page[T any](ctx context.Context, p listParams, fetch func(context.Context, listParams) ([]*T, error), id func(*T) string) ([]*T, string, error) {
	return store.FetchPage(ctx, p.Cursor, p.Limit, func(ctx context.Context, cursor string, limit int) ([]*T, error) {
		q := p
		q.Cursor, q.Limit = cursor, limit
		return fetch(ctx, q)
	}, id)
}

func (a *Server) requestList(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	p, err := parseListParams(q, requestsKind)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	if !a.scopeList(w, r, &p) {
		return
	}
	rows, next, err := page(r.Context(), p, func(ctx context.Context, p listParams) ([]*store.Request, error) {
		return a.store.RequestList(ctx, p.requests())
	}, func(r *store.Request) string { return r.ID })
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	out := list[*requestView]{Data: make([]*requestView, 0, len(rows)), NextCursor: next}
	for _, row := range rows {
		row.Body = nil
		out.Data = append(out.Data, viewRequest(row, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Server) requestGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	req, err := a.store.RequestGetByID(r.Context(), id)
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("request %q not found", id))
		return
	}
	if !a.visible(w, r, req.Project, fmt.Sprintf("request %q not found", id)) {
		return
	}
	writeJSON(w, http.StatusOK, viewRequest(req, true))
}

func (a *Server) eventList(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	p, err := parseListParams(q, eventsKind)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	if !a.scopeList(w, r, &p) {
		return
	}
	if p.searching() {
		a.eventSearch(w, r, p)
		return
	}
	rows, next, err := page(r.Context(), p, func(ctx context.Context, p listParams) ([]*store.Event, error) {
		return a.store.EventList(ctx, p.events())
	}, func(e *store.Event) string { return e.ID })
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, list[*store.Event]{Data: nonNil(rows), NextCursor: next})
}

// eventSearch answers an event list with q or where: one bounded store
// search, whose page may be short, even empty, while next_cursor is set.
func (a *Server) eventSearch(w http.ResponseWriter, r *http.Request, p listParams) {
	res, err := a.store.EventSearch(r.Context(), p.search())
	if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the search ran longer than %s; narrow it with source, type, since or until", store.SearchTimeout))
		return
	}
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, list[*store.Event]{Data: nonNil(res.Events), NextCursor: res.Next})
}

func (a *Server) eventGet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	ev, ok := a.scopedEvent(w, r, id)
	if !ok {
		return
	}
	out := &eventDetail{Event: ev, DeliveryCount: ev.Deliveries}
	ds, err := a.store.DeliveryList(ctx, &store.DeliveryListParams{EventID: ev.ID, Limit: MaxLimit})
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	out.Deliveries = nonNil(ds)
	req, err := a.store.RequestGetByID(ctx, ev.RequestID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		a.fail(w, r, err, "")
		return
	default:
		out.Request = viewRequest(req, true)
	}
	writeJSON(w, http.StatusOK, out)
}

// eventReplay routes the event's original request again through the
// connections as they are now, and creates a new delivery for every match
// whose destination exists. Earlier deliveries are left as they are.
func (a *Server) eventReplay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := decode(w, r, &struct{}{}, true); err != nil {
		a.fail(w, r, err, "")
		return
	}
	if _, ok := a.scopedEvent(w, r, id); !ok {
		return
	}
	ds, err := ingest.Replay(r.Context(), a.store, a.catalog, id)
	if errors.Is(err, ingest.ErrRequestGone) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("event %q not found", id))
		return
	}
	writeJSON(w, http.StatusOK, replayBody{Deliveries: ds})
}

// nonNil returns s, or an empty slice for nil, so that JSON shows [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
