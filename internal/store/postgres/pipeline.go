package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlrow"
)

const (
	requestCols     = `id, source, received_at, method, path, query, headers, body, remote_addr, status, reason, http_status, event_id`
	requestListCols = `id, source, received_at, method, path, query, headers, NULL::bytea, remote_addr, status, reason, http_status, event_id`
	eventCols       = sqlrow.EventCols
	deliveryCols    = `id, event_id, request_id, source, destination, connection_id, status, attempts, next_attempt_at, created_at, updated_at, last_error, last_status`
	attemptCols     = `id, delivery_id, event_id, destination, number, started_at, duration_ms, status_code, response_headers, response_body, error, success`
)

const (
	sqlInsertRequest = `INSERT INTO requests (` + requestCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
	sqlInsertEvent   = `INSERT INTO events (` + eventCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	// The dedup key is inserted, or taken over only when its window has
	// expired; the primary key makes concurrent duplicates (on any
	// instance) wait for the first and then find it.
	sqlDedupClaim = `INSERT INTO dedup (source, key, event_id, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (source, key) DO UPDATE SET event_id = excluded.event_id, expires_at = excluded.expires_at
		WHERE dedup.expires_at <= $5`
	sqlDedupGet       = `SELECT event_id FROM dedup WHERE source = $1 AND key = $2`
	sqlInsertDelivery = `INSERT INTO deliveries (id, event_id, request_id, source, destination, connection_id, status, attempts, next_attempt_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $9)`
	sqlInsertAttempt = `INSERT INTO attempts (` + attemptCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`
	// Fenced: only the claim whose token is still current moves the
	// delivery.
	sqlFinishDelivery = `UPDATE deliveries SET status = $1, next_attempt_at = $2, last_error = $3, last_status = $4, updated_at = $5
		WHERE id = $6 AND attempts = $7 AND status = 'pending'`
	// SKIP LOCKED: rows another instance is claiming right now are not
	// waited for, and not taken.
	sqlClaimDue = `WITH due AS (
			SELECT id FROM deliveries WHERE destination = $3 AND status = 'pending' AND next_attempt_at <= $4
			ORDER BY next_attempt_at, id LIMIT $5 FOR UPDATE SKIP LOCKED)
		UPDATE deliveries d SET attempts = d.attempts + 1, next_attempt_at = $1, updated_at = $2
		FROM due WHERE d.id = due.id
		RETURNING ` + "d.id, d.event_id, d.request_id, d.source, d.destination, d.connection_id, d.status, d.attempts, d.next_attempt_at, d.created_at, d.updated_at, d.last_error, d.last_status"
	// No SKIP LOCKED: a concurrent claim of the head is waited for, after
	// which the head is seen leased (not due) instead of skipped.
	sqlOrderedHead = `SELECT id, next_attempt_at FROM deliveries WHERE destination = $1 AND status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE`
	sqlClaimOne    = `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $1, updated_at = $2 WHERE id = $3 RETURNING ` + deliveryCols
	sqlEventRouted = `UPDATE events SET status = 'routed', deliveries = deliveries + $1 WHERE id = $2`
)

func scanRequest(sc pgx.Row) (*store.Request, error) {
	var r store.Request
	var at int64
	var headers []byte
	if err := sc.Scan(&r.ID, &r.Source, &at, &r.Method, &r.Path, &r.Query, &headers, &r.Body, &r.RemoteAddr, &r.Status, &r.Reason, &r.HTTPStatus, &r.EventID); err != nil {
		return nil, interpretError(err)
	}
	r.ReceivedAt = fromMicros(at)
	if len(headers) > 0 {
		if err := json.Unmarshal(headers, &r.Headers); err != nil {
			return nil, fmt.Errorf("decode headers of %s: %w", r.ID, err)
		}
	}
	return &r, nil
}

func scanEvent(sc pgx.Row) (*store.Event, error) {
	e, err := sqlrow.Event(sc)
	return e, interpretError(err)
}

func scanDelivery(sc pgx.Row) (*store.Delivery, error) {
	d, err := sqlrow.Delivery(sc)
	return d, interpretError(err)
}

func scanAttempt(sc pgx.Row) (*store.Attempt, error) {
	var a store.Attempt
	var started int64
	var headers []byte
	if err := sc.Scan(&a.ID, &a.DeliveryID, &a.EventID, &a.Destination, &a.Number, &started, &a.DurationMS, &a.StatusCode,
		&headers, &a.ResponseBody, &a.Error, &a.Success); err != nil {
		return nil, interpretError(err)
	}
	a.StartedAt = fromMicros(started)
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

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (*T, error), what string) ([]*T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, interpretError(err))
	}
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
		return nil, fmt.Errorf("%s: %w", what, interpretError(err))
	}
	return out, nil
}

// RequestIngest implements [store.Store].
func (s *Store) RequestIngest(ctx context.Context, p *store.RequestIngestParams) (*store.RequestIngestResult, error) {
	if p == nil || p.Request == nil || p.Event == nil {
		return nil, errors.New("ingest request: request and event are required")
	}
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
	err = s.write(ctx, func(w *wtx) error {
		res = store.RequestIngestResult{}
		at := micros(req.ReceivedAt)
		reqID := s.ids.New("req", req.ReceivedAt)
		evID := s.ids.New("evt", req.ReceivedAt)
		if key := p.Event.DedupKey; key != "" {
			n, err := w.exec(sqlDedupClaim, req.Source, key, evID, micros(req.ReceivedAt.Add(window)), at)
			if err != nil {
				return fmt.Errorf("claim dedup key: %w", err)
			}
			if n == 0 {
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
		status := store.EventIgnored
		if len(p.Deliveries) > 0 {
			status = store.EventRouted
		}
		// One round trip for the rest.
		b := &pgx.Batch{}
		b.Queue(sqlInsertRequest, reqID, req.Source, at, req.Method, req.Path, req.Query, headers, req.Body,
			req.RemoteAddr, store.RequestAccepted, "", 200, evID)
		b.Queue(sqlInsertEvent, evID, req.Source, reqID, at, p.Event.Type, p.Event.DedupKey, status, len(p.Deliveries))
		res.DeliveryIDs = make([]string, 0, len(p.Deliveries))
		for _, d := range p.Deliveries {
			id := s.ids.New("dlv", req.ReceivedAt)
			b.Queue(sqlInsertDelivery, id, evID, reqID, req.Source, d.Destination, d.ConnectionID, at, at, at)
			res.DeliveryIDs = append(res.DeliveryIDs, id)
			w.notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: d.Destination, ID: id})
		}
		if err := w.tx.SendBatch(w.ctx, b).Close(); err != nil {
			return fmt.Errorf("insert request, event and deliveries: %w", err)
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
	err = s.write(ctx, func(w *wtx) error {
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
	r, err := scanRequest(s.pool.QueryRow(ctx, `SELECT `+requestCols+` FROM requests WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get request %s: %w", id, err)
	}
	return r, nil
}

