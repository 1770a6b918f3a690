package sqlstore

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Times are stored as Unix microseconds, durations as microseconds.

// micros stores t as Unix microseconds; the zero time is 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros converts a stored time back; 0 is the zero time.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// nullable stores an empty byte slice as NULL.
func nullable(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// encodeJSON stores v as JSON text; nil (or an empty list) is "".
func encodeJSON[T any](v T, empty bool) (string, error) {
	if empty {
		return "", nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// encodeHeaders stores headers as JSON; none is NULL. The text is byte
// for byte json.Marshal's (keys sorted, a nil list as null, the same
// escapes), written without reflection: a request's headers took 10
// allocations and 2 µs through json.Marshal.
func encodeHeaders(h map[string][]string) ([]byte, error) {
	if len(h) == 0 {
		return nil, nil
	}
	var buf [16]string
	keys := buf[:0]
	n := 2
	for k, vs := range h {
		keys = append(keys, k)
		n += len(k) + 6
		for _, v := range vs {
			n += len(v) + 3
		}
	}
	slices.Sort(keys)
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		vs := h[k]
		if vs == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range vs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// jsonSafe marks the bytes encoding/json writes as themselves in a string.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s as encoding/json encodes it: as is, quoted,
// when it needs no escape (printable ASCII other than '"', '\\', '<', '>'
// and '&'), else through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonSafe[s[i]] {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Column lists, in the order the scanners read them.
const (
	requestCols = `id, source, received_at, method, path, query, headers, remote_addr, status, reason, http_status, event_id, body_size, body_sha256, project`
	// requestBodyCols is requestCols with the body last.
	requestBodyCols = requestCols + `, body`
	eventCols       = `id, source, request_id, received_at, type, dedup_key, dedup_error, status, deliveries, project`
	// DeliveryCols are the columns a claim returns, in order.
	DeliveryCols   = `id, event_id, request_id, source, destination, connection_id, status, attempts, next_attempt_at, created_at, updated_at, last_error, last_status, project, retry`
	attemptCols    = `id, delivery_id, event_id, destination, number, started_at, duration_ms, status_code, response_headers, response_body, error, success, project`
	sourceCols     = `spec, managed_by, created_at, updated_at`
	destCols       = `spec, paused, paused_at, pause_reason, managed_by, created_at, updated_at, circuit`
	connectionCols = `id, source, destination, filter, transform, managed_by, created_at, updated_at, project, retry`
	taskCols       = `id, owner, session_id, protocol, tool, arguments, status, status_message, created_at, updated_at,
	ttl, expires_at, poll_interval, result, error, wait_source, wait_type, wait_filter, wait_since, wait_deadline, event_id, project`
)

// scanRequest reads a row of requestCols, or of requestBodyCols when
// withBody.
func scanRequest(sc Row, withBody bool) (*store.Request, error) {
	var r store.Request
	var at int64
	var headers []byte
	dest := []any{&r.ID, &r.Source, &at, &r.Method, &r.Path, &r.Query, &headers, &r.RemoteAddr, &r.Status, &r.Reason, &r.HTTPStatus, &r.EventID, &r.BodySize, &r.BodySHA256, &r.Project}
	if withBody {
		dest = append(dest, &r.Body)
	}
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	r.ReceivedAt = fromMicros(at)
	if len(headers) > 0 {
		if err := json.Unmarshal(headers, &r.Headers); err != nil {
			return nil, fmt.Errorf("decode headers of %s: %w", r.ID, err)
		}
	}
	return &r, nil
}

func scanRequestBody(sc Row) (*store.Request, error) { return scanRequest(sc, true) }
func scanRequestHead(sc Row) (*store.Request, error) { return scanRequest(sc, false) }

func scanEvent(sc Row) (*store.Event, error) {
	var e store.Event
	var at int64
	if err := sc.Scan(&e.ID, &e.Source, &e.RequestID, &at, &e.Type, &e.DedupKey, &e.DedupError, &e.Status, &e.Deliveries, &e.Project); err != nil {
		return nil, err
	}
	e.ReceivedAt = fromMicros(at)
	return &e, nil
}

// scanDelivery reads a row of [DeliveryCols].
func scanDelivery(sc Row) (*store.Delivery, error) {
	var d store.Delivery
	var next, created, updated int64
	var retry string
	if err := sc.Scan(&d.ID, &d.EventID, &d.RequestID, &d.Source, &d.Destination, &d.ConnectionID, &d.Status, &d.Attempts,
		&next, &created, &updated, &d.LastError, &d.LastStatus, &d.Project, &retry); err != nil {
		return nil, err
	}
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromMicros(next), fromMicros(created), fromMicros(updated)
	if retry != "" {
		d.Retry = new(store.RetryApplied)
		if err := json.Unmarshal([]byte(retry), d.Retry); err != nil {
			return nil, fmt.Errorf("decode retry of delivery %s: %w", d.ID, err)
		}
	}
	return &d, nil
}

func scanAttempt(sc Row) (*store.Attempt, error) {
	var a store.Attempt
	var started int64
	var headers []byte
	if err := sc.Scan(&a.ID, &a.DeliveryID, &a.EventID, &a.Destination, &a.Number, &started, &a.DurationMS, &a.StatusCode,
		&headers, &a.ResponseBody, &a.Error, &a.Success, &a.Project); err != nil {
		return nil, err
	}
	a.StartedAt = fromMicros(started)
	if len(headers) > 0 {
		if err := json.Unmarshal(headers, &a.ResponseHeaders); err != nil {
			return nil, fmt.Errorf("decode response headers of %s: %w", a.ID, err)
		}
	}
	return &a, nil
}

func scanSource(sc Row) (*store.Source, error) {
	var spec []byte
	var owner string
	var created, updated int64
	if err := sc.Scan(&spec, &owner, &created, &updated); err != nil {
		return nil, err
	}
	var src store.Source
	if err := json.Unmarshal(spec, &src); err != nil {
		return nil, fmt.Errorf("decode source: %w", err)
	}
	src.ManagedBy, src.CreatedAt, src.UpdatedAt = owner, fromMicros(created), fromMicros(updated)
	src.Project = store.ProjectOf(src.Name)
	return &src, nil
}

func scanDestination(sc Row) (*store.Destination, error) {
	var spec []byte
	var paused bool
	var pausedAt, created, updated int64
	var reason, owner, circuit string
	if err := sc.Scan(&spec, &paused, &pausedAt, &reason, &owner, &created, &updated, &circuit); err != nil {
		return nil, err
	}
	var d store.Destination
	if err := json.Unmarshal(spec, &d); err != nil {
		return nil, fmt.Errorf("decode destination: %w", err)
	}
	d.Circuit = store.CircuitState{}
	if circuit != "" {
		if err := json.Unmarshal([]byte(circuit), &d.Circuit); err != nil {
			return nil, fmt.Errorf("decode circuit of destination %s: %w", d.Name, err)
		}
	}
	d.Paused, d.PausedAt, d.PauseReason = paused, fromMicros(pausedAt), reason
	d.ManagedBy = owner
	d.Project = store.ProjectOf(d.Name)
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &d, nil
}

func scanConnection(sc Row) (*store.Connection, error) {
	var c store.Connection
	var created, updated int64
	var retry string
	if err := sc.Scan(&c.ID, &c.Source, &c.Destination, &c.Filter, &c.Transform, &c.ManagedBy, &created, &updated, &c.Project, &retry); err != nil {
		return nil, err
	}
	if retry != "" {
		if err := json.Unmarshal([]byte(retry), &c.Retry); err != nil {
			return nil, fmt.Errorf("decode retry rules of connection %s: %w", c.ID, err)
		}
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &c, nil
}

func scanTask(sc Row) (*store.Task, error) {
	var t store.Task
	var created, updated, ttl, expires, poll, since, deadline int64
	var args, result, rpcErr []byte
	var w store.TaskWait
	if err := sc.Scan(&t.ID, &t.Owner, &t.SessionID, &t.Protocol, &t.Tool, &args, &t.Status, &t.StatusMessage,
		&created, &updated, &ttl, &expires, &poll, &result, &rpcErr,
		&w.Source, &w.Type, &w.Filter, &since, &deadline, &t.EventID, &t.Project); err != nil {
		return nil, err
	}
	t.Arguments, t.Result, t.Error = args, result, rpcErr
	t.CreatedAt, t.UpdatedAt, t.ExpiresAt = fromMicros(created), fromMicros(updated), fromMicros(expires)
	t.TTL, t.PollInterval = time.Duration(ttl)*time.Microsecond, time.Duration(poll)*time.Microsecond
	if w.Source != "" {
		w.Since, w.Deadline = fromMicros(since), fromMicros(deadline)
		t.Wait = &w
	}
	return &t, nil
}

// collect scans every row of a query with scan.
func collect[T any](rows Rows, err error, scan func(Row) (*T, error)) ([]*T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
