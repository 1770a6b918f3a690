package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// notExpired is the condition of a task alive at its one argument.
const notExpired = `(expires_at = 0 OR expires_at > ?)`

// TaskCreate implements [store.Tasks].
func (s *Store) TaskCreate(ctx context.Context, t *store.Task) error {
	now := s.now()
	if t.Status == "" {
		t.Status = store.TaskWorking
	}
	t.Project = store.ProjectOrDefault(t.Project)
	t.CreatedAt, t.UpdatedAt = now, now
	t.ExpiresAt = time.Time{}
	if t.TTL > 0 {
		t.ExpiresAt = now.Add(t.TTL)
	}
	var w store.TaskWait
	if t.Wait != nil {
		w = *t.Wait
	}
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tasks (`+taskCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			t.ID, t.Owner, t.SessionID, t.Protocol, t.Tool, nullable(t.Arguments), t.Status, t.StatusMessage,
			micros(now), micros(now), t.TTL.Microseconds(), micros(t.ExpiresAt), t.PollInterval.Microseconds(),
			nullable(t.Result), nullable(t.Error), w.Source, w.Type, w.Filter, micros(w.Since), micros(w.Deadline), t.EventID, t.Project)
		if err != nil {
			return err
		}
		tx.Notify(store.Notification{Kind: store.NotifyTaskChanged, ID: t.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	return nil
}

// TaskGet implements [store.Tasks].
func (s *Store) TaskGet(ctx context.Context, id string, now time.Time) (*store.Task, error) {
	return getOne(ctx, s.read, scanTask, "task "+id, `SELECT `+taskCols+` FROM tasks WHERE id = ? AND `+notExpired, id, micros(s.orNow(now)))
}

// TaskList implements [store.Tasks]. Task ids are random, so the order is
// creation time, ties broken by id; the cursor task's (created_at, id)
// is where the next page starts. A cursor naming a task that no longer
// exists yields an empty page.
func (s *Store) TaskList(ctx context.Context, p *store.TaskListParams) ([]*store.Task, error) {
	if p == nil {
		p = &store.TaskListParams{}
	}
	w := &where{}
	w.add(notExpired, micros(s.orNow(p.Now)))
	w.eq("owner", p.Owner)
	w.eq("project", p.Project)
	w.eq("status", p.Status)
	if p.Open {
		w.add("status IN ('working', 'input_required')")
	}
	if p.Cursor != "" {
		w.add(`(created_at < (SELECT created_at FROM tasks WHERE id = ?)
			OR (created_at = (SELECT created_at FROM tasks WHERE id = ?) AND id < ?))`, p.Cursor, p.Cursor, p.Cursor)
	}
	rows, err := s.read.Query(ctx, `SELECT `+taskCols+` FROM tasks`+w.sql()+` ORDER BY created_at DESC, id DESC LIMIT ?`,
		append(w.args, store.PageLimit(p.Limit))...)
	out, err := collect(rows, err, scanTask)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return out, nil
}

// TaskUpdate implements [store.Tasks]. The update is conditional on the
// task not being terminal; a racing update (on any instance) waits for the
// row and then sees the winner's status, so exactly one wins.
func (s *Store) TaskUpdate(ctx context.Context, p *store.TaskUpdateParams) (*store.Task, error) {
	now := micros(s.orNow(p.Now))
	var out *store.Task
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		out = nil
		t, err := scanTask(tx.QueryRow(ctx, `UPDATE tasks SET status = ?, updated_at = ?,
				status_message = CASE WHEN ? = '' THEN status_message ELSE ? END,
				result = coalesce(?, result), error = coalesce(?, error),
				event_id = CASE WHEN ? = '' THEN event_id ELSE ? END
			WHERE id = ? AND status IN ('working', 'input_required') AND `+notExpired+`
			RETURNING `+taskCols,
			p.Status, now, p.StatusMessage, p.StatusMessage, nullable(p.Result), nullable(p.Error),
			p.EventID, p.EventID, p.ID, now))
		if errors.Is(err, store.ErrNotFound) {
			// Terminal, expired or missing: tell which.
			cur, gerr := scanTask(tx.QueryRow(ctx, `SELECT `+taskCols+` FROM tasks WHERE id = ? AND `+notExpired, p.ID, now))
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
		tx.Notify(store.Notification{Kind: store.NotifyTaskChanged, ID: t.ID})
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

// TaskListWaiting implements [store.Tasks].
func (s *Store) TaskListWaiting(ctx context.Context, now time.Time) ([]*store.Task, error) {
	rows, err := s.read.Query(ctx, `SELECT `+taskCols+` FROM tasks
		WHERE status IN ('working', 'input_required') AND wait_source <> '' AND `+notExpired, micros(s.orNow(now)))
	out, err := collect(rows, err, scanTask)
	if err != nil {
		return nil, fmt.Errorf("list waiting tasks: %w", err)
	}
	return out, nil
}

// TaskDeleteExpired implements [store.Tasks].
func (s *Store) TaskDeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		n, err = tx.Exec(ctx, `DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE expires_at > 0 AND expires_at <= ? LIMIT ?`+s.d.SkipLocked("")+`)`,
			micros(s.orNow(now)), limit)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired tasks: %w", err)
	}
	return int(n), nil
}
