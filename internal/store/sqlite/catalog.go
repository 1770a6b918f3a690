package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

var catalogChanged = store.Notification{Kind: store.NotifyCatalogChanged}

// SourceUpsert implements [store.Store].
func (s *Store) SourceUpsert(ctx context.Context, src *store.Source) error {
	spec, err := json.Marshal(src)
	if err != nil {
		return fmt.Errorf("upsert source %s: %w", src.Name, err)
	}
	now := micros(time.Now())
	err = s.write(ctx, func(w *writer) error {
		if _, err := w.exec(`INSERT INTO sources (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`, src.Name, spec, now, now); err != nil {
			return err
		}
		w.notify(catalogChanged)
		return nil
	})
	if err != nil {
		return fmt.Errorf("upsert source %s: %w", src.Name, err)
	}
	return nil
}

func scanSource(sc scanner) (*store.Source, error) {
	var spec []byte
	var created, updated int64
	if err := sc.Scan(&spec, &created, &updated); err != nil {
		return nil, interpretError(err)
	}
	var src store.Source
	if err := json.Unmarshal(spec, &src); err != nil {
		return nil, fmt.Errorf("decode source: %w", err)
	}
	src.CreatedAt, src.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &src, nil
}

// SourceGet implements [store.Store].
func (s *Store) SourceGet(ctx context.Context, name string) (*store.Source, error) {
	src, err := scanSource(s.rdb.QueryRowContext(ctx, `SELECT spec, created_at, updated_at FROM sources WHERE name = ?`, name))
	if err != nil {
		return nil, fmt.Errorf("get source %s: %w", name, err)
	}
	return src, nil
}

// SourceList implements [store.Store].
func (s *Store) SourceList(ctx context.Context) ([]*store.Source, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT spec, created_at, updated_at FROM sources ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	return collect(rows, scanSource, "list sources")
}

