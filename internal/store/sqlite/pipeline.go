package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlrow"
)

const (
	requestCols      = `id, source, received_at, method, path, query, headers, body, remote_addr, status, reason, http_status, event_id`
	requestListCols  = `id, source, received_at, method, path, query, headers, NULL, remote_addr, status, reason, http_status, event_id`
	eventCols        = sqlrow.EventCols
	deliveryCols     = `id, event_id, request_id, source, destination, connection_id, status, attempts, next_attempt_at, created_at, updated_at, last_error, last_status`
	attemptCols      = `id, delivery_id, event_id, destination, number, started_at, duration_ms, status_code, response_headers, response_body, error, success`
	errNoEventForDup = "dedup key held by an event that is gone"
)

type scanner interface{ Scan(dest ...any) error }

func scanRequest(sc scanner) (*store.Request, error) {
	var r store.Request
	var at int64
	var headers, body []byte
	if err := sc.Scan(&r.ID, &r.Source, &at, &r.Method, &r.Path, &r.Query, &headers, &body, &r.RemoteAddr, &r.Status, &r.Reason, &r.HTTPStatus, &r.EventID); err != nil {
		return nil, interpretError(err)
	}
	r.ReceivedAt = fromMicros(at)
	r.Body = body
	if len(headers) > 0 {
		if err := json.Unmarshal(headers, &r.Headers); err != nil {
			return nil, fmt.Errorf("decode headers of %s: %w", r.ID, err)
		}
	}
	return &r, nil
}

func scanEvent(sc scanner) (*store.Event, error) {
	e, err := sqlrow.Event(sc)
	return e, interpretError(err)
}

func scanDelivery(sc scanner) (*store.Delivery, error) {
	d, err := sqlrow.Delivery(sc)
	return d, interpretError(err)
}

func scanAttempt(sc scanner) (*store.Attempt, error) {
	var a store.Attempt
	var started int64
	var headers []byte
	var success int
	if err := sc.Scan(&a.ID, &a.DeliveryID, &a.EventID, &a.Destination, &a.Number, &started, &a.DurationMS, &a.StatusCode,
		&headers, &a.ResponseBody, &a.Error, &success); err != nil {
		return nil, interpretError(err)
	}
	a.StartedAt = fromMicros(started)
	a.Success = success != 0
	if len(headers) > 0 {
		if err := json.Unmarshal(headers, &a.ResponseHeaders); err != nil {
			return nil, fmt.Errorf("decode response headers of %s: %w", a.ID, err)
		}
	}
	return &a, nil
}

func encodeHeaders(h map[string][]string) ([]byte, error) {
	if len(h) == 0 {
		return nil, nil
	}
	return json.Marshal(h)
}

// RequestIngest implements [store.Store].
func (s *Store) RequestIngest(ctx context.Context, p *store.RequestIngestParams) (*store.RequestIngestResult, error) {
	if p == nil || p.Request == nil || p.Event == nil {
		return nil, errors.New("ingest request: request and event are required")
	}
	// Encode outside the writer: it is the serial resource.
	headers, err := encodeHeaders(p.Request.Headers)
	if err != nil {
		return nil, fmt.Errorf("ingest request: encode headers: %w", err)
	}
	window := p.DedupWindow
	if window <= 0 {
		window = store.DefaultDedupWindow
	}
	req := p.Request
	if req.ReceivedAt.IsZero() {
		req.ReceivedAt = time.Now()
	}
	var res store.RequestIngestResult
	err = s.write(ctx, func(w *writer) error {
		res = store.RequestIngestResult{}
		at := micros(req.ReceivedAt)
		reqID := s.ids.New("req", req.ReceivedAt)
		evID := s.ids.New("evt", req.ReceivedAt)
		if key := p.Event.DedupKey; key != "" {
			r, err := w.exec(sqlDedupClaim, req.Source, key, evID, micros(req.ReceivedAt.Add(window)), at)
			if err != nil {
				return fmt.Errorf("claim dedup key: %w", err)
			}
			if n, _ := r.RowsAffected(); n == 0 {
				var first string
				if err := w.queryRow(sqlDedupGet, req.Source, key).Scan(&first); err != nil {
					return fmt.Errorf("read dedup key: %w", err)
				}
				if _, err := w.exec(sqlInsertRequest, reqID, req.Source, at, req.Method, req.Path, req.Query, headers, req.Body,
					req.RemoteAddr, store.RequestDuplicate, "duplicate of "+first, 200, first); err != nil {
					return fmt.Errorf("insert request: %w", err)
				}
				res.RequestID, res.EventID, res.Duplicate = reqID, first, true
				return nil
			}
		}
		if _, err := w.exec(sqlInsertRequest, reqID, req.Source, at, req.Method, req.Path, req.Query, headers, req.Body,
			req.RemoteAddr, store.RequestAccepted, "", 200, evID); err != nil {
			return fmt.Errorf("insert request: %w", err)
		}
		status := store.EventIgnored
		if len(p.Deliveries) > 0 {
			status = store.EventRouted
		}
		if _, err := w.exec(sqlInsertEvent, evID, req.Source, reqID, at, p.Event.Type, p.Event.DedupKey, status, len(p.Deliveries)); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		res.DeliveryIDs = make([]string, 0, len(p.Deliveries))
		for _, d := range p.Deliveries {
			id := s.ids.New("dlv", req.ReceivedAt)
			if _, err := w.exec(sqlInsertDelivery, id, evID, reqID, req.Source, d.Destination, d.ConnectionID, at, at, at); err != nil {
				return fmt.Errorf("insert delivery: %w", err)
			}
			res.DeliveryIDs = append(res.DeliveryIDs, id)
			w.notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: d.Destination, ID: id})
		}
		w.notify(store.Notification{Kind: store.NotifyEventCreated, Source: req.Source, ID: evID})
		res.RequestID, res.EventID = reqID, evID
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ingest request: %w", err)
	}
	return &res, nil
}

