package auth

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
)

// ErrCredentialEnded is the cause of a held request's context ending
// because its token was revoked or expired, or because open mode ended.
var ErrCredentialEnded = errors.New("the request's credential is no longer valid")

// hold is one request held by [Authenticator.Hold].
type hold struct {
	cancel context.CancelCauseFunc
}

// Hold returns ctx for a request that acts for p, canceled (with cause
// [ErrCredentialEnded]) once p's credential no longer lets it in: its
// stored token revoked (at once when revoked through this Authenticator,
// within RecheckEvery when revoked elsewhere, another instance or the
// CLI) or expired (within RecheckEvery), or, for [access.Anonymous], open
// mode ended by the first token. A request that is checked once at its
// start would otherwise keep a stream (the event stream, the dashboard's
// live view, an MCP session's notifications) going for as long as the
// client keeps it open, bodies included, after its token was revoked.
// Static tokens (api.token, mcp.tokens) last as long as the process. The
// returned stop must be called when the request ends; it releases the
// hold and cancels the context.
func (a *Authenticator) Hold(ctx context.Context, p access.Principal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	if a.isStatic(p.TokenID) {
		return ctx, func() { cancel(context.Canceled) }
	}
	h := &hold{cancel: cancel}
	id := p.TokenID
	a.mu.Lock()
	if a.held[id] == nil {
		a.held[id] = map[*hold]struct{}{}
	}
	a.held[id][h] = struct{}{}
	a.mu.Unlock()
	var timer *time.Timer
	check := func() {
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), a.recheck)
		_, err := a.ByID(cctx, id)
		ccancel()
		switch {
		case errors.Is(err, ErrUnauthenticated):
			cancel(ErrCredentialEnded)
			return
		case err != nil: // storage: keep the stream, ask again later
			a.log.Warn("auth: recheck a held request's token", "token_id", id, "err", err)
		}
		if ctx.Err() == nil {
			timer.Reset(a.recheck)
		}
	}
	timer = time.AfterFunc(time.Duration(math.MaxInt64), check) // set before it can fire
	timer.Reset(a.recheck)
	return ctx, func() {
		timer.Stop()
		a.mu.Lock()
		delete(a.held[id], h)
		if len(a.held[id]) == 0 {
			delete(a.held, id)
		}
		a.mu.Unlock()
		cancel(context.Canceled)
	}
}

// end cancels every request held for token id.
func (a *Authenticator) end(id string) {
	a.mu.Lock()
	hs := a.held[id]
	delete(a.held, id)
	a.mu.Unlock()
	for h := range hs {
		h.cancel(ErrCredentialEnded)
	}
}

// isStatic reports whether id is a static token's.
func (a *Authenticator) isStatic(id string) bool {
	if id == "" {
		return false
	}
	for _, p := range a.principals {
		if p.TokenID == id {
			return true
		}
	}
	return false
}
