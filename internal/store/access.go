package store

import (
	"context"
	"encoding/json"
	"time"
)

// Tokens stores the API tokens operators create: only each token's
// SHA-256, never the token itself.
type Tokens interface {
	// TokenCreate stores t. ID, CreatedAt and Hash must be set by the
	// caller; a second token with the same hash is [ErrDuplicate].
	TokenCreate(ctx context.Context, t *Token) error
	// TokenByHash returns the token whose SHA-256 is hash (32 bytes),
	// revoked and expired ones included (the caller decides), or
	// [ErrNotFound].
	TokenByHash(ctx context.Context, hash []byte) (*Token, error)
	// TokenGet returns the token with id, or [ErrNotFound].
	TokenGet(ctx context.Context, id string) (*Token, error)
	// TokenList returns the tokens of p's project (every project when
	// empty), newest first, revoked and expired ones only with
	// p.All.
	TokenList(ctx context.Context, p *TokenListParams) ([]*Token, error)
	// TokenRevoke marks the token revoked at p.Now and returns it;
	// revoking a revoked token keeps its first revocation time. A missing
	// token is [ErrNotFound].
	TokenRevoke(ctx context.Context, id string, now time.Time) (*Token, error)
	// TokenTouch records that the token was used at at.
	TokenTouch(ctx context.Context, id string, at time.Time) error
	// TokenActive counts the tokens neither revoked nor expired at now,
	// in all and with role admin.
	TokenActive(ctx context.Context, now time.Time) (TokenCounts, error)
}

// Token is a stored API token. The secret itself is shown once, when it
// is created, and never stored.
type Token struct {
	// ID is the token's public identifier ("tok_…"), used to revoke it
	// and recorded in the audit log.
	ID string `json:"id"`
	// Name says whose or what the token is.
	Name string `json:"name"`
	// Role is what the token may do (see internal/access).
	Role string `json:"role"`
	// Project is the project the token acts in; empty for an admin of
	// every project.
	Project string `json:"project,omitempty"`
	// Hash is the SHA-256 of the token. Never shown.
	Hash []byte `json:"-"`
	// CreatedBy names the principal that created the token.
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the token stops working; zero means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RevokedAt is when the token was revoked; zero while it is not.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// LastUsedAt is when the token last authenticated a request (updated
	// at most once a minute); zero if never.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// Active reports whether t works at now: not revoked, not expired.
func (t *Token) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// TokenListParams filters [Tokens.TokenList].
type TokenListParams struct {
	// Project keeps the tokens of one project; empty keeps all.
	Project string
	// All includes revoked and expired tokens.
	All bool
	// Now decides which tokens have expired. Zero means the clock.
	Now time.Time
}

// TokenCounts is what [Tokens.TokenActive] counts.
type TokenCounts struct {
	Active, Admins int
}

// Audit records who changed what.
type Audit interface {
	// AuditInsert appends e. ID and At are set by the store when empty.
	AuditInsert(ctx context.Context, e *AuditEntry) error
	// AuditList returns entries newest first, filtered and paged by p.
	AuditList(ctx context.Context, p *AuditListParams) ([]*AuditEntry, error)
}

// AuditEntry is one change or manual action.
type AuditEntry struct {
	// ID is time-sortable ("aud_…").
	ID string    `json:"id"`
	At time.Time `json:"at"`
	// Actor is the principal's name; TokenID its credential ("api" for
	// the static api.token, "" when mailroom runs without tokens).
	Actor   string `json:"actor"`
	TokenID string `json:"token_id,omitempty"`
	// Role is the principal's role when it acted.
	Role string `json:"role,omitempty"`
	// Project is the project of the target; empty for what belongs to
	// none (a reload, an admin token).
	Project string `json:"project,omitempty"`
	// Action names what was done: the route's pattern ("POST
	// /api/v1/deliveries/{id}/retry") or the dashboard action ("ui:
	// retry delivery").
	Action string `json:"action"`
	// Target is the id or name acted on, if any.
	Target string `json:"target,omitempty"`
	// Status is the HTTP status the action was answered with.
	Status int `json:"status"`
	// Before and After are the target's state, redacted: no secret is
	// ever stored. Empty when there is none (a create has no before).
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// AuditListParams filters [Audit.AuditList].
type AuditListParams struct {
	Actor, TokenID, Project, Action, Target string
	// Since and Until bound At: Since <= At < Until, for those set.
	Since, Until time.Time
	// Cursor is the id of the last entry of the previous page.
	Cursor string
	Limit  int
}