// RequestInsert implements [store.Store].
func (s *Store) RequestInsert(ctx context.Context, r *store.Request) (string, error) {
	headers, err := encodeHeaders(r.Headers)
	if err != nil {
		return "", fmt.Errorf("insert request: encode headers: %w", err)
	}
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = time.Now()
	}
	status := r.Status
	if status == "" {
		status = store.RequestRejected
	}
	var id string
	err = s.write(ctx, func(w *writer) error {
		id = s.ids.New("req", r.ReceivedAt)
		_, err := w.exec(sqlInsertRequest, id, r.Source, micros(r.ReceivedAt), r.Method, r.Path, r.Query, headers, r.Body,
			r.RemoteAddr, status, r.Reason, r.HTTPStatus, r.EventID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("insert request: %w", err)
	}
	return id, nil
}

// RequestGetByID implements [store.Store].
func (s *Store) RequestGetByID(ctx context.Context, id string) (*store.Request, error) {
	r, err := scanRequest(s.reads.request.QueryRowContext(ctx, id))
	if err != nil {
		return nil, fmt.Errorf("get request %s: %w", id, err)
	}
	return r, nil
}

// filterWhere builds the conditions and arguments shared by lists and bulk
// updates. timeCol is the column Since/Until apply to.
func filterWhere(p store.ListParams, timeCol string, cols map[string]string) ([]string, []any) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	for _, f := range []struct{ key, val string }{
		{"source", p.Source}, {"destination", p.Destination}, {"status", p.Status}, {"type", p.Type}, {"event_id", p.EventID},
	} {
		if f.val != "" && cols[f.key] != "" {
			add(cols[f.key]+" = ?", f.val)
		}
	}
	if p.Query != "" && cols["query"] != "" {
		add(cols["query"], "%"+escapeLike(p.Query)+"%")
	}
	if !p.Since.IsZero() {
		add(timeCol+" >= ?", micros(p.Since))
	}
	if !p.Until.IsZero() {
		add(timeCol+" < ?", micros(p.Until))
	}
	return where, args
}

// listQuery returns the WHERE, ORDER and LIMIT of a newest-first page.
func listQuery(p store.ListParams, timeCol string, cols map[string]string) (string, []any) {
	where, args := filterWhere(p, timeCol, cols)
	if p.Cursor != "" {
		where = append(where, "id < ?")
		args = append(args, p.Cursor)
	}
	q := ""
	if len(where) > 0 {
		q = " WHERE " + strings.Join(where, " AND ")
	}
	return q + " ORDER BY id DESC LIMIT ?", append(args, p.Limit)
}

// escapeLike escapes s for a LIKE pattern with ESCAPE '\', so that % and _
// in a search match only themselves.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// bodyContains is the condition of [store.ListParams.Query] on a table with
// a request_id column. SQLite's LIKE compares ASCII letters without case.
const bodyContains = `request_id IN (SELECT id FROM requests WHERE CAST(body AS TEXT) LIKE ? ESCAPE '\')`

