package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// CatalogSync implements [store.Catalog].
func (s *Store) CatalogSync(ctx context.Context, p *store.CatalogSyncParams) (*store.CatalogSyncResult, error) {
	now := micros(s.now())
	var res *store.CatalogSyncResult
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		if res, err = catalogSync(ctx, tx, p, now); err != nil {
			return err
		}
		if res.Changed() {
			tx.Notify(catalogChanged)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sync catalog with the config file: %w", err)
	}
	return res, nil
}

// sourceSpec encodes what the spec column of a source holds: the source
// without the columns stored beside it (owner, times), so that the spec
// of an unchanged source compares equal.
func sourceSpec(s *store.Source) ([]byte, error) {
	c := *s
	c.ManagedBy, c.CreatedAt, c.UpdatedAt = "", time.Time{}, time.Time{}
	c.Project = "" // a column beside the spec, from the name
	return json.Marshal(&c)
}

// destinationSpec encodes what the spec column of a destination holds:
// the destination without the columns stored beside it (paused state,
// owner, times).
func destinationSpec(d *store.Destination) ([]byte, error) {
	c := *d
	c.Paused, c.PausedAt, c.PauseReason = false, time.Time{}, ""
	c.Circuit = store.CircuitState{}
	c.ManagedBy, c.CreatedAt, c.UpdatedAt = "", time.Time{}, time.Time{}
	c.Project = ""
	return json.Marshal(&c)
}

// entry is a stored catalog entry as the sync compares it.
type entry struct {
	spec  string // the spec, or source|destination|filter|transform|retry of a connection
	owner string
	// ends are a connection's source and destination.
	src, dst string
}

