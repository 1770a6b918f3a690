package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailroomhq/mailroom/internal/store"
)

// This file serves `mailroom listen`: a stream of new events with their
// requests, and a way to record what the local forward answered as an
// attempt like any other delivery.

// streamOverlap is how far before the resume point a (re)connection reads
// again, so that an event committed late with an earlier time is not
// missed; the ids already sent are skipped.
const streamOverlap = 5 * time.Second

// StreamedEvent is one event on the stream: the event and its request.
type StreamedEvent struct {
	Event   *store.Event `json:"event"`
	Request *requestView `json:"request"`
}

// StreamOpen is the data of the first message of the event stream
// (`event: open`): the time the stream starts from. A client that
// reconnects before it has seen any event passes it back as since, so
// that events received while it was away are not lost.
type StreamOpen struct {
	From time.Time `json:"from"`
}

// eventStream serves GET /api/v1/events/stream?source=NAME&after=EVENT_ID
// (or &since=TIME): Server-Sent Events, first an `open` message with the
// point the stream starts from, then one `event` message per new event
// (its SSE id is the event id, so Last-Event-ID resumes), oldest first,
// after a catch-up from the resume point, with a comment every 15 s to keep
// proxies open. Without after or since it starts now: events received
// before the connection are not sent.
func (a *Server) eventStream(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(a.streams, cancel)()
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	for key := range q {
		if key != "source" && key != "after" && key != "since" && key != "project" {
			a.fail(w, r, badf("unknown parameter %q for the event stream (accepted: source, after, since, project)", key), "")
			return
		}
	}
	// The stream holds the events of the request's project only.
	sc, ok := a.scopeOrFail(w, r, "project not found")
	if !ok {
		return
	}
	source := q.Get("source")
	if source == "*" {
		source = ""
	}
	if source != "" {
		if source, ok = sc.qualify(source); !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("source %q not found", q.Get("source")))
			return
		}
	}
	after := q.Get("after")
	if le := r.Header.Get("Last-Event-ID"); le != "" {
		after = le
	}
	// from is the resume point; floor, when set, is the first receipt time
	// sent (the overlap below reads before from, but nothing before floor).
	from := a.now()
	floor := from
	switch {
	case after != "":
		ev, err := a.store.EventGetByID(ctx, after)
		if err != nil {
			a.fail(w, r, err, fmt.Sprintf("event %q (after) not found", after))
			return
		}
		if !sc.hasProject(ev.Project) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("event %q (after) not found", after))
			return
		}
		from, floor = ev.ReceivedAt, time.Time{}
	case q.Get("since") != "":
		t, err := parseTime(q.Get("since"))
		if err != nil {
			a.fail(w, r, badf("parameter since: %v", err), "")
			return
		}
		from, floor = t, t
	}
	notes := a.store.Subscribe(ctx) // before the first read: nothing falls between
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	opened, _ := json.Marshal(StreamOpen{From: from})
	if _, err := fmt.Fprintf(w, "event: open\ndata: %s\n\n", opened); err != nil {
		return
	}
	_ = rc.Flush()

	sent := map[string]time.Time{} // recently sent ids, for the overlap
	if after != "" {
		sent[after] = from
	}
	catchUp := func() error {
		evs, err := eventsSince(ctx, a.store, sc.project, source, from.Add(-streamOverlap))
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if _, ok := sent[ev.ID]; ok || ev.ReceivedAt.Before(floor) {
				continue
			}
			req, err := a.store.RequestGetByID(ctx, ev.RequestID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			msg := StreamedEvent{Event: ev}
			if req != nil {
				msg.Request = viewRequest(req, true) // sensitive headers were redacted at ingest
			}
			b, err := json.Marshal(msg)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "id: %s\nevent: event\ndata: %s\n\n", ev.ID, b); err != nil {
				return err
			}
			sent[ev.ID] = ev.ReceivedAt
			if ev.ReceivedAt.After(from) {
				from = ev.ReceivedAt
			}
		}
		for id, at := range sent { // forget what the overlap no longer reaches
			if at.Before(from.Add(-2 * streamOverlap)) {
				delete(sent, id)
			}
		}
		return rc.Flush()
	}
	if err := catchUp(); err != nil {
		a.log.Debug("event stream ended", "err", err)
		return
	}
	poll := time.NewTicker(2 * time.Second) // notifications are hints
	defer poll.Stop()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case n, ok := <-notes:
			if !ok {
				return
			}
			if n.Kind == store.NotifyEventCreated && (source == "" || n.Source == source) && sc.has(n.Source) {
				err = catchUp()
			}
		case <-poll.C:
			err = catchUp()
		case <-keepalive.C:
			if _, err = fmt.Fprint(w, ": keepalive\n\n"); err == nil {
				err = rc.Flush()
			}
		}
		if err != nil {
			a.log.Debug("event stream ended", "err", err)
			return
		}
	}
}