// args numbers query arguments as $1, $2, ... while a query is built.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// filterWhere builds the conditions shared by lists and bulk updates.
// timeCol is the column Since/Until apply to.
func filterWhere(p store.ListParams, timeCol string, cols map[string]string, a *args) []string {
	var where []string
	for _, f := range []struct{ key, val string }{
		{"source", p.Source}, {"destination", p.Destination}, {"status", p.Status}, {"type", p.Type}, {"event_id", p.EventID},
	} {
		if f.val != "" && cols[f.key] != "" {
			where = append(where, cols[f.key]+" = "+a.add(f.val))
		}
	}
	if p.Query != "" && cols["query"] != "" {
		where = append(where, strings.Replace(cols["query"], "?", a.add([]byte(foldASCII(p.Query))), 1))
	}
	if !p.Since.IsZero() {
		where = append(where, timeCol+" >= "+a.add(micros(p.Since)))
	}
	if !p.Until.IsZero() {
		where = append(where, timeCol+" < "+a.add(micros(p.Until)))
	}
	return where
}

// listQuery returns the WHERE, ORDER and LIMIT of a newest-first page.
func listQuery(p store.ListParams, timeCol string, cols map[string]string) (string, args) {
	var a args
	where := filterWhere(p, timeCol, cols, &a)
	if p.Cursor != "" {
		where = append(where, "id < "+a.add(p.Cursor))
	}
	q := ""
	if len(where) > 0 {
		q = " WHERE " + strings.Join(where, " AND ")
	}
	return q + " ORDER BY id DESC LIMIT " + a.add(p.Limit), a
}

// bodyHas is the condition of [store.ListParams.Query] on requests. The
// body is read as Latin-1, which maps each byte to one character and never
// fails, so the match is byte for byte; translate folds ASCII letters only
// (lower would fold by locale), and strpos has no wildcards, so % _ and \
// match only themselves. The query (the ? argument) is folded in Go.
const bodyHas = `strpos(translate(convert_from(body, 'LATIN1'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
	convert_from(?::bytea, 'LATIN1')) > 0`

// bodyContains is the condition of [store.ListParams.Query] on a table with
// a request_id column.
const bodyContains = `request_id IN (SELECT id FROM requests WHERE ` + bodyHas + `)`

// foldASCII lowers ASCII letters only, as bodyHas does.
func foldASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

