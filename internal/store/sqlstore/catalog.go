package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

var catalogChanged = store.Notification{Kind: store.NotifyCatalogChanged}

// upsertSpec writes a source or destination (table) as its spec, owned by
// owner (empty means [store.ManagedByAPI]), keeping created_at (and a
// destination's paused state) on update.
func (s *Store) upsertSpec(ctx context.Context, table, name string, spec []byte, owner string) error {
	now := micros(s.now())
	return s.write(ctx, func(ctx context.Context, tx Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (name, spec, managed_by, created_at, updated_at, project) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, managed_by = excluded.managed_by, updated_at = excluded.updated_at`,
			name, spec, store.ManagedByOrAPI(owner), now, now, store.ProjectOf(name)); err != nil {
			return err
		}
		tx.Notify(catalogChanged)
		return nil
	})
}

// deleteWithConnections deletes the row of table whose key is name and
// the connections whose column col names it (none when col is empty).
func (s *Store) deleteWithConnections(ctx context.Context, table, key, col, name string) error {
	return s.write(ctx, func(ctx context.Context, tx Tx) error {
		n, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE `+key+` = ?`, name)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		if col != "" {
			if _, err := tx.Exec(ctx, `DELETE FROM connections WHERE `+col+` = ?`, name); err != nil {
				return err
			}
		}
		tx.Notify(catalogChanged)
		return nil
	})
}

// getOne reads one row with scan and names what in an error.
func getOne[T any](ctx context.Context, q Querier, scan func(Row) (*T, error), what, sql string, args ...any) (*T, error) {
	v, err := scan(q.QueryRow(ctx, sql, args...))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", what, err)
	}
	return v, nil
}

// listAll reads every row with scan and names what in an error.
func listAll[T any](ctx context.Context, q Querier, scan func(Row) (*T, error), what, sql string) ([]*T, error) {
	rows, err := q.Query(ctx, sql)
	out, err := collect(rows, err, scan)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

// SourceUpsert implements [store.Catalog].
func (s *Store) SourceUpsert(ctx context.Context, src *store.Source) error {
	spec, err := sourceSpec(src)
	if err == nil {
		err = s.upsertSpec(ctx, "sources", src.Name, spec, src.ManagedBy)
	}
	if err != nil {
		return fmt.Errorf("upsert source %s: %w", src.Name, err)
	}
	return nil
}

// SourceGet implements [store.Catalog].
func (s *Store) SourceGet(ctx context.Context, name string) (*store.Source, error) {
	return getOne(ctx, s.read, scanSource, "source "+name, `SELECT `+sourceCols+` FROM sources WHERE name = ?`, name)
}

// SourceList implements [store.Catalog].
func (s *Store) SourceList(ctx context.Context) ([]*store.Source, error) {
	return listAll(ctx, s.read, scanSource, "sources", `SELECT `+sourceCols+` FROM sources ORDER BY name`)
}

// SourceDelete implements [store.Catalog].
func (s *Store) SourceDelete(ctx context.Context, name string) error {
	if err := s.deleteWithConnections(ctx, "sources", "name", "source", name); err != nil {
		return fmt.Errorf("delete source %s: %w", name, err)
	}
	return nil
}

// DestinationUpsert implements [store.Catalog].
func (s *Store) DestinationUpsert(ctx context.Context, d *store.Destination) error {
	spec, err := destinationSpec(d)
	if err == nil {
		err = s.upsertSpec(ctx, "destinations", d.Name, spec, d.ManagedBy)
	}
	if err != nil {
		return fmt.Errorf("upsert destination %s: %w", d.Name, err)
	}
	return nil
}

// DestinationGet implements [store.Catalog].
func (s *Store) DestinationGet(ctx context.Context, name string) (*store.Destination, error) {
	return getOne(ctx, s.read, scanDestination, "destination "+name, `SELECT `+destCols+` FROM destinations WHERE name = ?`, name)
}

// DestinationList implements [store.Catalog].
func (s *Store) DestinationList(ctx context.Context) ([]*store.Destination, error) {
	return listAll(ctx, s.read, scanDestination, "destinations", `SELECT `+destCols+` FROM destinations ORDER BY name`)
}

// DestinationDelete implements [store.Catalog].
func (s *Store) DestinationDelete(ctx context.Context, name string) error {
	if err := s.deleteWithConnections(ctx, "destinations", "name", "destination", name); err != nil {
		return fmt.Errorf("delete destination %s: %w", name, err)
	}
	return nil
}

// DestinationSetPaused implements [store.Catalog]. Resuming wakes the
// destination's dispatcher.
func (s *Store) DestinationSetPaused(ctx context.Context, name string, paused bool, reason string) error {
	now := micros(s.now())
	var pausedAt int64
	if paused {
		pausedAt = now
	} else {
		reason = ""
	}
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		n, err := tx.Exec(ctx, `UPDATE destinations SET paused = ?, paused_at = ?, pause_reason = ?, updated_at = ? WHERE name = ?`,
			paused, pausedAt, reason, now, name)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		tx.Notify(catalogChanged)
		if !paused {
			tx.Notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: name})
		}
		return nil
	})
	if err != nil {
		verb := "resume"
		if paused {
			verb = "pause"
		}
		return fmt.Errorf("%s destination %s: %w", verb, name, err)
	}
	return nil
}

