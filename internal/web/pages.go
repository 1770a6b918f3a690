package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/audit"
	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/redact"
	"github.com/mailroomhq/mailroom/internal/search"
	"github.com/mailroomhq/mailroom/internal/store"
)

// ---- list filters ----

// listFilter is a list page's filter form as submitted.
type listFilter struct {
	Source, Status, Type, Query string
	// Where is a body condition PATH=VALUE (events only).
	Where string
	// Range is a preset look-back ("15m", "1h", "24h", "7d"); Since and
	// Until are explicit bounds, as a datetime-local input ("2006-01-02T15:04",
	// UTC) or RFC 3339.
	Range, Since, Until string
	Cursor              string
}

// ranges are the look-back presets the filter form offers.
func ranges() []string { return []string{"15m", "1h", "24h", "7d"} }

// values returns f as query parameters, without the cursor and empty fields.
func (f listFilter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"source": f.Source, "status": f.Status, "type": f.Type, "q": f.Query, "where": f.Where,
		"range": f.Range, "since": f.Since, "until": f.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// pageURL is path with f's filters and cursor.
func (f listFilter) pageURL(path, cursor string) string {
	v := f.values()
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// listParams is a list page's filters and page; its methods give each
// store list its own parameters.
type listParams struct {
	Source, Status, Type, Query string
	// Where is the events' body condition, if any.
	Where        search.Filter
	Since, Until time.Time
	Cursor       string
	Limit        int
}

func (p listParams) requests() *store.RequestListParams {
	return &store.RequestListParams{Source: p.Source, Status: p.Status, Type: p.Type, Query: p.Query,
		Since: p.Since, Until: p.Until, Cursor: p.Cursor, Limit: p.Limit}
}

func (p listParams) events() *store.EventListParams {
	return &store.EventListParams{Source: p.Source, Status: p.Status, Type: p.Type, Query: p.Query,
		Since: p.Since, Until: p.Until, Cursor: p.Cursor, Limit: p.Limit}
}

func (p listParams) deliveries() *store.DeliveryListParams {
	return &store.DeliveryListParams{Source: p.Source, Status: p.Status, Type: p.Type, Query: p.Query,
		Since: p.Since, Until: p.Until, Cursor: p.Cursor, Limit: p.Limit}
}

// parseFilter reads a list page's filters into store parameters. Bad
// input is an error to show above the list.
func parseFilter(q url.Values, now time.Time) (listFilter, listParams, error) {
	f := listFilter{
		Source: strings.TrimSpace(q.Get("source")), Status: strings.TrimSpace(q.Get("status")),
		Type: strings.TrimSpace(q.Get("type")), Query: q.Get("q"), Where: strings.TrimSpace(q.Get("where")),
		Range: q.Get("range"), Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until")),
		Cursor: q.Get("cursor"),
	}
	p := listParams{Source: f.Source, Status: f.Status, Type: f.Type, Query: f.Query, Cursor: f.Cursor, Limit: PageSize}
	if f.Where != "" {
		c, err := search.ParseCond(f.Where)
		if err != nil {
			return f, p, fmt.Errorf("body field: %v", err)
		}
		p.Where = search.Filter{c}
	}
	if f.Range != "" {
		d, err := time.ParseDuration(strings.Replace(f.Range, "d", "h", 1))
		if strings.HasSuffix(f.Range, "d") && err == nil {
			d *= 24
		}
		if err != nil || d <= 0 {
			return f, p, fmt.Errorf("range %q: want one of %s", f.Range, strings.Join(ranges(), ", "))
		}
		p.Since = now.Add(-d)
	}
	for _, b := range []struct {
		name, val string
		dst       *time.Time
	}{{"since", f.Since, &p.Since}, {"until", f.Until, &p.Until}} {
		if b.val == "" {
			continue
		}
		t, err := parseTime(b.val)
		if err != nil {
			return f, p, fmt.Errorf("%s %q: want a date and time like 2025-03-01T12:00 (UTC) or RFC 3339", b.name, b.val)
		}
		*b.dst = t
	}
	return f, p, nil
}

// parseTime reads a datetime-local value (taken as UTC) or RFC 3339.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("parse time %q", s)
}

// fetchPage fetches one page of a newest-first list and the cursor of the
// next one, by [store.FetchPage], as the API pages.
func fetchPage[T any](ctx context.Context, p listParams, fetch func(context.Context, listParams) ([]*T, error), id func(*T) string) ([]*T, string, error) {
	return store.FetchPage(ctx, p.Cursor, p.Limit, func(ctx context.Context, cursor string, limit int) ([]*T, error) {
		q := p
		q.Cursor, q.Limit = cursor, limit
		return fetch(ctx, q)
	}, id)
}

func (w *Server) listRequests(ctx context.Context, p listParams) ([]*store.Request, error) {
	lp := p.requests()
	lp.Project = scopeOf(ctx)
	return w.store.RequestList(ctx, lp)
}

func (w *Server) listEvents(ctx context.Context, p listParams) ([]*store.Event, error) {
	lp := p.events()
	lp.Project = scopeOf(ctx)
	return w.store.EventList(ctx, lp)
}

// fetchEvents fetches one page of the events list, or with a text or a
// body condition one bounded search (see [store.History.EventSearch]),
// whose page may be short, even empty, while a next page is offered.
func (w *Server) fetchEvents(ctx context.Context, p listParams) ([]*store.Event, string, error) {
	if p.Query == "" && len(p.Where) == 0 {
		return fetchPage(ctx, p, w.listEvents, func(e *store.Event) string { return e.ID })
	}
	sp := &store.EventSearchParams{EventListParams: *p.events()}
	sp.Project = scopeOf(ctx)
	if len(p.Where) > 0 {
		sp.Body = p.Where
	}
	page, err := w.store.EventSearch(ctx, sp)
	if err != nil {
		return nil, "", err
	}
	return page.Events, page.Next, nil
}

func (w *Server) listDeliveries(ctx context.Context, p listParams) ([]*store.Delivery, error) {
	lp := p.deliveries()
	lp.Project = scopeOf(ctx)
	return w.store.DeliveryList(ctx, lp)
}

// listData is what every list page's template gets.
type listData struct {
	Filter   listFilter
	Rows     any
	Empty    bool
	Next     string // URL of the next (older) page, or empty
	Newest   string // URL of the first page with the same filters
	Live     bool   // first page: new rows are fetched as they arrive
	Error    string
	Sources  []string
	Statuses []string
	Ranges   []string
}

func (w *Server) newListData(ctx context.Context, f listFilter, path string, statuses []string) *listData {
	d := &listData{Filter: f, Newest: f.pageURL(path, ""), Live: f.Cursor == "", Statuses: statuses, Ranges: ranges()}
	if srcs, err := w.store.SourceList(ctx); err == nil {
		for _, s := range srcs {
			if sees(ctx, s.Project) {
				d.Sources = append(d.Sources, s.Name)
			}
		}
	}
	return d
}

// ---- requests ----

func (w *Server) requestList(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, p, err := parseFilter(r.URL.Query(), w.now())
	d := w.newListData(ctx, f, "/ui/requests", []string{store.RequestAccepted, store.RequestRejected, store.RequestDuplicate, store.RequestHandshake})
	status := http.StatusOK
	if err != nil {
		d.Error, status = err.Error(), http.StatusBadRequest
	} else {
		rows, next, err := fetchPage(ctx, p, w.listRequests, func(r *store.Request) string { return r.ID })
		if err != nil {
			w.storageError(rw, r, err)
			return
		}
		d.Rows, d.Empty = rows, len(rows) == 0
		if next != "" {
			d.Next = f.pageURL("/ui/requests", next)
		}
	}
	w.render(rw, r, status, "requests", "Requests", d)
}

// headerLine is one header value as shown, masked when sensitive.
type headerLine struct{ Name, Value string }

// requestView is a request as the pages show it.
type requestView struct {
	*store.Request
	Headers []headerLine
	// VerifyType is the source's verification scheme now ("" when the
	// source is gone).
	VerifyType string
	// Verified says whether the request passed verification.
	Verified bool
}

// BodyTruncated reports whether only a prefix of the body was stored
// (a request refused before verification).
func (v *requestView) BodyTruncated() bool { return v.BodySize > int64(len(v.Body)) }

func (w *Server) viewRequest(ctx context.Context, req *store.Request) *requestView {
	v := &requestView{Request: req, Verified: req.Status != store.RequestRejected}
	h := redact.Headers(req.Headers)
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, val := range h[k] {
			v.Headers = append(v.Headers, headerLine{Name: k, Value: val})
		}
	}
	if src, err := w.store.SourceGet(ctx, req.Source); err == nil {
		v.VerifyType = cmpOr(src.Verify.Type, "none")
	}
	return v
}