// deleteWithConnections deletes the named row from table and the
// connections whose column col names it.
func (s *Store) deleteWithConnections(ctx context.Context, table, key, col, name string) error {
	return s.write(ctx, func(w *writer) error {
		r, err := w.exec(`DELETE FROM `+table+` WHERE `+key+` = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		if col != "" {
			if _, err := w.exec(`DELETE FROM connections WHERE `+col+` = ?`, name); err != nil {
				return err
			}
		}
		w.notify(catalogChanged)
		return nil
	})
}

// SourceDelete implements [store.Store].
func (s *Store) SourceDelete(ctx context.Context, name string) error {
	if err := s.deleteWithConnections(ctx, "sources", "name", "source", name); err != nil {
		return fmt.Errorf("delete source %s: %w", name, err)
	}
	return nil
}

// DestinationUpsert implements [store.Store].
func (s *Store) DestinationUpsert(ctx context.Context, d *store.Destination) error {
	spec, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("upsert destination %s: %w", d.Name, err)
	}
	now := micros(time.Now())
	err = s.write(ctx, func(w *writer) error {
		if _, err := w.exec(`INSERT INTO destinations (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`, d.Name, spec, now, now); err != nil {
			return err
		}
		w.notify(catalogChanged)
		return nil
	})
	if err != nil {
		return fmt.Errorf("upsert destination %s: %w", d.Name, err)
	}
	return nil
}

const destinationCols = `spec, paused, paused_at, pause_reason, created_at, updated_at`

func scanDestination(sc scanner) (*store.Destination, error) {
	var spec []byte
	var paused int
	var pausedAt, created, updated int64
	var reason string
	if err := sc.Scan(&spec, &paused, &pausedAt, &reason, &created, &updated); err != nil {
		return nil, interpretError(err)
	}
	var d store.Destination
	if err := json.Unmarshal(spec, &d); err != nil {
		return nil, fmt.Errorf("decode destination: %w", err)
	}
	d.Paused, d.PausedAt, d.PauseReason = paused != 0, fromMicros(pausedAt), reason
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &d, nil
}

// DestinationGet implements [store.Store].
func (s *Store) DestinationGet(ctx context.Context, name string) (*store.Destination, error) {
	d, err := scanDestination(s.rdb.QueryRowContext(ctx, `SELECT `+destinationCols+` FROM destinations WHERE name = ?`, name))
	if err != nil {
		return nil, fmt.Errorf("get destination %s: %w", name, err)
	}
	return d, nil
}

// DestinationList implements [store.Store].
func (s *Store) DestinationList(ctx context.Context) ([]*store.Destination, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+destinationCols+` FROM destinations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list destinations: %w", err)
	}
	return collect(rows, scanDestination, "list destinations")
}

// DestinationDelete implements [store.Store].
func (s *Store) DestinationDelete(ctx context.Context, name string) error {
	if err := s.deleteWithConnections(ctx, "destinations", "name", "destination", name); err != nil {
		return fmt.Errorf("delete destination %s: %w", name, err)
	}
	return nil
}

// DestinationSetPaused implements [store.Store].
func (s *Store) DestinationSetPaused(ctx context.Context, name string, paused bool, reason string) error {
	now := time.Now()
	err := s.write(ctx, func(w *writer) error {
		var r sql.Result
		var err error
		if paused {
			r, err = w.exec(`UPDATE destinations SET paused = 1, paused_at = ?, pause_reason = ?, updated_at = ? WHERE name = ?`,
				micros(now), reason, micros(now), name)
		} else {
			r, err = w.exec(`UPDATE destinations SET paused = 0, paused_at = 0, pause_reason = '', updated_at = ? WHERE name = ?`, micros(now), name)
		}
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		w.notify(catalogChanged)
		if !paused {
			w.notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: name})
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

// ConnectionUpsert implements [store.Store].
func (s *Store) ConnectionUpsert(ctx context.Context, c *store.Connection) error {
	if c.ID == "" {
		c.ID = store.ConnectionID(c.Source, c.Destination)
	}
	now := micros(time.Now())
	err := s.write(ctx, func(w *writer) error {
		var n int
		if err := w.queryRow(`SELECT (SELECT count(*) FROM sources WHERE name = ?) + (SELECT count(*) FROM destinations WHERE name = ?)`,
			c.Source, c.Destination).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("source %q or destination %q: %w", c.Source, c.Destination, store.ErrNotFound)
		}
		if _, err := w.exec(`INSERT INTO connections (id, source, destination, filter, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET source = excluded.source, destination = excluded.destination, filter = excluded.filter,
			updated_at = excluded.updated_at`, c.ID, c.Source, c.Destination, c.Filter, now, now); err != nil {
			return err
		}
		w.notify(catalogChanged)
		return nil
	})
	if err != nil {
		return fmt.Errorf("upsert connection %s: %w", c.ID, err)
	}
	return nil
}

const connectionCols = `id, source, destination, filter, created_at, updated_at`

func scanConnection(sc scanner) (*store.Connection, error) {
	var c store.Connection
	var created, updated int64
	if err := sc.Scan(&c.ID, &c.Source, &c.Destination, &c.Filter, &created, &updated); err != nil {
		return nil, interpretError(err)
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &c, nil
}

// ConnectionGet implements [store.Store].
func (s *Store) ConnectionGet(ctx context.Context, id string) (*store.Connection, error) {
	c, err := scanConnection(s.rdb.QueryRowContext(ctx, `SELECT `+connectionCols+` FROM connections WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get connection %s: %w", id, err)
	}
	return c, nil
}

// ConnectionList implements [store.Store].
func (s *Store) ConnectionList(ctx context.Context) ([]*store.Connection, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+connectionCols+` FROM connections ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	return collect(rows, scanConnection, "list connections")
}

// ConnectionDelete implements [store.Store].
func (s *Store) ConnectionDelete(ctx context.Context, id string) error {
	if err := s.deleteWithConnections(ctx, "connections", "id", "", id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete connection %s: %w", id, store.ErrNotFound)
		}
		return fmt.Errorf("delete connection %s: %w", id, err)
	}
	return nil
}
