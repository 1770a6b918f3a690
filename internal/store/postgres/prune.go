package postgres

import (
	"cmp"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Prune statements, in the order they run: each table's rows go only
// after the rows that refer to them, so one call can cascade and no call
// leaves a reference dangling. SKIP LOCKED: instances pruning at the same
// time split the work instead of waiting on each other.
const (
	sqlPruneAttempts = `DELETE FROM attempts WHERE id IN (SELECT a.id FROM attempts a WHERE a.started_at < $1
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id AND d.status = 'pending') LIMIT $2 FOR UPDATE OF a SKIP LOCKED)`
	sqlPruneDeliveries = `DELETE FROM deliveries WHERE id IN (SELECT d.id FROM deliveries d WHERE d.status <> 'pending' AND d.updated_at < $1
		AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_id = d.id) LIMIT $2 FOR UPDATE OF d SKIP LOCKED)`
	sqlPruneEvents = `DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.received_at < $1
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) LIMIT $2 FOR UPDATE OF e SKIP LOCKED)`
	sqlPruneRequests = `DELETE FROM requests WHERE id IN (SELECT r.id FROM requests r WHERE r.received_at < $1
		AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = r.event_id AND e.request_id = r.id) LIMIT $2 FOR UPDATE OF r SKIP LOCKED)`
	sqlPruneDedup = `DELETE FROM dedup WHERE (source, key) IN (SELECT source, key FROM dedup WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`
)

// Prune implements [store.Store]. It runs in a transaction of its own on
// a pool connection, not through the writers, so ingestion never queues
// behind it.
func (s *Store) Prune(ctx context.Context, p *store.PruneParams) (*store.PruneResult, error) {
	select {
	case <-s.closed:
		return nil, store.ErrClosed
	default:
	}
	limit := cmp.Or(max(p.Limit, 0), 1000)
	before, now := micros(p.Before), micros(orNow(p.Now))
	var res store.PruneResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
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
			tag, err := tx.Exec(ctx, step.q, step.arg, limit)
			if err != nil {
				return err
			}
			*step.n = int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune before %s: %w", p.Before.Format("2006-01-02T15:04:05Z07:00"), interpretError(err))
	}
	res.Done = res.Attempts < limit && res.Deliveries < limit && res.Events < limit && res.Requests < limit && res.Dedup < limit
	return &res, nil
}