type requestData struct {
	Request *requestView
}

func (w *Server) requestDetail(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	req, err := w.store.RequestGetByID(ctx, id)
	if err == nil && !sees(ctx, req.Project) {
		err = store.ErrNotFound // another project's request is missing here
	}
	if errors.Is(err, store.ErrNotFound) {
		w.renderError(rw, r, http.StatusNotFound, fmt.Sprintf("Request %s not found (it may have been removed by retention).", id))
		return
	}
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	w.render(rw, r, http.StatusOK, "request", "Request "+id, &requestData{Request: w.viewRequest(ctx, req)})
}

// ---- events ----

// eventRow is an event in the list with a summary of its deliveries.
type eventRow struct {
	*store.Event
	Succeeded, Pending, Dead int
}

func (w *Server) eventList(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, p, err := parseFilter(r.URL.Query(), w.now())
	d := w.newListData(ctx, f, "/ui/events", []string{store.EventRouted, store.EventIgnored})
	status := http.StatusOK
	if err != nil {
		d.Error, status = err.Error(), http.StatusBadRequest
	} else {
		evs, next, err := w.fetchEvents(ctx, p)
		if err != nil {
			w.storageError(rw, r, err)
			return
		}
		rows := make([]*eventRow, 0, len(evs))
		for _, ev := range evs {
			row := &eventRow{Event: ev}
			if ev.Deliveries > 0 {
				ds, err := w.store.DeliveryList(ctx, &store.DeliveryListParams{EventID: ev.ID, Limit: 1000})
				if err != nil {
					w.storageError(rw, r, err)
					return
				}
				for _, dl := range ds {
					switch dl.Status {
					case store.DeliverySucceeded:
						row.Succeeded++
					case store.DeliveryDead:
						row.Dead++
					default:
						row.Pending++
					}
				}
			}
			rows = append(rows, row)
		}
		d.Rows, d.Empty = rows, len(rows) == 0
		if next != "" {
			d.Next = f.pageURL("/ui/events", next)
		}
	}
	w.render(rw, r, status, "events", "Events", d)
}

