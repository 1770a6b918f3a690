package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"strings"
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
	// An audit horizon of zero keeps every entry: no entry is older than 0.
	auditBefore := micros(p.AuditBefore)
	sk := s.d.SkipLocked
	// Which projects' history goes: one, or every one but p.Except. Dedup
	// keys are not history (their window decides) and go with a prune of
	// every project only.
	var scopeArgs []any
	scope := func(string) string { return "" }
	switch {
	case p.Project != "":
		scopeArgs = []any{p.Project}
		scope = func(alias string) string { return " AND " + alias + ".project = ?" }
	case len(p.Except) > 0:
		for _, e := range p.Except {
			scopeArgs = append(scopeArgs, e)
		}
		scope = func(alias string) string {
			return " AND " + alias + ".project NOT IN (?" + strings.Repeat(", ?", len(p.Except)-1) + ")"
		}
	}
	var res store.PruneResult
	err := s.aside(ctx, func(ctx context.Context, tx Tx) error {
		res = store.PruneResult{}
		// hist are the arguments of a history step: its horizon, the
		// project scope, the limit.
		hist := append(append([]any{before}, scopeArgs...), limit)
		// pick selects the ids of table (alias a) received before the
		// horizon in the scope that also meet cond; received are its
		// arguments and the limit. Where the engine indexes only the late
		// rows by receipt time ([Dialect.LateRows]) it reads the id range
		// below the horizon's bound (the rows stamped at most LateAfter
		// after their receipt, oldest first) and the late rows above it.
		pick := func(table, a, prefix, cond string) string {
			sel := `SELECT ` + a + `.id FROM ` + table + ` ` + a + ` WHERE ` + a + `.received_at < ?` + scope(a) + cond
			if s.d.LateRows == nil {
				return sel
			}
			return sel + ` AND ` + a + `.id < ?
				UNION ALL SELECT ` + a + `.id FROM ` + s.d.LateRows(table, a) + ` WHERE ` + a + `.received_at < ?` + scope(a) + cond + `
				AND ` + a + `.late = 1 AND ` + a + `.id >= ?`
		}
		received := func(prefix string) []any {
			if s.d.LateRows == nil {
				return hist
			}
			bound := idBefore(prefix, p.Before)
			arm := append(append([]any{before}, scopeArgs...), bound)
			return append(append(arm, arm...), limit)
		}
		steps := []struct {
			q    string
			args []any
			n    *int
		}{
			{`DELETE FROM attempts WHERE id IN (SELECT a.id FROM attempts a WHERE a.started_at < ?` + scope("a") + `
				AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id AND d.status = 'pending') LIMIT ?` + sk("a") + `)`,
				hist, &res.Attempts},
			{`DELETE FROM deliveries WHERE id IN (SELECT d.id FROM deliveries d WHERE d.status <> 'pending' AND d.updated_at < ?` + scope("d") + `
				AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_id = d.id) LIMIT ?` + sk("d") + `)`,
				hist, &res.Deliveries},
			{`DELETE FROM events WHERE id IN (` + pick("events", "e", "evt", `
				AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)`) + ` LIMIT ?` + sk("e") + `)`,
				received("evt"), &res.Events},
			{`DELETE FROM requests WHERE id IN (` + pick("requests", "r", "req", `
				AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = r.event_id AND e.request_id = r.id)`) + ` LIMIT ?` + sk("r") + `)`,
				received("req"), &res.Requests},
			{`DELETE FROM dedup WHERE (source, key) IN (SELECT source, key FROM dedup WHERE expires_at <= ? LIMIT ?` + sk("") + `)`,
				[]any{now, limit}, &res.Dedup},
			{`DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? LIMIT ?` + sk("") + `)`,
				[]any{auditBefore, limit}, &res.Audit},
		}
		if p.Project != "" {
			// Dedup keys and the audit log go with a prune of every project.
			steps = steps[:len(steps)-2]
		}
		for _, step := range steps {
			n, err := tx.Exec(ctx, step.q, step.args...)
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
	if res.Requests > 0 {
		s.recent.clear() // a pruned request is gone for its deliveries too
	}
	res.Done = res.Attempts < limit && res.Deliveries < limit && res.Events < limit && res.Requests < limit && res.Dedup < limit && res.Audit < limit
	return &res, nil
}
