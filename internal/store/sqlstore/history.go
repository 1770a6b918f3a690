package sqlstore

import (
	"context"
	"fmt"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Point reads by primary key.
const (
	sqlGetRequest  = `SELECT ` + requestBodyCols + ` FROM requests WHERE id = ?`
	sqlGetEvent    = `SELECT ` + eventCols + ` FROM events WHERE id = ?`
	sqlGetDelivery = `SELECT ` + DeliveryCols + ` FROM deliveries WHERE id = ?`
)

// HotReads returns the point reads the dispatcher runs for every delivery,
// for a driver that prepares statements to prepare them up front.
func HotReads() []string { return []string{sqlGetRequest, sqlGetEvent, sqlGetDelivery} }

// RequestGetByID implements [store.History].
func (s *Store) RequestGetByID(ctx context.Context, id string) (*store.Request, error) {
	if r, ok := s.recent.get(id); ok {
		return r, nil
	}
	r, err := scanRequestBody(s.read.QueryRow(ctx, sqlGetRequest, id))
	if err != nil {
		return nil, fmt.Errorf("get request %s: %w", id, err)
	}
	return r, nil
}

// RequestList implements [store.History].
func (s *Store) RequestList(ctx context.Context, p *store.RequestListParams) ([]*store.Request, error) {
	if p == nil {
		p = &store.RequestListParams{}
	}
	w := &where{}
	w.eq("project", p.Project)
	w.eq("source", p.Source)
	w.eq("status", p.Status)
	w.eq("event_id", p.EventID)
	w.eventType("requests", p.Type)
	s.bodyQuery(w, p.Query, true)
	q, args := s.received(requestCols, "requests", "req", w, p.Since, p.Until, p.Cursor, store.PageLimit(p.Limit))
	rows, err := s.read.Query(ctx, q, args...)
	out, err := collect(rows, err, scanRequestHead)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return out, nil
}

// EventGetByID implements [store.History].
func (s *Store) EventGetByID(ctx context.Context, id string) (*store.Event, error) {
	e, err := scanEvent(s.read.QueryRow(ctx, sqlGetEvent, id))
	if err != nil {
		return nil, fmt.Errorf("get event %s: %w", id, err)
	}
	return e, nil
}

// EventList implements [store.History].
func (s *Store) EventList(ctx context.Context, p *store.EventListParams) ([]*store.Event, error) {
	if p == nil {
		p = &store.EventListParams{}
	}
	w := eventFilter(p)
	s.bodyQuery(w, p.Query, false)
	q, args := s.received(eventCols, "events", "evt", w, p.Since, p.Until, p.Cursor, store.PageLimit(p.Limit))
	rows, err := s.read.Query(ctx, q, args...)
	out, err := collect(rows, err, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// eventFilter builds the conditions of p's filters on the events table
// itself (all but the text query, the receipt time and the page): the
// event list's and the event search's.
func eventFilter(p *store.EventListParams) *where {
	w := &where{}
	w.eq("project", p.Project)
	w.eq("source", p.Source)
	w.eq("status", p.Status)
	w.eq("type", p.Type)
	return w
}

// DeliveryGetByID implements [store.History].
func (s *Store) DeliveryGetByID(ctx context.Context, id string) (*store.Delivery, error) {
	d, err := scanDelivery(s.read.QueryRow(ctx, sqlGetDelivery, id))
	if err != nil {
		return nil, fmt.Errorf("get delivery %s: %w", id, err)
	}
	return d, nil
}

// DeliveryList implements [store.History].
func (s *Store) DeliveryList(ctx context.Context, p *store.DeliveryListParams) ([]*store.Delivery, error) {
	if p == nil {
		p = &store.DeliveryListParams{}
	}
	w := s.deliveryWhere(deliveryFilter{project: p.Project, source: p.Source, destination: p.Destination, status: p.Status, typ: p.Type,
		eventID: p.EventID, query: p.Query, since: p.Since, until: p.Until})
	tail := w.page(p.Cursor, p.Limit)
	rows, err := s.read.Query(ctx, `SELECT `+DeliveryCols+` FROM deliveries`+tail, w.args...)
	out, err := collect(rows, err, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// AttemptList implements [store.History].
func (s *Store) AttemptList(ctx context.Context, deliveryID string) ([]*store.Attempt, error) {
	rows, err := s.read.Query(ctx, `SELECT `+attemptCols+` FROM attempts WHERE delivery_id = ? ORDER BY number, id`, deliveryID)
	out, err := collect(rows, err, scanAttempt)
	if err != nil {
		return nil, fmt.Errorf("list attempts of %s: %w", deliveryID, err)
	}
	return out, nil
}
