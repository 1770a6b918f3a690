package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	err = s.write(ctx, func(w *wtx) error {
		if _, err := w.exec(`INSERT INTO sources (name, spec, created_at, updated_at) VALUES ($1, $2, $3, $3)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`, src.Name, spec, now); err != nil {
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

func scanSource(sc pgx.Row) (*store.Source, error) {
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
	src, err := scanSource(s.pool.QueryRow(ctx, `SELECT spec, created_at, updated_at FROM sources WHERE name = $1`, name))
	if err != nil {
		return nil, fmt.Errorf("get source %s: %w", name, err)
	}
	return src, nil
}

// SourceList implements [store.Store].
func (s *Store) SourceList(ctx context.Context) ([]*store.Source, error) {
	rows, err := s.pool.Query(ctx, `SELECT spec, created_at, updated_at FROM sources ORDER BY name`)
	return collect(rows, err, scanSource, "list sources")
}

// deleteWithConnections deletes the named row from table and the
// connections whose column col names it.
func (s *Store) deleteWithConnections(ctx context.Context, table, key, col, name string) error {
	return s.write(ctx, func(w *wtx) error {
		n, err := w.exec(`DELETE FROM `+table+` WHERE `+key+` = $1`, name)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		if col != "" {
			if _, err := w.exec(`DELETE FROM connections WHERE `+col+` = $1`, name); err != nil {
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
	err = s.write(ctx, func(w *wtx) error {
		if _, err := w.exec(`INSERT INTO destinations (name, spec, created_at, updated_at) VALUES ($1, $2, $3, $3)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`, d.Name, spec, now); err != nil {
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

func scanDestination(sc pgx.Row) (*store.Destination, error) {
	var spec []byte
	var pausedAt, created, updated int64
	var d store.Destination
	var paused bool
	var reason string
	if err := sc.Scan(&spec, &paused, &pausedAt, &reason, &created, &updated); err != nil {
		return nil, interpretError(err)
	}
	if err := json.Unmarshal(spec, &d); err != nil {
		return nil, fmt.Errorf("decode destination: %w", err)
	}
	d.Paused, d.PausedAt, d.PauseReason = paused, fromMicros(pausedAt), reason
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &d, nil
}

// DestinationGet implements [store.Store].
func (s *Store) DestinationGet(ctx context.Context, name string) (*store.Destination, error) {
	d, err := scanDestination(s.pool.QueryRow(ctx, `SELECT `+destinationCols+` FROM destinations WHERE name = $1`, name))
	if err != nil {
		return nil, fmt.Errorf("get destination %s: %w", name, err)
	}
	return d, nil
}

// DestinationList implements [store.Store].
func (s *Store) DestinationList(ctx context.Context) ([]*store.Destination, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+destinationCols+` FROM destinations ORDER BY name`)
	return collect(rows, err, scanDestination, "list destinations")
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
	now := micros(time.Now())
	err := s.write(ctx, func(w *wtx) error {
		var n int64
		var err error
		if paused {
			n, err = w.exec(`UPDATE destinations SET paused = true, paused_at = $1, pause_reason = $2, updated_at = $1 WHERE name = $3`,
				now, reason, name)
		} else {
			n, err = w.exec(`UPDATE destinations SET paused = false, paused_at = 0, pause_reason = '', updated_at = $1 WHERE name = $2`, now, name)
		}
		if err != nil {
			return err
		}
		if n == 0 {
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
	err := s.write(ctx, func(w *wtx) error {
		// FOR SHARE keeps both ends from being deleted until this commits.
		var n int
		if err := w.queryRow(`SELECT (SELECT count(*) FROM (SELECT 1 FROM sources WHERE name = $1 FOR SHARE) a) +
			(SELECT count(*) FROM (SELECT 1 FROM destinations WHERE name = $2 FOR SHARE) b)`, c.Source, c.Destination).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("source %q or destination %q: %w", c.Source, c.Destination, store.ErrNotFound)
		}
		if _, err := w.exec(`INSERT INTO connections (id, source, destination, filter, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
			ON CONFLICT (id) DO UPDATE SET source = excluded.source, destination = excluded.destination, filter = excluded.filter,
			updated_at = excluded.updated_at`, c.ID, c.Source, c.Destination, c.Filter, now); err != nil {
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

func scanConnection(sc pgx.Row) (*store.Connection, error) {
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
	c, err := scanConnection(s.pool.QueryRow(ctx, `SELECT `+connectionCols+` FROM connections WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get connection %s: %w", id, err)
	}
	return c, nil
}

// ConnectionList implements [store.Store].
func (s *Store) ConnectionList(ctx context.Context) ([]*store.Connection, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+connectionCols+` FROM connections ORDER BY id`)
	return collect(rows, err, scanConnection, "list connections")
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
