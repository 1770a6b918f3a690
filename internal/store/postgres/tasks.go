package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlrow"
)

const taskCols = sqlrow.TaskCols

func scanTask(sc pgx.Row) (*store.Task, error) {
	t, err := sqlrow.Task(sc)
	return t, interpretError(err)
}

// nullable stores an empty byte slice as NULL.
func nullable(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
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
	err := s.write(ctx, func(wr *wtx) error {
		_, err := wr.exec(`INSERT INTO tasks (`+taskCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21)`,
			t.ID, t.Owner, t.SessionID, t.Protocol, t.Tool, nullable(t.Arguments), t.Status, t.StatusMessage,
			micros(now), micros(now), t.TTL.Microseconds(), micros(t.ExpiresAt), t.PollInterval.Microseconds(),
			nullable(t.Result), nullable(t.Error), w.Source, w.Type, w.Filter, micros(w.Since), micros(w.Deadline), t.EventID)
		if err != nil {
			return err
		}
		wr.notify(store.Notification{Kind: store.NotifyTaskChanged, ID: t.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	return nil
}

// TaskGet implements [store.Store].
func (s *Store) TaskGet(ctx context.Context, id string, now time.Time) (*store.Task, error) {
	t, err := scanTask(s.pool.QueryRow(ctx, `SELECT `+taskCols+` FROM tasks WHERE id = $1 AND (expires_at = 0 OR expires_at > $2)`,
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
	var a args
	where := []string{"(expires_at = 0 OR expires_at > " + a.add(micros(orNow(p.Now))) + ")"}
	if p.Owner != "" {
		where = append(where, "owner = "+a.add(p.Owner))
	}
	if p.Status != "" {
		where = append(where, "status = "+a.add(p.Status))
	}
	if p.Open {
		where = append(where, "status IN ('working', 'input_required')")
	}
	if p.Cursor != "" {
		where = append(where, "id < "+a.add(p.Cursor))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+taskCols+` FROM tasks WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT `+a.add(limit), a...)
	return collect(rows, err, scanTask, "list tasks")
}

// TaskUpdate implements [store.Store]. The update is conditional on the
// task not being terminal; a racing update on any instance waits for the
// row lock and then sees the winner's status, so exactly one wins.
func (s *Store) TaskUpdate(ctx context.Context, p *store.TaskUpdateParams) (*store.Task, error) {
	now := orNow(p.Now)
	var out *store.Task
	err := s.write(ctx, func(w *wtx) error {
		out = nil
		t, err := scanTask(w.queryRow(`UPDATE tasks SET status = $1, updated_at = $2,
				status_message = CASE WHEN $3 = '' THEN status_message ELSE $3 END,
				result = coalesce($4, result), error = coalesce($5, error),
				event_id = CASE WHEN $6 = '' THEN event_id ELSE $6 END
			WHERE id = $7 AND status IN ('working', 'input_required') AND (expires_at = 0 OR expires_at > $2)
			RETURNING `+taskCols,
			p.Status, micros(now), p.StatusMessage, nullable(p.Result), nullable(p.Error), p.EventID, p.ID))
		if errors.Is(err, store.ErrNotFound) {
			// Terminal, expired or missing: tell which.
			cur, gerr := scanTask(w.queryRow(`SELECT `+taskCols+` FROM tasks WHERE id = $1 AND (expires_at = 0 OR expires_at > $2)`, p.ID, micros(now)))
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
	rows, err := s.pool.Query(ctx, `SELECT `+taskCols+` FROM tasks
		WHERE status IN ('working', 'input_required') AND wait_source <> '' AND (expires_at = 0 OR expires_at > $1)`, micros(orNow(now)))
	return collect(rows, err, scanTask, "list waiting tasks")
}

// TaskDeleteExpired implements [store.Store].
func (s *Store) TaskDeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int64
	err := s.write(ctx, func(w *wtx) error {
		var err error
		n, err = w.exec(`DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE expires_at > 0 AND expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			micros(orNow(now)), limit)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired tasks: %w", err)
	}
	return int(n), nil
}
