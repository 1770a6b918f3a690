// Package sqlrow holds what the SQL drivers of the store share about rows:
// times stored as Unix microseconds, and scanning the rows whose columns
// are the same in every driver (events, deliveries, tasks). Each driver
// maps the scan errors onto the store's sentinels itself.
package sqlrow

import (
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Scanner is a row: *sql.Row, *sql.Rows, pgx.Row and pgx.Rows all are.
type Scanner interface {
	Scan(dest ...any) error
}

// Micros stores t as Unix microseconds; the zero time is 0.
func Micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// FromMicros converts a stored time back; 0 is the zero time.
func FromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// EventCols are the columns [Event] scans, in order.
const EventCols = `id, source, request_id, received_at, type, dedup_key, status, deliveries`

// Event scans an events row selected with [EventCols].
func Event(sc Scanner) (*store.Event, error) {
	var e store.Event
	var at int64
	if err := sc.Scan(&e.ID, &e.Source, &e.RequestID, &at, &e.Type, &e.DedupKey, &e.Status, &e.Deliveries); err != nil {
		return nil, err
	}
	e.ReceivedAt = FromMicros(at)
	return &e, nil
}

// Delivery scans a deliveries row (id, event_id, request_id, source,
// destination, connection_id, status, attempts, next_attempt_at,
// created_at, updated_at, last_error, last_status).
func Delivery(sc Scanner) (*store.Delivery, error) {
	var d store.Delivery
	var next, created, updated int64
	if err := sc.Scan(&d.ID, &d.EventID, &d.RequestID, &d.Source, &d.Destination, &d.ConnectionID, &d.Status, &d.Attempts,
		&next, &created, &updated, &d.LastError, &d.LastStatus); err != nil {
		return nil, err
	}
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = FromMicros(next), FromMicros(created), FromMicros(updated)
	return &d, nil
}

// TaskCols are the columns [Task] scans, in order.
const TaskCols = `id, owner, session_id, protocol, tool, arguments, status, status_message, created_at, updated_at,
	ttl, expires_at, poll_interval, result, error, wait_source, wait_type, wait_filter, wait_since, wait_deadline, event_id`

// Task scans a tasks row selected with [TaskCols].
func Task(sc Scanner) (*store.Task, error) {
	var t store.Task
	var created, updated, ttl, expires, poll, since, deadline int64
	var args, result, rpcErr []byte
	var w store.TaskWait
	if err := sc.Scan(&t.ID, &t.Owner, &t.SessionID, &t.Protocol, &t.Tool, &args, &t.Status, &t.StatusMessage,
		&created, &updated, &ttl, &expires, &poll, &result, &rpcErr,
		&w.Source, &w.Type, &w.Filter, &since, &deadline, &t.EventID); err != nil {
		return nil, err
	}
	t.Arguments, t.Result, t.Error = args, result, rpcErr
	t.CreatedAt, t.UpdatedAt, t.ExpiresAt = FromMicros(created), FromMicros(updated), FromMicros(expires)
	t.TTL, t.PollInterval = time.Duration(ttl)*time.Microsecond, time.Duration(poll)*time.Microsecond
	if w.Source != "" {
		w.Since, w.Deadline = FromMicros(since), FromMicros(deadline)
		t.Wait = &w
	}
	return &t, nil
}
