package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlrow"
)

const taskCols = sqlrow.TaskCols

func scanTask(sc scanner) (*store.Task, error) {
	t, err := sqlrow.Task(sc)
	return t, interpretError(err)
}

func nullable(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// TaskCreate implements [store.Store].
func (s *Store) TaskCreate(ctx context.Context, t *store.Task) error {
	now := time.Now()
	if t.Status == "" {
		t.Status = store.TaskWorking
	}
	t.CreatedAt, t.UpdatedAt = now, now
	t.ExpiresAt = time.Time{}
	if t.TTL > 0 {
		t.ExpiresAt = now.Add(t.TTL)
	}
	var w store.TaskWait
	if t.Wait != nil {
		w = *t.Wait
	}
	err := s.write(ctx, func(wr *writer) error {
		_, err := wr.exec(`INSERT INTO tasks (`+taskCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			t.ID, t.Owner, t.SessionID, t.Protocol, t.Tool, nullable(t.Arguments), t.Status, t.StatusMessage,
			micros(now), micros(now), t.TTL.Microseconds(), micros(t.ExpiresAt), t.PollInterval.Microseconds(),
			nullable(t.Result), nullable(t.Error), w.Source, w.Type, w.Filter, micros(w.Since), micros(w.Deadline), t.EventID)
		if err != nil {
			return interpretError(err)
		}
		wr.notify(store.Notification{Kind: store.NotifyTaskChanged, ID: t.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	return nil
}

func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// TaskGet implements [store.Store].
func (s *Store) TaskGet(ctx context.Context, id string, now time.Time) (*store.Task, error) {
	t, err := scanTask(s.rdb.QueryRowContext(ctx, `SELECT `+taskCols+` FROM tasks WHERE id = ? AND (expires_at = 0 OR expires_at > ?)`,
		id, micros(orNow(now))))
	if err != nil {
		return nil, fmt.Errorf("get task: %w", err)
	}
	return t, nil
}

// TaskList implements [store.Store].
func (s *Store) TaskList(ctx context.Context, p *store.TaskListParams) ([]*store.Task, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	if limit > 1000 {
		limit = 1000
	}
	where := []string{"(expires_at = 0 OR expires_at > ?)"}
	args := []any{micros(orNow(p.Now))}
	if p.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, p.Owner)
	}
	if p.Status != "" {
		where, args = append(where, "status = ?"), append(args, p.Status)
	}
	if p.Open {
		where = append(where, "status IN ('working', 'input_required')")
	}
	if p.Cursor != "" {
		where, args = append(where, "id < ?"), append(args, p.Cursor)
	}
	args = append(args, limit)
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+taskCols+` FROM tasks WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return collect(rows, scanTask, "list tasks")
}

// TaskUpdate implements [store.Store].
func (s *Store) TaskUpdate(ctx context.Context, p *store.TaskUpdateParams) (*store.Task, error) {
	now := orNow(p.Now)
	var out *store.Task
	err := s.write(ctx, func(w *writer) error {
		t, err := scanTask(w.queryRow(`UPDATE tasks SET status = ?, updated_at = ?,
				status_message = CASE WHEN ? = '' THEN status_message ELSE ? END,
				result = coalesce(?, result), error = coalesce(?, error),
				event_id = CASE WHEN ? = '' THEN event_id ELSE ? END
			WHERE id = ? AND status IN ('working', 'input_required') AND (expires_at = 0 OR expires_at > ?)
			RETURNING `+taskCols,
			p.Status, micros(now), p.StatusMessage, p.StatusMessage, nullable(p.Result), nullable(p.Error),
			p.EventID, p.EventID, p.ID, micros(now)))
		if errors.Is(err, store.ErrNotFound) {
			// Terminal, expired or missing: tell which.
			cur, gerr := scanTask(w.queryRow(`SELECT `+taskCols+` FROM tasks WHERE id = ? AND (expires_at = 0 OR expires_at > ?)`, p.ID, micros(now)))
			if gerr != nil {
				return gerr
			}
			out = cur
			return store.ErrTaskTerminal
		}
		if err != nil {
			return err
		}
		out = t
		w.notify(store.Notification{Kind: store.NotifyTaskChanged, ID: t.ID})
		return nil
	})
	if errors.Is(err, store.ErrTaskTerminal) {
		return out, fmt.Errorf("update task %s: %w", p.ID, err)
	}
	if err != nil {
		return nil, fmt.Errorf("update task %s: %w", p.ID, err)
	}
	return out, nil
}

// TaskListWaiting implements [store.Store].
func (s *Store) TaskListWaiting(ctx context.Context, now time.Time) ([]*store.Task, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+taskCols+` FROM tasks
		WHERE status IN ('working', 'input_required') AND wait_source != '' AND (expires_at = 0 OR expires_at > ?)`, micros(orNow(now)))
	if err != nil {
		return nil, fmt.Errorf("list waiting tasks: %w", err)
	}
	return collect(rows, scanTask, "list waiting tasks")
}

// TaskDeleteExpired implements [store.Store].
func (s *Store) TaskDeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int64
	err := s.write(ctx, func(w *writer) error {
		r, err := w.exec(`DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE expires_at > 0 AND expires_at <= ? LIMIT ?)`,
			micros(orNow(now)), limit)
		if err != nil {
			return err
		}
		n, _ = r.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired tasks: %w", err)
	}
	return int(n), nil
}