var (
	requestFilterCols  = map[string]string{"source": "source", "status": "status", "event_id": "event_id", "query": bodyHas}
	eventFilterCols    = map[string]string{"source": "source", "status": "status", "type": "type", "query": bodyContains}
	deliveryFilterCols = map[string]string{"source": "source", "destination": "destination", "status": "status", "event_id": "event_id", "query": bodyContains}
)

func normalized(p *store.ListParams) store.ListParams {
	if p == nil {
		return store.ListParams{}.Normalized()
	}
	return p.Normalized()
}

// RequestList implements [store.Store].
func (s *Store) RequestList(ctx context.Context, p *store.ListParams) ([]*store.Request, error) {
	where, a := listQuery(normalized(p), "received_at", requestFilterCols)
	rows, err := s.pool.Query(ctx, `SELECT `+requestListCols+` FROM requests`+where, a...)
	return collect(rows, err, scanRequest, "list requests")
}

// EventGetByID implements [store.Store].
func (s *Store) EventGetByID(ctx context.Context, id string) (*store.Event, error) {
	e, err := scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventCols+` FROM events WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get event %s: %w", id, err)
	}
	return e, nil
}

// EventList implements [store.Store].
func (s *Store) EventList(ctx context.Context, p *store.ListParams) ([]*store.Event, error) {
	where, a := listQuery(normalized(p), "received_at", eventFilterCols)
	rows, err := s.pool.Query(ctx, `SELECT `+eventCols+` FROM events`+where, a...)
	return collect(rows, err, scanEvent, "list events")
}

// DeliveryInsertMany implements [store.Store].
func (s *Store) DeliveryInsertMany(ctx context.Context, ds []*store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	err := s.write(ctx, func(w *wtx) error {
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
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get delivery %s: %w", id, err)
	}
	return d, nil
}

// DeliveryList implements [store.Store].
func (s *Store) DeliveryList(ctx context.Context, p *store.ListParams) ([]*store.Delivery, error) {
	where, a := listQuery(normalized(p), "created_at", deliveryFilterCols)
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryCols+` FROM deliveries`+where, a...)
	return collect(rows, err, scanDelivery, "list deliveries")
}

// DeliveryClaimDue implements [store.Store]. It never returns a delivery
// whose lease another caller, on this instance or another, holds.
func (s *Store) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.Delivery, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	var out []*store.Delivery
	err := s.write(ctx, func(w *wtx) error {
		out = nil
		now, lease := micros(p.Now), micros(p.LeaseUntil)
		if p.Ordered {
			var id string
			var next int64
			err := w.queryRow(sqlOrderedHead, p.Destination).Scan(&id, &next)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && next > now) {
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
		out, err = collect(rows, err, scanDelivery, "claim")
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
	err := s.write(ctx, func(w *wtx) error {
		var err error
		d, err = scanDelivery(w.queryRow(`UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $2 WHERE id = $3 RETURNING `+deliveryCols,
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
	a := args{micros(now)}
	where := filterWhere(lp, "created_at", deliveryFilterCols, &a)
	var n int
	err := s.write(ctx, func(w *wtx) error {
		rows, err := w.query(`UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1 WHERE `+
			strings.Join(where, " AND ")+` RETURNING destination`, a...)
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
	rows, err := s.pool.Query(ctx, `SELECT destination,
		count(*) FILTER (WHERE status = 'pending'),
		coalesce(min(created_at) FILTER (WHERE status = 'pending'), 0),
		count(*) FILTER (WHERE status = 'dead')
		FROM deliveries WHERE status IN ('pending', 'dead') GROUP BY destination ORDER BY destination`)
	if err != nil {
		return nil, fmt.Errorf("delivery stats: %w", interpretError(err))
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delivery stats: %w", interpretError(err))
	}
	return out, nil
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
	err = s.write(ctx, func(w *wtx) error {
		a.ID = s.ids.New("att", a.StartedAt)
		b := &pgx.Batch{}
		b.Queue(sqlInsertAttempt, a.ID, a.DeliveryID, a.EventID, a.Destination, a.Number, micros(a.StartedAt), a.DurationMS,
			a.StatusCode, headers, a.ResponseBody, a.Error, a.Success)
		b.Queue(sqlFinishDelivery, p.Status, micros(p.NextAttemptAt), a.Error, a.StatusCode, micros(now), a.DeliveryID, a.Number)
		br := w.tx.SendBatch(w.ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("insert attempt: %w", err)
		}
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return fmt.Errorf("update delivery: %w", err)
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("record attempt: %w", err)
		}
		lost = tag.RowsAffected() == 0
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
	rows, err := s.pool.Query(ctx, `SELECT `+attemptCols+` FROM attempts WHERE delivery_id = $1 ORDER BY number, id`, deliveryID)
	return collect(rows, err, scanAttempt, "list attempts of "+deliveryID)
}