// circuitText is the stored form of a circuit state: empty when closed.
func circuitText(c store.CircuitState) (string, error) {
	if c == (store.CircuitState{}) {
		return "", nil
	}
	c.Since, c.ProbeAt = c.Since.UTC().Truncate(time.Microsecond), c.ProbeAt.UTC().Truncate(time.Microsecond)
	b, err := json.Marshal(&c)
	return string(b), err
}

// DestinationSetCircuit implements [store.Catalog].
func (s *Store) DestinationSetCircuit(ctx context.Context, name string, from, to store.CircuitState) (bool, error) {
	old, err := circuitText(from)
	if err != nil {
		return false, fmt.Errorf("encode circuit of destination %s: %w", name, err)
	}
	next, err := circuitText(to)
	if err != nil {
		return false, fmt.Errorf("encode circuit of destination %s: %w", name, err)
	}
	moved := false
	err = s.write(ctx, func(ctx context.Context, tx Tx) error {
		n, err := tx.Exec(ctx, `UPDATE destinations SET circuit = ?, updated_at = ? WHERE name = ? AND circuit = ?`,
			next, micros(s.now()), name, old)
		if err != nil {
			return err
		}
		if moved = n == 1; !moved {
			var one int
			if err := tx.QueryRow(ctx, `SELECT 1 FROM destinations WHERE name = ?`, name).Scan(&one); err != nil {
				return err
			}
			return nil
		}
		tx.Notify(catalogChanged)
		if to.State == store.CircuitClosed {
			tx.Notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: name})
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("set circuit of destination %s to %q: %w", name, to.State, err)
	}
	return moved, nil
}

// ConnectionUpsert implements [store.Catalog]. Both ends are checked in
// the same transaction (and, where the engine locks rows, kept from being
// deleted until it commits).
func (s *Store) ConnectionUpsert(ctx context.Context, c *store.Connection) error {
	if c.ID == "" {
		c.ID = store.ConnectionID(c.Source, c.Destination)
	}
	if p := store.ProjectOf(c.Source); p != store.ProjectOf(c.Destination) || p != store.ProjectOf(c.ID) {
		return fmt.Errorf("upsert connection %s: source %q, destination %q and id are not in one project", c.ID, c.Source, c.Destination)
	}
	c.Project = store.ProjectOf(c.Source)
	retry, err := encodeJSON(c.Retry, len(c.Retry) == 0)
	if err != nil {
		return fmt.Errorf("upsert connection %s: encode retry rules: %w", c.ID, err)
	}
	now := micros(s.now())
	err = s.write(ctx, func(ctx context.Context, tx Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM (SELECT 1 FROM sources WHERE name = ?`+s.d.ForShare+`) a) +
			(SELECT count(*) FROM (SELECT 1 FROM destinations WHERE name = ?`+s.d.ForShare+`) b)`, c.Source, c.Destination).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("source %q or destination %q: %w", c.Source, c.Destination, store.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO connections (`+connectionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET source = excluded.source, destination = excluded.destination, filter = excluded.filter,
			transform = excluded.transform, retry = excluded.retry, managed_by = excluded.managed_by, updated_at = excluded.updated_at, project = excluded.project`,
			c.ID, c.Source, c.Destination, c.Filter, c.Transform, store.ManagedByOrAPI(c.ManagedBy), now, now, store.ProjectOf(c.Source), retry); err != nil {
			return err
		}
		tx.Notify(catalogChanged)
		return nil
	})
	if err != nil {
		return fmt.Errorf("upsert connection %s: %w", c.ID, err)
	}
	return nil
}

// ConnectionGet implements [store.Catalog].
func (s *Store) ConnectionGet(ctx context.Context, id string) (*store.Connection, error) {
	return getOne(ctx, s.read, scanConnection, "connection "+id, `SELECT `+connectionCols+` FROM connections WHERE id = ?`, id)
}

// ConnectionList implements [store.Catalog].
func (s *Store) ConnectionList(ctx context.Context) ([]*store.Connection, error) {
	return listAll(ctx, s.read, scanConnection, "connections", `SELECT `+connectionCols+` FROM connections ORDER BY id`)
}

// ConnectionDelete implements [store.Catalog].
func (s *Store) ConnectionDelete(ctx context.Context, id string) error {
	if err := s.deleteWithConnections(ctx, "connections", "id", "", id); err != nil {
		return fmt.Errorf("delete connection %s: %w", id, err)
	}
	return nil
}