// eventsSince lists the events of project (every one when empty) and
// source (all when empty) received at or after since, oldest first.
func eventsSince(ctx context.Context, s store.History, project, source string, since time.Time) ([]*store.Event, error) {
	p := &store.EventListParams{Project: project, Source: source, Since: since, Limit: 1000}
	var all []*store.Event
	for {
		page, err := s.EventList(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("list events since %s: %w", since.Format(time.RFC3339Nano), err)
		}
		all = append(all, page...)
		if len(page) < p.Limit {
			break
		}
		p.Cursor = page[len(page)-1].ID
	}
	slices.Reverse(all)
	slices.SortStableFunc(all, func(x, y *store.Event) int { return x.ReceivedAt.Compare(y.ReceivedAt) })
	return all, nil
}

// listenAttemptBody is what `mailroom listen` reports of one forward.
type listenAttemptBody struct {
	// Session names the listen session; the delivery goes to the
	// pseudo-destination "listen:<session>".
	Session    string  `json:"session"`
	StatusCode int     `json:"status_code"`
	DurationMS float64 `json:"duration_ms"`
	Error      string  `json:"error"`
	// ResponseBody is the local server's answer (capped at 4 KiB).
	ResponseBody string `json:"response_body"`
}

// listenAttempt serves POST /api/v1/events/{id}/listen-attempts: it
// records a forward done by `mailroom listen` as a delivery to
// "listen:<session>" with one attempt, succeeded on a 2xx and dead
// otherwise, so that the event's deliveries show it like any other. It is
// one store write ([store.Queue.DeliveryInsertFinished]): a failure leaves
// nothing, never a pending delivery that no worker would claim.
func (a *Server) listenAttempt(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var body listenAttemptBody
	if err := decode(w, r, &body, false); err != nil {
		a.fail(w, r, err, "")
		return
	}
	if body.Session == "" || strings.ContainsAny(body.Session, " /") || len(body.Session) > 64 ||
		!utf8.ValidString(body.Session) || strings.ContainsFunc(body.Session, unicode.IsControl) {
		writeError(w, http.StatusBadRequest, "session: required, at most 64 characters, no spaces, slashes or control characters")
		return
	}
	if !(body.DurationMS >= 0 && body.DurationMS <= maxListenDurationMS) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("duration_ms: %g is not a number of milliseconds from 0 to %d (a day)", body.DurationMS, maxListenDurationMS))
		return
	}
	ev, ok := a.scopedEvent(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	// In the event's project, as its other deliveries are.
	dest := store.FullName(ev.Project, "listen:"+body.Session)
	now := a.now()
	status := store.DeliveryDead
	success := body.StatusCode >= 200 && body.StatusCode < 300 && body.Error == ""
	if success {
		status = store.DeliverySucceeded
	}
	// What the client reports is kept bounded, as a destination's answer
	// is: the first 4 KiB of the body and of the error.
	resp := []byte(body.ResponseBody)
	if len(resp) > maxListenText {
		resp = resp[:maxListenText]
	}
	// The pseudo-destination has no dispatcher worker: the delivery is
	// recorded finished, with its attempt, in one write.
	d := &store.Delivery{EventID: ev.ID, RequestID: ev.RequestID, Source: ev.Source, Destination: dest, ConnectionID: "listen"}
	at := &store.Attempt{StartedAt: now.Add(-time.Duration(body.DurationMS * float64(time.Millisecond))),
		DurationMS: body.DurationMS, StatusCode: body.StatusCode, ResponseBody: resp, Error: cutText(body.Error, maxListenText), Success: success}
	if err := a.store.DeliveryInsertFinished(ctx, &store.DeliveryInsertFinishedParams{Delivery: d, Attempt: at, Status: status, Now: now}); err != nil {
		a.fail(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusCreated, d)
}

// maxListenDurationMS bounds a listen attempt's duration_ms: the attempt
// is stamped as started that long before it is recorded.
const maxListenDurationMS = 86_400_000

// maxListenText bounds the response body and the error a listen attempt
// keeps.
const maxListenText = 4096

// cutText returns s cut to at most n bytes, at a UTF-8 boundary.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