var (
	requestFilterCols  = map[string]string{"source": "source", "status": "status", "event_id": "event_id", "query": `CAST(body AS TEXT) LIKE ? ESCAPE '\'`}
	eventFilterCols    = map[string]string{"source": "source", "status": "status", "type": "type", "query": bodyContains}
	deliveryFilterCols = map[string]string{"source": "source", "destination": "destination", "status": "status", "event_id": "event_id", "query": bodyContains}
)

// RequestList implements [store.Store].
func (s *Store) RequestList(ctx context.Context, p *store.ListParams) ([]*store.Request, error) {
	lp := normalized(p)
	where, args := listQuery(lp, "received_at", requestFilterCols)
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+requestListCols+` FROM requests`+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return collect(rows, scanRequest, "list requests")
}

// EventGetByID implements [store.Store].
func (s *Store) EventGetByID(ctx context.Context, id string) (*store.Event, error) {
	e, err := scanEvent(s.reads.event.QueryRowContext(ctx, id))
	if err != nil {
		return nil, fmt.Errorf("get event %s: %w", id, err)
	}
	return e, nil
}

// EventList implements [store.Store].
func (s *Store) EventList(ctx context.Context, p *store.ListParams) ([]*store.Event, error) {
	lp := normalized(p)
	where, args := listQuery(lp, "received_at", eventFilterCols)
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+eventCols+` FROM events`+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return collect(rows, scanEvent, "list events")
}

func normalized(p *store.ListParams) store.ListParams {
	if p == nil {
		return store.ListParams{}.Normalized()
	}
	return p.Normalized()
}

