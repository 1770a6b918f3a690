package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/audit"
	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/store"
)

// tokenCreateBody is the body of POST /tokens.
type tokenCreateBody struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Project string `json:"project,omitempty"`
	// Expires is the token's lifetime: "90d", "12h"; empty means never.
	Expires string `json:"expires,omitempty"`
}

// tokenCreated is the answer of POST /tokens: the token's record and,
// this once, the token itself.
type tokenCreated struct {
	*store.Token
	Secret string `json:"token"`
}

// tokenCreate answers POST /tokens. Admins only (the permission table);
// in open mode the first token must be an admin token (409).
func (a *Server) tokenCreate(w http.ResponseWriter, r *http.Request) {
	var in tokenCreateBody
	if err := decode(w, r, &in, false); err != nil {
		a.fail(w, r, err, "")
		return
	}
	role, err := access.ParseRole(in.Role)
	if err != nil {
		a.fail(w, r, badf("role: %v", err), "")
		return
	}
	ttl, err := auth.ParseExpiry(in.Expires)
	if err != nil {
		a.fail(w, r, badf("%v", err), "")
		return
	}
	p := &auth.CreateParams{Name: in.Name, Role: role, Project: in.Project, TTL: ttl}
	if err := p.Check(); err != nil {
		a.fail(w, r, badf("%v", err), "")
		return
	}
	by, _ := access.From(r.Context())
	audit.Quiet(r.Context())
	t, secret, err := a.guard.Authenticator().Create(r.Context(), by, p)
	if errors.Is(err, auth.ErrLockout) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	audit.Target(r.Context(), t.ID)
	audit.Project(r.Context(), t.Project)
	audit.After(r.Context(), t)
	w.Header().Set("Location", Prefix+"tokens/"+url.PathEscape(t.ID))
	writeJSON(w, http.StatusCreated, tokenCreated{Token: t, Secret: secret})
}

// tokenList answers GET /tokens: the active tokens, or with all=true the
// revoked and expired ones too; project=P keeps one project's. Never a
// token itself.
func (a *Server) tokenList(w http.ResponseWriter, r *http.Request) {
	p := &store.TokenListParams{Now: a.now()}
	for key, vals := range r.URL.Query() {
		v := vals[0]
		switch {
		case len(vals) > 1:
			a.fail(w, r, badf("parameter %s is given %d times; give it once", key, len(vals)), "")
			return
		case key == "all" && (v == "true" || v == "false" || v == ""):
			p.All = v == "true"
		case key == "project":
			if err := checkText(key, v); err != nil {
				a.fail(w, r, err, "")
				return
			}
			p.Project = v
		default:
			a.fail(w, r, badf("parameter %s: the parameters are all (true or false) and project", key), "")
			return
		}
	}
	ts, err := a.store.TokenList(r.Context(), p)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	if ts == nil {
		ts = []*store.Token{}
	}
	writeJSON(w, http.StatusOK, list[*store.Token]{Data: ts})
}

// tokenRevoke answers DELETE /tokens/{id} with the revoked token. It
// works at once: the next request with the token, and every dashboard
// session opened with it, is refused.
func (a *Server) tokenRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if before, err := a.store.TokenGet(r.Context(), id); err == nil {
		audit.Before(r.Context(), before)
		audit.Project(r.Context(), before.Project)
	}
	t, err := a.guard.Authenticator().Revoke(r.Context(), id)
	if errors.Is(err, auth.ErrLockout) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		a.fail(w, r, err, "token "+quoteID(id)+" not found")
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// auditFilters are the audit list's own filters.
var auditFilters = []string{"actor", "token_id", "project", "action", "target"}

// auditList answers GET /audit: entries newest first, filtered by actor,
// token_id, project, action (a route pattern such as "POST
// /api/v1/deliveries/{id}/retry") and target, between since and until,
// paged by cursor and limit.
func (a *Server) auditList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := map[string]string{}
	// The audit filters are taken here; parseListParams reads the rest
	// (it knows their names only to list them in its errors).
	for _, k := range auditFilters {
		if vs, ok := q[k]; ok {
			if len(vs) > 1 {
				a.fail(w, r, badf("parameter %s is given %d times; give it once", k, len(vs)), "")
				return
			}
			f[k] = vs[0]
			delete(q, k)
		}
	}
	lp, err := parseListParams(q, listKind{name: "audit", paged: true, filters: auditFilters})
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	es, next, err := page(r.Context(), lp, func(ctx context.Context, lp listParams) ([]*store.AuditEntry, error) {
		return a.store.AuditList(ctx, &store.AuditListParams{Actor: f["actor"], TokenID: f["token_id"], Project: f["project"], Action: f["action"], Target: f["target"],
			Since: lp.Since, Until: lp.Until, Cursor: lp.Cursor, Limit: lp.Limit})
	}, func(e *store.AuditEntry) string { return e.ID })
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, list[*store.AuditEntry]{Data: nonNil(es), NextCursor: next})
}

// quoteID quotes an id for a message.
func quoteID(id string) string { return `"` + id + `"` }
