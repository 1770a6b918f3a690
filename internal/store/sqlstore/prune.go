package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Prune implements [store.Pruner]. It runs on the driver's WriteAside path.
// The statements run in this order: each table's rows go only after the
// rows that refer to them, so one call can cascade and no call leaves a
// reference dangling. Where the engine locks rows, instances pruning at the
// same time split the work instead of waiting on each other.
func (s *Store) Prune(ctx context.Context, p *store.PruneParams) (*store.PruneResult, error) {
	limit := cmp.Or(max(p.Limit, 0), 1000)
	before, now := micros(p.Before), micros(s.orNow(p.Now))
	sk := s.d.SkipLocked
	var res store.PruneResult
	err := s.aside(ctx, func(ctx context.Context, tx Tx) error {
		res = store.PruneResult{}
		for _, step := range []struct {
			q   string
			arg int64
			n   *int
		}{
			{`DELETE FROM attempts WHERE id IN (SELECT a.id FROM attempts a WHERE a.started_at < ?
				AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id AND d.status = 'pending') LIMIT ?` + sk("a") + `)`,
				before, &res.Attempts},
			{`DELETE FROM deliveries WHERE id IN (SELECT d.id FROM deliveries d WHERE d.status <> 'pending' AND d.updated_at < ?
				AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_id = d.id) LIMIT ?` + sk("d") + `)`,
				before, &res.Deliveries},
			{`DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.received_at < ?
				AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) LIMIT ?` + sk("e") + `)`,
				before, &res.Events},
			{`DELETE FROM requests WHERE id IN (SELECT r.id FROM requests r WHERE r.received_at < ?
				AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = r.event_id AND e.request_id = r.id) LIMIT ?` + sk("r") + `)`,
				before, &res.Requests},
			{`DELETE FROM dedup WHERE (source, key) IN (SELECT source, key FROM dedup WHERE expires_at <= ? LIMIT ?` + sk("") + `)`,
				now, &res.Dedup},
		} {
			n, err := tx.Exec(ctx, step.q, step.arg, limit)
			if err != nil {
				return err
			}
			*step.n = int(n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune before %s: %w", p.Before.Format(time.RFC3339), err)
	}
	res.Done = res.Attempts < limit && res.Deliveries < limit && res.Events < limit && res.Requests < limit && res.Dedup < limit
	return &res, nil
}
