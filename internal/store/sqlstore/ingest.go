package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Statements of the ingest path.
const (
	sqlInsertRequest = `INSERT INTO requests (` + requestBodyCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlInsertEvent   = `INSERT INTO events (` + eventCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// The same with the late column last (see [Dialect.LateRows]).
	sqlInsertRequestLate = `INSERT INTO requests (` + requestBodyCols + `, late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlInsertEventLate   = `INSERT INTO events (` + eventCols + `, late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// The dedup key is inserted, or taken over only when its window has
	// expired. The primary key makes concurrent duplicates (on any
	// instance) wait for the first and then find it.
	sqlDedupClaim = `INSERT INTO dedup (source, key, event_id, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (source, key) DO UPDATE SET event_id = excluded.event_id, expires_at = excluded.expires_at
		WHERE dedup.expires_at <= ?`
	sqlDedupGet       = `SELECT event_id FROM dedup WHERE source = ? AND key = ?`
	sqlInsertDelivery = `INSERT INTO deliveries (id, event_id, request_id, source, destination, connection_id, status, attempts, next_attempt_at, created_at, updated_at, project)
		VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?)`
)

// requestArgs are s.insertRequest's arguments for r with the given id,
// status, reason, answer and event.
func (s *Store) requestArgs(r *store.Request, id string, headers []byte, status, reason string, httpStatus int, eventID string) []any {
	return s.requestRow(r, id, id, headers, status, reason, httpStatus, eventID, micros(r.ReceivedAt), r.Source, store.ProjectOf(r.Source))
}

// requestRow is requestArgs with the values that the other rows of the
// same write take too (idArg is id) already converted to any, once: each
// conversion of a string or a large integer allocates, and
// RequestIngest's rows share the ids, the source, the time and the
// project.
func (s *Store) requestRow(r *store.Request, id string, idArg any, headers []byte, status, reason any, httpStatus int, eventID, at, source, project any) []any {
	args := make([]any, 0, 17) // 16 columns and late
	args = append(args, idArg, source, at, r.Method, r.Path, r.Query, headers,
		r.RemoteAddr, status, reason, httpStatus, eventID, r.BodySize, r.BodySHA256, project, r.Body)
	if s.d.LateRows != nil {
		args = append(args, lateFlag(id, r.ReceivedAt))
	}
	return args
}

// RequestIngest implements [store.Ingester].
func (s *Store) RequestIngest(ctx context.Context, p *store.RequestIngestParams) (*store.RequestIngestResult, error) {
	if p == nil || p.Request == nil || p.Event == nil {
		return nil, errors.New("ingest request: request and event are required")
	}
	// Encode before the write: the writer is the serial resource.
	headers, err := encodeHeaders(p.Request.Headers)
	if err != nil {
		return nil, fmt.Errorf("ingest request: encode headers: %w", err)
	}
	window := p.DedupWindow
	if window <= 0 {
		window = store.DefaultDedupWindow
	}
	req := p.Request
	req.Project = store.ProjectOf(req.Source)
	req.ReceivedAt = s.orNow(req.ReceivedAt)
	if s.ingest != nil && s.d.LateRows == nil { // the bulk column lists have no late column
		return s.ingestRow(ctx, p, req, headers, window)
	}
	var res store.RequestIngestResult
	err = s.write(ctx, func(ctx context.Context, tx Tx) error {
		res = store.RequestIngestResult{}
		reqID := s.ids.New("req", req.ReceivedAt)
		evID := s.ids.New("evt", req.ReceivedAt)
		// The values several rows take, converted to any once.
		var at, source, project, reqIDArg, evIDArg any = micros(req.ReceivedAt), req.Source, req.Project, reqID, evID
		var key any = p.Event.DedupKey
		if p.Event.DedupKey != "" {
			n, err := tx.Exec(ctx, sqlDedupClaim, source, key, evIDArg, micros(req.ReceivedAt.Add(window)), at)
			if err != nil {
				return fmt.Errorf("claim dedup key: %w", err)
			}
			if n == 0 {
				var first string
				if err := tx.QueryRow(ctx, sqlDedupGet, source, key).Scan(&first); err != nil {
					return fmt.Errorf("read dedup key: %w", err)
				}
				if _, err := tx.Exec(ctx, s.insertRequest, s.requestRow(req, reqID, reqIDArg, headers, store.RequestDuplicate, "duplicate of "+first, 200, first, at, source, project)...); err != nil {
					return fmt.Errorf("insert request: %w", err)
				}
				res.RequestID, res.EventID, res.Duplicate = reqID, first, true
				return nil
			}
		}
		var status any = store.EventIgnored
		if len(p.Deliveries) > 0 {
			status = store.EventRouted
		}
		evArgs := make([]any, 0, 11) // 10 columns and late
		evArgs = append(evArgs, evIDArg, source, reqIDArg, at, p.Event.Type, key, p.Event.DedupError, status, len(p.Deliveries), project)
		if s.d.LateRows != nil {
			evArgs = append(evArgs, lateFlag(evID, req.ReceivedAt))
		}
		stmts := make([]Stmt, 0, 2+len(p.Deliveries))
		stmts = append(stmts,
			Stmt{s.insertRequest, s.requestRow(req, reqID, reqIDArg, headers, store.RequestAccepted, "", 200, evIDArg, at, source, project)},
			Stmt{s.insertEvent, evArgs})
		res.DeliveryIDs = make([]string, 0, len(p.Deliveries))
		for _, d := range p.Deliveries {
			id := s.ids.New("dlv", req.ReceivedAt)
			stmts = append(stmts, Stmt{sqlInsertDelivery, []any{id, evIDArg, reqIDArg, source, d.Destination, d.ConnectionID, at, at, at, project}})
			res.DeliveryIDs = append(res.DeliveryIDs, id)
			tx.Notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: d.Destination, ID: id})
		}
		if _, err := tx.ExecBatch(ctx, stmts...); err != nil {
			return fmt.Errorf("insert request, event and deliveries: %w", err)
		}
		tx.Notify(store.Notification{Kind: store.NotifyEventCreated, Source: req.Source, ID: evID})
		res.RequestID, res.EventID = reqID, evID
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ingest request: %w", err)
	}
	if !res.Duplicate && len(res.DeliveryIDs) > 0 {
		s.recent.add(recentCopy(req, res.RequestID, res.EventID))
	}
	return &res, nil
}