func collect[T any](rows *sql.Rows, scan func(scanner) (*T, error), what string) ([]*T, error) {
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// DeliveryInsertMany implements [store.Store].
func (s *Store) DeliveryInsertMany(ctx context.Context, ds []*store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	err := s.write(ctx, func(w *writer) error {
		perEvent := map[string]int{}
		for _, d := range ds {
			now := time.Now()
			due := d.NextAttemptAt
			if due.IsZero() {
				due = now
			}
			d.ID = s.ids.New("dlv", now)
			d.Status, d.Attempts, d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = store.DeliveryPending, 0, due, now, now
			if _, err := w.exec(sqlInsertDelivery, d.ID, d.EventID, d.RequestID, d.Source, d.Destination, d.ConnectionID,
				micros(due), micros(now), micros(now)); err != nil {
				return fmt.Errorf("insert delivery: %w", err)
			}
			perEvent[d.EventID]++
			w.notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: d.Destination, ID: d.ID})
		}
		for ev, n := range perEvent {
			if _, err := w.exec(sqlEventRouted, n, ev); err != nil {
				return fmt.Errorf("mark event %s routed: %w", ev, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert deliveries: %w", err)
	}
	return nil
}

// DeliveryGetByID implements [store.Store].
func (s *Store) DeliveryGetByID(ctx context.Context, id string) (*store.Delivery, error) {
	d, err := scanDelivery(s.reads.delivery.QueryRowContext(ctx, id))
	if err != nil {
		return nil, fmt.Errorf("get delivery %s: %w", id, err)
	}
	return d, nil
}

// DeliveryList implements [store.Store].
func (s *Store) DeliveryList(ctx context.Context, p *store.ListParams) ([]*store.Delivery, error) {
	lp := normalized(p)
	where, args := listQuery(lp, "created_at", deliveryFilterCols)
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+deliveryCols+` FROM deliveries`+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return collect(rows, scanDelivery, "list deliveries")
}

// DeliveryClaimDue implements [store.Store].
func (s *Store) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.Delivery, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	var out []*store.Delivery
	err := s.write(ctx, func(w *writer) error {
		out = out[:0]
		now, lease := micros(p.Now), micros(p.LeaseUntil)
		if p.Ordered {
			var id string
			var next int64
			err := w.queryRow(sqlOrderedHead, p.Destination).Scan(&id, &next)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && next > now) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read ordered head: %w", err)
			}
			d, err := scanDelivery(w.queryRow(sqlClaimOne, lease, now, id))
			if err != nil {
				return err
			}
			out = append(out, d)
			return nil
		}
		rows, err := w.query(sqlClaimDue, lease, now, p.Destination, now, p.Limit)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanDelivery, "claim")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries for %s: %w", p.Destination, err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NextAttemptAt.Equal(out[j].NextAttemptAt) {
			return out[i].NextAttemptAt.Before(out[j].NextAttemptAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// DeliveryRetry implements [store.Store].
func (s *Store) DeliveryRetry(ctx context.Context, id string, now time.Time) (*store.Delivery, error) {
	var d *store.Delivery
	err := s.write(ctx, func(w *writer) error {
		var err error
		d, err = scanDelivery(w.queryRow(`UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ? RETURNING `+deliveryCols,
			micros(now), micros(now), id))
		if err != nil {
			return err
		}
		w.notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: d.Destination, ID: d.ID})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retry delivery %s: %w", id, err)
	}
	return d, nil
}

// DeliveryRetryMany implements [store.Store].
func (s *Store) DeliveryRetryMany(ctx context.Context, p *store.ListParams, now time.Time) (int, error) {
	lp := store.ListParams{}
	if p != nil {
		lp = *p
	}
	if lp.Status == "" {
		lp.Status = store.DeliveryDead
	}
	where, args := filterWhere(lp, "created_at", deliveryFilterCols)
	var n int
	err := s.write(ctx, func(w *writer) error {
		rows, err := w.query(`UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE `+
			strings.Join(where, " AND ")+` RETURNING destination`, append([]any{micros(now), micros(now)}, args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		n = 0
		seen := map[string]bool{}
		for rows.Next() {
			var dest string
			if err := rows.Scan(&dest); err != nil {
				return err
			}
			n++
			if !seen[dest] {
				seen[dest] = true
				w.notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: dest})
			}
		}
		return rows.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("retry deliveries: %w", err)
	}
	return n, nil
}

// DeliveryStats implements [store.Store].
func (s *Store) DeliveryStats(ctx context.Context) ([]store.DestinationStats, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT destination,
		SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END),
		COALESCE(MIN(CASE WHEN status = 'pending' THEN created_at END), 0),
		SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END)
		FROM deliveries WHERE status IN ('pending', 'dead') GROUP BY destination ORDER BY destination`)
	if err != nil {
		return nil, fmt.Errorf("delivery stats: %w", err)
	}
	defer rows.Close()
	var out []store.DestinationStats
	for rows.Next() {
		var st store.DestinationStats
		var oldest int64
		if err := rows.Scan(&st.Destination, &st.Pending, &oldest, &st.Dead); err != nil {
			return nil, fmt.Errorf("delivery stats: %w", err)
		}
		st.OldestPending = fromMicros(oldest)
		out = append(out, st)
	}
	return out, rows.Err()
}

// AttemptRecord implements [store.Store].
func (s *Store) AttemptRecord(ctx context.Context, p *store.AttemptRecordParams) error {
	a := p.Attempt
	headers, err := encodeHeaders(a.ResponseHeaders)
	if err != nil {
		return fmt.Errorf("record attempt: encode headers: %w", err)
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	lost := false
	err = s.write(ctx, func(w *writer) error {
		a.ID = s.ids.New("att", a.StartedAt)
		success := 0
		if a.Success {
			success = 1
		}
		if _, err := w.exec(sqlInsertAttempt, a.ID, a.DeliveryID, a.EventID, a.Destination, a.Number, micros(a.StartedAt), a.DurationMS,
			a.StatusCode, headers, a.ResponseBody, a.Error, success); err != nil {
			return fmt.Errorf("insert attempt: %w", err)
		}
		r, err := w.exec(sqlFinishDelivery, p.Status, micros(p.NextAttemptAt), a.Error, a.StatusCode, micros(now), a.DeliveryID, a.Number)
		if err != nil {
			return fmt.Errorf("update delivery: %w", err)
		}
		n, _ := r.RowsAffected()
		lost = n == 0
		if !lost && p.Status == store.DeliveryPending {
			w.notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: a.Destination, ID: a.DeliveryID})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record attempt %d of %s: %w", a.Number, a.DeliveryID, err)
	}
	if lost {
		return fmt.Errorf("record attempt %d of %s: %w", a.Number, a.DeliveryID, store.ErrLeaseLost)
	}
	return nil
}

// AttemptList implements [store.Store].
func (s *Store) AttemptList(ctx context.Context, deliveryID string) ([]*store.Attempt, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+attemptCols+` FROM attempts WHERE delivery_id = ? ORDER BY number, id`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("list attempts of %s: %w", deliveryID, err)
	}
	return collect(rows, scanAttempt, "list attempts of "+deliveryID)
}
