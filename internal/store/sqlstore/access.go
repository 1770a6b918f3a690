package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

const (
	tokenCols = `id, name, role, project, hash, created_by, created_at, expires_at, revoked_at, last_used_at`
	auditCols = `id, at, actor, token_id, role, project, action, target, status, before_state, after_state`
)

func scanToken(sc Row) (*store.Token, error) {
	var t store.Token
	var created, expires, revoked, used int64
	if err := sc.Scan(&t.ID, &t.Name, &t.Role, &t.Project, &t.Hash, &t.CreatedBy, &created, &expires, &revoked, &used); err != nil {
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsedAt = fromMicros(created), fromMicros(expires), fromMicros(revoked), fromMicros(used)
	return &t, nil
}

func scanAudit(sc Row) (*store.AuditEntry, error) {
	var e store.AuditEntry
	var at int64
	var before, after []byte
	if err := sc.Scan(&e.ID, &at, &e.Actor, &e.TokenID, &e.Role, &e.Project, &e.Action, &e.Target, &e.Status, &before, &after); err != nil {
		return nil, err
	}
	e.At = fromMicros(at)
	if len(before) > 0 {
		e.Before = before
	}
	if len(after) > 0 {
		e.After = after
	}
	return &e, nil
}

// TokenCreate implements [store.Tokens].
func (s *Store) TokenCreate(ctx context.Context, t *store.Token) error {
	if t.ID == "" || len(t.Hash) == 0 {
		return errors.New("create token: id and hash are required")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES (?,?,?,?,?,?,?,?,?,?)`,
			t.ID, t.Name, t.Role, t.Project, t.Hash, t.CreatedBy, micros(t.CreatedAt), micros(t.ExpiresAt), micros(t.RevokedAt), micros(t.LastUsedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create token %s: %w", t.ID, err)
	}
	return nil
}

// TokenByHash implements [store.Tokens].
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (*store.Token, error) {
	return getOne(ctx, s.read, scanToken, "token by hash", `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash)
}

// TokenGet implements [store.Tokens].
func (s *Store) TokenGet(ctx context.Context, id string) (*store.Token, error) {
	return getOne(ctx, s.read, scanToken, "token "+id, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id)
}

// TokenList implements [store.Tokens].
func (s *Store) TokenList(ctx context.Context, p *store.TokenListParams) ([]*store.Token, error) {
	if p == nil {
		p = &store.TokenListParams{}
	}
	w := &where{}
	w.eq("project", p.Project)
	if !p.All {
		w.add(`revoked_at = 0 AND (expires_at = 0 OR expires_at > ?)`, micros(s.orNow(p.Now)))
	}
	rows, err := s.read.Query(ctx, `SELECT `+tokenCols+` FROM tokens`+w.sql()+` ORDER BY created_at DESC, id DESC`, w.args...)
	out, err := collect(rows, err, scanToken)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// TokenRevoke implements [store.Tokens].
func (s *Store) TokenRevoke(ctx context.Context, id string, now time.Time) (*store.Token, error) {
	var out *store.Token
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		t, err := scanToken(tx.QueryRow(ctx, `UPDATE tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END
			WHERE id = ? RETURNING `+tokenCols, micros(s.orNow(now)), id))
		out = t
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("revoke token %s: %w", id, err)
	}
	return out, nil
}

// TokenTouch implements [store.Tokens].
func (s *Store) TokenTouch(ctx context.Context, id string, at time.Time) error {
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		_, err := tx.Exec(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ? AND last_used_at < ?`, micros(at), id, micros(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("touch token %s: %w", id, err)
	}
	return nil
}

// TokenActive implements [store.Tokens].
func (s *Store) TokenActive(ctx context.Context, now time.Time) (store.TokenCounts, error) {
	var c store.TokenCounts
	err := s.read.QueryRow(ctx, `SELECT count(*), coalesce(sum(CASE WHEN role = 'admin' THEN 1 ELSE 0 END), 0) FROM tokens
		WHERE revoked_at = 0 AND (expires_at = 0 OR expires_at > ?)`, micros(s.orNow(now))).Scan(&c.Active, &c.Admins)
	if err != nil {
		return c, fmt.Errorf("count active tokens: %w", err)
	}
	return c, nil
}

// AuditInsert implements [store.Audit].
func (s *Store) AuditInsert(ctx context.Context, e *store.AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	if e.ID == "" {
		e.ID = s.ids.New("aud", e.At)
	}
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO audit (`+auditCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
			e.ID, micros(e.At), e.Actor, e.TokenID, e.Role, e.Project, e.Action, e.Target, e.Status, nullable(e.Before), nullable(e.After))
		return err
	})
	if err != nil {
		return fmt.Errorf("record audit entry %s: %w", e.Action, err)
	}
	return nil
}

// AuditList implements [store.Audit].
func (s *Store) AuditList(ctx context.Context, p *store.AuditListParams) ([]*store.AuditEntry, error) {
	if p == nil {
		p = &store.AuditListParams{}
	}
	w := &where{}
	w.eq("actor", p.Actor)
	w.eq("token_id", p.TokenID)
	w.eq("project", p.Project)
	w.eq("action", p.Action)
	w.eq("target", p.Target)
	w.between("at", p.Since, p.Until)
	tail := w.page(p.Cursor, p.Limit)
	rows, err := s.read.Query(ctx, `SELECT `+auditCols+` FROM audit`+tail, w.args...)
	out, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	return out, nil
}
