package sqlite

import (
	"cmp"
	"context"
	"fmt"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Prune statements, in the order they run: each table's rows go only
// after the rows that refer to them, so one call can cascade and no call
// leaves a reference dangling.
const (
	sqlPruneAttempts = `DELETE FROM attempts WHERE id IN (SELECT a.id FROM attempts a WHERE a.started_at < ?
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id AND d.status = 'pending') LIMIT ?)`
	sqlPruneDeliveries = `DELETE FROM deliveries WHERE id IN (SELECT d.id FROM deliveries d WHERE d.status <> 'pending' AND d.updated_at < ?
		AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_id = d.id) LIMIT ?)`
	sqlPruneEvents = `DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.received_at < ?
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) LIMIT ?)`
	sqlPruneRequests = `DELETE FROM requests WHERE id IN (SELECT r.id FROM requests r WHERE r.received_at < ?
		AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = r.event_id AND e.request_id = r.id) LIMIT ?)`
	sqlPruneDedup = `DELETE FROM dedup WHERE (source, key) IN (SELECT source, key FROM dedup WHERE expires_at <= ? LIMIT ?)`
)

// Prune implements [store.Store]. It is one write through the writer, so
// keep p.Limit small enough that ingestion does not wait behind it.
func (s *Store) Prune(ctx context.Context, p *store.PruneParams) (*store.PruneResult, error) {
	limit := cmp.Or(max(p.Limit, 0), 1000)
	before, now := micros(p.Before), micros(orNow(p.Now))
	var res store.PruneResult
	err := s.write(ctx, func(w *writer) error {
		res = store.PruneResult{}
		for _, step := range []struct {
			q   string
			arg int64
			n   *int
		}{
			{sqlPruneAttempts, before, &res.Attempts},
			{sqlPruneDeliveries, before, &res.Deliveries},
			{sqlPruneEvents, before, &res.Events},
			{sqlPruneRequests, before, &res.Requests},
			{sqlPruneDedup, now, &res.Dedup},
		} {
			r, err := w.exec(step.q, step.arg, limit)
			if err != nil {
				return err
			}
			n, _ := r.RowsAffected()
			*step.n = int(n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune before %s: %w", p.Before.Format("2006-01-02T15:04:05Z07:00"), err)
	}
	res.Done = res.Attempts < limit && res.Deliveries < limit && res.Events < limit && res.Requests < limit && res.Dedup < limit
	return &res, nil
}