// catalogSync does [Store.CatalogSync] inside tx, at now (Unix
// microseconds).
func catalogSync(ctx context.Context, tx Tx, p *store.CatalogSyncParams, now int64) (*store.CatalogSyncResult, error) {
	res := &store.CatalogSyncResult{}
	sources, err := load(ctx, tx, `SELECT name, spec, managed_by, '', '' FROM sources`)
	if err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	dests, err := load(ctx, tx, `SELECT name, spec, managed_by, '', '' FROM destinations`)
	if err != nil {
		return nil, fmt.Errorf("read destinations: %w", err)
	}
	conns, err := load(ctx, tx, `SELECT id, source || '|' || destination || '|' || filter || '|' || transform || '|' || retry, managed_by, source, destination FROM connections`)
	if err != nil {
		return nil, fmt.Errorf("read connections: %w", err)
	}

	keepSources := make(map[string]bool, len(p.Sources))
	for _, s := range p.Sources {
		keepSources[s.Name] = true
		spec, err := sourceSpec(s)
		if err != nil {
			return nil, fmt.Errorf("encode source %s: %w", s.Name, err)
		}
		if err := write(ctx, tx, sources, s.Name, string(spec), &res.Written.Sources, &res.Adopted.Sources,
			`INSERT INTO sources (name, spec, managed_by, created_at, updated_at, project) VALUES (?, ?, 'config', ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, managed_by = 'config', updated_at = excluded.updated_at`,
			s.Name, spec, now, now, store.ProjectOf(s.Name)); err != nil {
			return nil, fmt.Errorf("write source %s: %w", s.Name, err)
		}
	}
	keepDests := make(map[string]bool, len(p.Destinations))
	for _, d := range p.Destinations {
		keepDests[d.Name] = true
		spec, err := destinationSpec(d)
		if err != nil {
			return nil, fmt.Errorf("encode destination %s: %w", d.Name, err)
		}
		if err := write(ctx, tx, dests, d.Name, string(spec), &res.Written.Destinations, &res.Adopted.Destinations,
			`INSERT INTO destinations (name, spec, managed_by, created_at, updated_at, project) VALUES (?, ?, 'config', ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, managed_by = 'config', updated_at = excluded.updated_at`,
			d.Name, spec, now, now, store.ProjectOf(d.Name)); err != nil {
			return nil, fmt.Errorf("write destination %s: %w", d.Name, err)
		}
	}

	// Remove what the file no longer declares, with the connections that
	// would otherwise name a missing end.
	goneSources := removed(sources, keepSources)
	goneDests := removed(dests, keepDests)
	for _, name := range goneSources {
		if _, err := tx.Exec(ctx, `DELETE FROM sources WHERE name = ?`, name); err != nil {
			return nil, fmt.Errorf("delete source %s: %w", name, err)
		}
	}
	for _, name := range goneDests {
		if _, err := tx.Exec(ctx, `DELETE FROM destinations WHERE name = ?`, name); err != nil {
			return nil, fmt.Errorf("delete destination %s: %w", name, err)
		}
		n, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'dead', last_error = ?, updated_at = ? WHERE destination = ? AND status = 'pending'`,
			p.RemovedReason, now, name)
		if err != nil {
			return nil, fmt.Errorf("end the pending deliveries of destination %s: %w", name, err)
		}
		res.DeadDeliveries += int(n)
	}
	res.Removed.Sources, res.Removed.Destinations = goneSources, goneDests

	keepConns := make(map[string]bool, len(p.Connections))
	for _, c := range p.Connections {
		id := c.ID
		if id == "" {
			id = store.ConnectionID(c.Source, c.Destination)
		}
		keepConns[id] = true
		if !exists(sources, keepSources, c.Source) || !exists(dests, keepDests, c.Destination) {
			return nil, fmt.Errorf("connection %s: source %q or destination %q: %w", id, c.Source, c.Destination, store.ErrNotFound)
		}
		retry, err := encodeJSON(c.Retry, len(c.Retry) == 0)
		if err != nil {
			return nil, fmt.Errorf("encode retry rules of connection %s: %w", id, err)
		}
		if err := write(ctx, tx, conns, id, c.Source+"|"+c.Destination+"|"+c.Filter+"|"+c.Transform+"|"+retry, &res.Written.Connections, &res.Adopted.Connections,
			`INSERT INTO connections (id, source, destination, filter, transform, managed_by, created_at, updated_at, project, retry) VALUES (?, ?, ?, ?, ?, 'config', ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET source = excluded.source, destination = excluded.destination, filter = excluded.filter,
			transform = excluded.transform, retry = excluded.retry, managed_by = 'config', updated_at = excluded.updated_at, project = excluded.project`,
			id, c.Source, c.Destination, c.Filter, c.Transform, now, now, store.ProjectOf(c.Source), retry); err != nil {
			return nil, fmt.Errorf("write connection %s: %w", id, err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(conns)) {
		c := conns[id]
		endGone := slices.Contains(goneSources, c.src) || slices.Contains(goneDests, c.dst)
		if keepConns[id] || (c.owner != store.ManagedByConfig && !endGone) {
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM connections WHERE id = ?`, id); err != nil {
			return nil, fmt.Errorf("delete connection %s: %w", id, err)
		}
		res.Removed.Connections = append(res.Removed.Connections, id)
	}
	return res, nil
}

// load reads name, spec, owner and a connection's ends from query.
func load(ctx context.Context, tx Tx, query string) (map[string]entry, error) {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := make(map[string]entry)
	for rows.Next() {
		var name string
		var spec []byte
		var e entry
		if err := rows.Scan(&name, &spec, &e.owner, &e.src, &e.dst); err != nil {
			return nil, err
		}
		e.spec = string(spec)
		m[name] = e
	}
	return m, rows.Err()
}

// write runs upsert unless cur already holds key, config-owned, with the
// same spec, and records what it wrote and whom it took the entry from.
func write(ctx context.Context, tx Tx, cur map[string]entry, key, spec string, written, adopted *[]string, upsert string, args ...any) error {
	old, ok := cur[key]
	if ok && old.owner == store.ManagedByConfig && old.spec == spec {
		return nil
	}
	if _, err := tx.Exec(ctx, upsert, args...); err != nil {
		return err
	}
	*written = append(*written, key)
	if ok && old.owner != store.ManagedByConfig {
		*adopted = append(*adopted, key)
	}
	return nil
}

// removed returns the config-owned names of cur that keep does not hold,
// sorted.
func removed(cur map[string]entry, keep map[string]bool) []string {
	var out []string
	for name, e := range cur {
		if e.owner == store.ManagedByConfig && !keep[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// exists reports whether name is in the catalog once the sync is done:
// declared in the file, or stored and not removed by it.
func exists(cur map[string]entry, keep map[string]bool, name string) bool {
	if keep[name] {
		return true
	}
	e, ok := cur[name]
	return ok && e.owner != store.ManagedByConfig
}