// deliveryView is a delivery with its attempts.
type deliveryView struct {
	*store.Delivery
	Attempts []*store.Attempt
}

type eventData struct {
	Event *store.Event
	// Request is nil when retention has removed it.
	Request *requestView
	// Duplicates are the later requests dropped as duplicates of this
	// event.
	Duplicates []*store.Request
	Deliveries []*deliveryView
	// Pending is true while a delivery may still change, so the page
	// keeps refreshing them.
	Pending bool
	// Transforms are the transformations of the event's connections run
	// on it (full page only).
	Transforms []*transformPanel
}

func (w *Server) eventDetail(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	ev, err := w.store.EventGetByID(ctx, id)
	if err == nil && !sees(ctx, ev.Project) {
		err = store.ErrNotFound // another project's event is missing here
	}
	if errors.Is(err, store.ErrNotFound) {
		w.renderError(rw, r, http.StatusNotFound, fmt.Sprintf("Event %s not found.", id))
		return
	}
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	d := &eventData{Event: ev}
	ds, err := w.store.DeliveryList(ctx, &store.DeliveryListParams{EventID: ev.ID, Limit: 1000})
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	// Oldest first reads naturally next to the attempts.
	for i := len(ds) - 1; i >= 0; i-- {
		as, err := w.store.AttemptList(ctx, ds[i].ID)
		if err != nil {
			w.storageError(rw, r, err)
			return
		}
		d.Deliveries = append(d.Deliveries, &deliveryView{Delivery: ds[i], Attempts: as})
		if ds[i].Status == store.DeliveryPending {
			d.Pending = true
		}
	}
	if r.URL.Query().Get("partial") != "deliveries" {
		req, err := w.store.RequestGetByID(ctx, ev.RequestID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			w.storageError(rw, r, err)
			return
		default:
			d.Request = w.viewRequest(ctx, req)
		}
		reqs, err := w.store.RequestList(ctx, &store.RequestListParams{EventID: ev.ID, Status: store.RequestDuplicate, Limit: 100})
		if err != nil {
			w.storageError(rw, r, err)
			return
		}
		d.Duplicates = reqs
		conns := make([]string, 0, len(d.Deliveries))
		for _, dv := range d.Deliveries {
			conns = append(conns, dv.ConnectionID)
		}
		if d.Transforms, err = w.transformPanels(ctx, ev.ID, conns); err != nil {
			w.storageError(rw, r, err)
			return
		}
	}
	w.render(rw, r, http.StatusOK, "event", "Event "+ev.ID, d)
}

