package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/mailroomhq/mailroom/internal/audit"
	"github.com/mailroomhq/mailroom/internal/store"
)

// attemptView is an attempt as the API shows it: the response body as a
// JSON string when it is valid UTF-8, else base64 in
// response_body_base64.
type attemptView struct {
	*store.Attempt
	ResponseBody       *string `json:"response_body,omitempty"`
	ResponseBodyBase64 string  `json:"response_body_base64,omitempty"`
}

func viewAttempts(as []*store.Attempt) []*attemptView {
	out := make([]*attemptView, 0, len(as))
	for _, at := range as {
		v := &attemptView{Attempt: at}
		if len(at.ResponseBody) > 0 {
			v.ResponseBody, v.ResponseBodyBase64 = bodyFields(at.ResponseBody)
		}
		out = append(out, v)
	}
	return out
}

// deliveryDetail is a delivery with its attempts. The attempts list
// replaces the delivery's attempt count, which moves to attempt_count.
type deliveryDetail struct {
	*store.Delivery
	AttemptCount int            `json:"attempt_count"`
	Attempts     []*attemptView `json:"attempts"`
}

// retryManyBody is the JSON form of a bulk retry's filters; the query
// string form takes the same names.
type retryManyBody struct {
	Source      string    `json:"source"`
	Destination string    `json:"destination"`
	Status      string    `json:"status"`
	EventID     string    `json:"event_id"`
	Since       timeParam `json:"since"`
	Until       timeParam `json:"until"`
}

// timeParam is a time given in JSON as a string (RFC 3339 or unix
// seconds) or a number (unix seconds); it is parsed like the query
// parameter of the same name.
type timeParam string

// UnmarshalJSON accepts a string, a number or null.
func (t *timeParam) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*t = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = timeParam(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want an RFC 3339 string or unix seconds")
	}
	*t = timeParam(n)
	return nil
}

func (b *retryManyBody) values() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{
		"source": b.Source, "destination": b.Destination, "status": b.Status, "event_id": b.EventID,
		"since": string(b.Since), "until": string(b.Until),
	} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// retryManyResult is the answer to a bulk retry.
type retryManyResult struct {
	Retried int `json:"retried"`
}

// destinationStats is one destination's queue.
type destinationStats struct {
	Destination string `json:"destination"`
	Pending     int    `json:"pending"`
	Dead        int    `json:"dead"`
	// OldestPendingAt is when the oldest pending delivery was created;
	// absent when nothing is pending.
	OldestPendingAt time.Time `json:"oldest_pending_at,omitzero"`
	// OldestPendingAgeSeconds is how long ago that was; 0 when nothing is
	// pending.
	OldestPendingAgeSeconds float64 `json:"oldest_pending_age_seconds"`
	Paused                  bool    `json:"paused"`
	// Deleted is set for a destination that no longer exists but still has
	// pending or dead deliveries.
	Deleted bool `json:"deleted,omitempty"`
}

// statsBody is the answer of GET /stats.
type statsBody struct {
	Data    []*destinationStats `json:"data"`
	Pending int                 `json:"pending"`
	Dead    int                 `json:"dead"`
	At      time.Time           `json:"at"`
}

func (a *Server) deliveryList(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	p, err := parseListParams(q, deliveriesKind)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	if !a.scopeList(w, r, &p) {
		return
	}
	rows, next, err := page(r.Context(), p, func(ctx context.Context, p listParams) ([]*store.Delivery, error) {
		return a.store.DeliveryList(ctx, p.deliveries())
	}, func(d *store.Delivery) string { return d.ID })
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, list[*store.Delivery]{Data: nonNil(rows), NextCursor: next})
}

func (a *Server) deliveryGet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	d, ok := a.scopedDelivery(w, r, id)
	if !ok {
		return
	}
	as, err := a.store.AttemptList(ctx, d.ID)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, &deliveryDetail{Delivery: d, AttemptCount: d.Attempts, Attempts: viewAttempts(as)})
}

func (a *Server) attemptList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, ok := a.scopedDelivery(w, r, id); !ok {
		return
	}
	as, err := a.store.AttemptList(ctx, id)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, list[*attemptView]{Data: viewAttempts(as)})
}

// deliveryRetry makes one delivery pending and due now, whatever its
// status.
func (a *Server) deliveryRetry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := decode(w, r, &struct{}{}, true); err != nil {
		a.fail(w, r, err, "")
		return
	}
	d, ok := a.scopedDelivery(w, r, id)
	if !ok {
		return
	}
	audit.Before(r.Context(), d)
	d, err := a.store.DeliveryRetry(r.Context(), id, a.now())
	if err != nil {
		a.fail(w, r, err, fmt.Sprintf("delivery %q not found", id))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// deliveryRetryMany retries every delivery matching the filters, given in
// the query string or a JSON body (not both). Status defaults to dead.
func (a *Server) deliveryRetryMany(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	var body retryManyBody
	if err := decode(w, r, &body, true); err != nil {
		a.fail(w, r, err, "")
		return
	}
	if bq := body.values(); len(bq) > 0 {
		if len(q) > 0 {
			writeError(w, http.StatusBadRequest, "give the filters in the query string or in the JSON body, not both")
			return
		}
		q = bq
	}
	p, err := parseListParams(q, retryKind)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	sc, ok := a.scopeOrFail(w, r, "project not found")
	if !ok {
		return
	}
	p.Project = sc.project
	for _, f := range []*string{&p.Source, &p.Destination} {
		if *f == "" {
			continue
		}
		if *f, ok = sc.qualify(*f); !ok {
			writeJSON(w, http.StatusOK, retryManyResult{})
			return
		}
	}
	n, err := a.store.DeliveryRetryMany(r.Context(), &store.DeliveryRetryManyParams{Project: p.Project, Source: p.Source, Destination: p.Destination,
		Status: p.Status, EventID: p.EventID, Since: p.Since, Until: p.Until, Now: a.now()})
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, retryManyResult{Retried: n})
}

// stats reports every destination's queue: the ones in the catalog, even
// idle, and deleted ones that still hold deliveries.
func (a *Server) stats(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc, ok := a.scopeOrFail(w, r, "project not found")
	if !ok {
		return
	}
	st, err := a.store.DeliveryStats(ctx)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	dests, err := a.store.DestinationList(ctx)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	now := a.now()
	byName := map[string]*destinationStats{}
	for _, d := range dests {
		if !sc.has(d.Name) {
			continue
		}
		byName[d.Name] = &destinationStats{Destination: d.Name, Paused: d.Paused}
	}
	out := statsBody{At: now.UTC()}
	for _, s := range st {
		if !sc.has(s.Destination) {
			continue
		}
		ds, ok := byName[s.Destination]
		if !ok {
			ds = &destinationStats{Destination: s.Destination, Deleted: true}
			byName[s.Destination] = ds
		}
		ds.Pending, ds.Dead = s.Pending, s.Dead
		if s.Pending > 0 && !s.OldestPending.IsZero() {
			ds.OldestPendingAt = s.OldestPending.UTC()
			ds.OldestPendingAgeSeconds = max(0, now.Sub(s.OldestPending).Seconds())
		}
		out.Pending += s.Pending
		out.Dead += s.Dead
	}
	out.Data = make([]*destinationStats, 0, len(byName))
	for _, ds := range byName {
		out.Data = append(out.Data, ds)
	}
	sort.Slice(out.Data, func(i, j int) bool { return out.Data[i].Destination < out.Data[j].Destination })
	writeJSON(w, http.StatusOK, out)
}