// RequestInsert implements [store.Ingester].
func (s *Store) RequestInsert(ctx context.Context, r *store.Request) (string, error) {
	headers, err := encodeHeaders(r.Headers)
	if err != nil {
		return "", fmt.Errorf("insert request: encode headers: %w", err)
	}
	r.ReceivedAt = s.orNow(r.ReceivedAt)
	status := r.Status
	if status == "" {
		status = store.RequestRejected
	}
	var id string
	err = s.write(ctx, func(ctx context.Context, tx Tx) error {
		id = s.ids.New("req", r.ReceivedAt)
		_, err := tx.Exec(ctx, s.insertRequest, s.requestArgs(r, id, headers, status, r.Reason, r.HTTPStatus, r.EventID)...)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("insert request: %w", err)
	}
	return id, nil
}

// Column lists of the ingest path's inserts, in the order of [IngestRow]'s
// argument lists, for a driver that writes them in bulk.
const (
	// RequestInsertCols are the columns of [IngestRow.Request].
	RequestInsertCols = requestBodyCols
	// EventInsertCols are the columns of [IngestRow.Event].
	EventInsertCols = eventCols
	// DeliveryInsertCols are the columns of each of [IngestRow.Deliveries].
	DeliveryInsertCols = `id, event_id, request_id, source, destination, connection_id, status, attempts, next_attempt_at, created_at, updated_at, project`
)

// Positions in [IngestRow.Request] of what a duplicate changes.
const (
	reqArgStatus  = 8
	reqArgReason  = 9
	reqArgEventID = 11
)

// IngestRow is one request's ingest with its rows ready to write, handed to
// an [Engine.Ingest]. The driver claims the dedup key (when DedupKey is
// set) exactly as the core's statements do: inserted, or taken over only
// when the stored key expired at or before At; a key claimed by an earlier
// ingest (on any instance, or earlier in the same batch) makes this one a
// duplicate. A claimed or keyless ingest writes Request, Event and
// Deliveries and sends Notes when it commits; a duplicate writes only
// [IngestRow.DuplicateRequest] and sends nothing.
type IngestRow struct {
	// Source and DedupKey name the dedup row; DedupKey empty means none.
	Source, DedupKey string
	// At is the request's received time and DedupExpires the end of its
	// window, both in Unix microseconds.
	At, DedupExpires int64
	// EventID is the event this ingest creates (the dedup row's event_id).
	EventID string
	// Request, Event and each of Deliveries are the arguments of the
	// inserts, in [RequestInsertCols], [EventInsertCols] and
	// [DeliveryInsertCols] order.
	Request    []any
	Event      []any
	Deliveries [][]any
	// Notes are sent when the event is created.
	Notes []store.Notification

	// Duplicate and First are the driver's answer: whether the key was
	// already claimed, and by which event.
	Duplicate bool
	First     string
}

// DuplicateRequest returns the request row's arguments for a duplicate of
// the event first.
func (r *IngestRow) DuplicateRequest(first string) []any {
	args := append([]any(nil), r.Request...)
	args[reqArgStatus], args[reqArgReason], args[reqArgEventID] = store.RequestDuplicate, "duplicate of "+first, first
	return args
}

// ingestRow is RequestIngest through the driver's [Engine.Ingest].
func (s *Store) ingestRow(ctx context.Context, p *store.RequestIngestParams, req *store.Request, headers []byte, window time.Duration) (*store.RequestIngestResult, error) {
	at := micros(req.ReceivedAt)
	reqID := s.ids.New("req", req.ReceivedAt)
	evID := s.ids.New("evt", req.ReceivedAt)
	status := store.EventIgnored
	if len(p.Deliveries) > 0 {
		status = store.EventRouted
	}
	project := store.ProjectOf(req.Source)
	row := &IngestRow{
		Source: req.Source, DedupKey: p.Event.DedupKey, At: at, DedupExpires: micros(req.ReceivedAt.Add(window)), EventID: evID,
		Request:    s.requestArgs(req, reqID, headers, store.RequestAccepted, "", 200, evID),
		Event:      []any{evID, req.Source, reqID, at, p.Event.Type, p.Event.DedupKey, p.Event.DedupError, status, len(p.Deliveries), project},
		Deliveries: make([][]any, 0, len(p.Deliveries)),
		Notes:      make([]store.Notification, 0, len(p.Deliveries)+1),
	}
	res := &store.RequestIngestResult{RequestID: reqID, EventID: evID, DeliveryIDs: make([]string, 0, len(p.Deliveries))}
	for _, d := range p.Deliveries {
		id := s.ids.New("dlv", req.ReceivedAt)
		row.Deliveries = append(row.Deliveries, []any{id, evID, reqID, req.Source, d.Destination, d.ConnectionID, store.DeliveryPending, 0, at, at, at, project})
		res.DeliveryIDs = append(res.DeliveryIDs, id)
		row.Notes = append(row.Notes, store.Notification{Kind: store.NotifyDeliveryDue, Destination: d.Destination, ID: id})
	}
	row.Notes = append(row.Notes, store.Notification{Kind: store.NotifyEventCreated, Source: req.Source, ID: evID})
	if err := s.ingest(ctx, row); err != nil {
		return nil, fmt.Errorf("ingest request: %w", err)
	}
	if row.Duplicate {
		return &store.RequestIngestResult{RequestID: reqID, EventID: row.First, Duplicate: true}, nil
	}
	if len(res.DeliveryIDs) > 0 {
		s.recent.add(recentCopy(req, reqID, evID))
	}
	return res, nil
}