func (w *Server) eventReplay(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ds, err := []*store.Delivery(nil), error(nil)
	if ev, gerr := w.store.EventGetByID(r.Context(), id); gerr == nil && !sees(r.Context(), ev.Project) {
		err = store.ErrNotFound // another project's event is missing here
	} else {
		ds, err = ingest.Replay(r.Context(), w.store, w.catalog, id)
	}
	switch {
	case errors.Is(err, ingest.ErrRequestGone):
		w.renderError(rw, r, http.StatusConflict, "This event cannot be replayed: its request is no longer stored.")
		return
	case errors.Is(err, store.ErrNotFound):
		w.renderError(rw, r, http.StatusNotFound, fmt.Sprintf("Event %s not found.", id))
		return
	case err != nil:
		w.storageError(rw, r, err)
		return
	}
	audit.After(r.Context(), map[string]any{"deliveries": ds})
	http.Redirect(rw, r, fmt.Sprintf("/ui/events/%s?flash=replayed&n=%d#deliveries", url.PathEscape(id), len(ds)), http.StatusSeeOther)
}

func (w *Server) deliveryRetry(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	old, err := w.store.DeliveryGetByID(r.Context(), id)
	if err == nil && !sees(r.Context(), old.Project) {
		err = store.ErrNotFound // another project's delivery is missing here
	}
	var d *store.Delivery
	if err == nil {
		audit.Before(r.Context(), old)
		audit.Project(r.Context(), old.Project)
		d, err = w.store.DeliveryRetry(r.Context(), id, w.now())
	}
	if errors.Is(err, store.ErrNotFound) {
		w.renderError(rw, r, http.StatusNotFound, fmt.Sprintf("Delivery %s not found.", id))
		return
	}
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	audit.After(r.Context(), d)
	http.Redirect(rw, r, "/ui/events/"+url.PathEscape(d.EventID)+"?flash=retried#"+url.PathEscape(d.ID), http.StatusSeeOther)
}

// ---- destinations ----

// recentDeliveries is how many of a destination's latest deliveries its
// health is judged on.
const recentDeliveries = 20

// destinationRow is a destination with its queue and health.
type destinationRow struct {
	store.Destination
	Stats store.DestinationStats
	// Health is paused, idle, healthy, degraded or failing.
	Health               string
	RecentOK, RecentFail int
	LastActivity         time.Time
	LastError            string
	Concurrency          int
}

