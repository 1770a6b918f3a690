package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/mailroomhq/mailroom/internal/store"
)

// TokenCreate is the body of a token to create.
type TokenCreate struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Project string `json:"project,omitempty"`
	// Expires is the token's lifetime ("90d", "12h"); empty means never.
	Expires string `json:"expires,omitempty"`
}

// CreatedToken is a new token's record and, this once, the token.
type CreatedToken struct {
	store.Token
	Secret string          `json:"token"`
	Raw    json.RawMessage `json:"-"`
}

// Token is a token's record (never the token itself).
type Token struct {
	store.Token
	Raw json.RawMessage `json:"-"`
}

// TokenCreate creates a token; the answer holds it once.
func (c *Client) TokenCreate(ctx context.Context, in *TokenCreate) (*CreatedToken, error) {
	var t CreatedToken
	raw, err := c.Call(ctx, http.MethodPost, "/tokens", nil, in, &t)
	if err != nil {
		return nil, err
	}
	t.Raw = raw
	return &t, nil
}

// Tokens lists tokens with the filters in q (all, project).
func (c *Client) Tokens(ctx context.Context, q url.Values) (*Page[store.Token], error) {
	return list[store.Token](ctx, c, "/tokens", q)
}

// TokenRevoke revokes a token and returns its record.
func (c *Client) TokenRevoke(ctx context.Context, id string) (*Token, error) {
	var t Token
	raw, err := c.Call(ctx, http.MethodDelete, "/tokens/"+url.PathEscape(id), nil, nil, &t)
	if err != nil {
		return nil, err
	}
	t.Raw = raw
	return &t, nil
}

// Audit lists audit entries with the filters in q (actor, token_id,
// project, action, target, since, until, cursor, limit).
func (c *Client) Audit(ctx context.Context, q url.Values) (*Page[store.AuditEntry], error) {
	return list[store.AuditEntry](ctx, c, "/audit", q)
}