func (w *Server) destinationRows(ctx context.Context) ([]*destinationRow, error) {
	dests, err := w.store.DestinationList(ctx)
	if err != nil {
		return nil, err
	}
	stats, err := w.store.DeliveryStats(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]store.DestinationStats{}
	for _, s := range stats {
		byName[s.Destination] = s
	}
	rows := make([]*destinationRow, 0, len(dests))
	for _, d := range dests {
		if !sees(ctx, d.Project) {
			continue
		}
		row := &destinationRow{Destination: d.Redacted(), Stats: byName[d.Name], Concurrency: d.MaxConcurrency}
		if row.Concurrency == 0 {
			row.Concurrency = 10
		}
		ds, err := w.store.DeliveryList(ctx, &store.DeliveryListParams{Destination: d.Name, Limit: recentDeliveries})
		if err != nil {
			return nil, err
		}
		for _, dl := range ds {
			if dl.UpdatedAt.After(row.LastActivity) {
				row.LastActivity = dl.UpdatedAt
			}
			failed := dl.LastError != "" || (dl.LastStatus != 0 && (dl.LastStatus < 200 || dl.LastStatus > 299))
			switch {
			case dl.Status == store.DeliverySucceeded:
				row.RecentOK++
			case dl.Status == store.DeliveryDead || (dl.Attempts > 0 && failed):
				row.RecentFail++
				if row.LastError == "" {
					row.LastError = cmpOr(dl.LastError, fmt.Sprintf("HTTP %d", dl.LastStatus))
				}
			}
		}
		switch {
		case d.Paused:
			row.Health = "paused"
		case row.RecentOK+row.RecentFail == 0:
			row.Health = "idle"
		case row.RecentFail == 0:
			row.Health = "healthy"
		case row.RecentOK == 0:
			row.Health = "failing"
		default:
			row.Health = "degraded"
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (w *Server) destinationList(rw http.ResponseWriter, r *http.Request) {
	rows, err := w.destinationRows(r.Context())
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	w.render(rw, r, http.StatusOK, "destinations", "Destinations", rows)
}

func (w *Server) destinationPause(rw http.ResponseWriter, r *http.Request) {
	w.setPaused(rw, r, true)
}

func (w *Server) destinationResume(rw http.ResponseWriter, r *http.Request) {
	w.setPaused(rw, r, false)
}

// setPaused pauses or resumes a destination, then reloads the catalog so
// that this instance sees the change at once (as the API does).
func (w *Server) setPaused(rw http.ResponseWriter, r *http.Request, paused bool) {
	name := r.PathValue("name")
	reason, flash := "", "resumed"
	if paused {
		reason, flash = "paused from the dashboard", "paused"
	}
	old, err := w.store.DestinationGet(r.Context(), name)
	if err == nil && !sees(r.Context(), old.Project) {
		err = store.ErrNotFound // another project's destination is missing here
	}
	if err == nil {
		audit.Before(r.Context(), old.Redacted())
		audit.Project(r.Context(), store.ProjectOrDefault(old.Project))
		err = w.store.DestinationSetPaused(r.Context(), name, paused, reason)
	}
	if errors.Is(err, store.ErrNotFound) {
		w.renderError(rw, r, http.StatusNotFound, fmt.Sprintf("Destination %q not found.", name))
		return
	}
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := w.catalog.Load(ctx); err != nil {
		w.log.Warn("web: reload catalog after pause or resume", "err", err)
	}
	if d, err := w.store.DestinationGet(ctx, name); err == nil {
		audit.After(r.Context(), d.Redacted())
	}
	http.Redirect(rw, r, "/ui/destinations?flash="+flash+"#dest-"+url.PathEscape(name), http.StatusSeeOther)
}

// ---- sources ----

// sourceRow is a source as the sources page shows it.
type sourceRow struct {
	Name, URL, VerifyType, DedupKey, Description string
	DedupOff                                     bool
	Routes                                       []string
}

// baseURL is the scheme and host the browser reached this server at.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (w *Server) sourceList(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	srcs, err := w.store.SourceList(ctx)
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	conns, err := w.store.ConnectionList(ctx)
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	base := baseURL(r)
	rows := make([]*sourceRow, 0, len(srcs))
	for _, s := range srcs {
		if !sees(ctx, s.Project) {
			continue
		}
		row := &sourceRow{
			Name: s.Name, URL: base + store.IngestPath(s.Name), VerifyType: cmpOr(s.Verify.Type, "none"),
			DedupKey: s.Dedup.Key, DedupOff: s.Dedup.Disabled, Description: s.Description,
		}
		for _, c := range conns {
			if c.Source == s.Name {
				route := c.Destination
				if c.Filter != "" {
					route += " if " + c.Filter
				}
				row.Routes = append(row.Routes, route)
			}
		}
		rows = append(rows, row)
	}
	w.render(rw, r, http.StatusOK, "sources", "Sources", rows)
}

// ---- tasks ----

type taskData struct {
	Status   string
	Statuses []string
	Rows     []*store.Task
	Next     string
	Newest   string
	Live     bool
}

func (w *Server) taskList(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := &taskData{
		Status:   q.Get("status"),
		Statuses: []string{"open", store.TaskWorking, store.TaskInputRequired, store.TaskCompleted, store.TaskFailed, store.TaskCancelled},
		Live:     q.Get("cursor") == "",
	}
	p := &store.TaskListParams{Project: scopeOf(r.Context()), Cursor: q.Get("cursor"), Limit: PageSize + 1, Now: w.now()}
	if d.Status == "open" {
		p.Open = true
	} else {
		p.Status = d.Status
	}
	tasks, err := w.store.TaskList(r.Context(), p)
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	filter := url.Values{}
	if d.Status != "" {
		filter.Set("status", d.Status)
	}
	d.Newest = "/ui/tasks"
	if len(filter) > 0 {
		d.Newest += "?" + filter.Encode()
	}
	if len(tasks) > PageSize {
		tasks = tasks[:PageSize]
		filter.Set("cursor", tasks[len(tasks)-1].ID)
		d.Next = "/ui/tasks?" + filter.Encode()
	}
	d.Rows = tasks
	w.render(rw, r, http.StatusOK, "tasks", "MCP tasks", d)
}
