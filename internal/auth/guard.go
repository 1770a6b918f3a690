package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/audit"
	"github.com/mailroomhq/mailroom/internal/redact"
	"github.com/mailroomhq/mailroom/internal/store"
)

// maxAuditBody caps the answer body kept as an entry's After.
const maxAuditBody = 64 << 10

// auditTimeout bounds the write of one audit entry.
const auditTimeout = 5 * time.Second

// GuardOptions configures a [Guard].
type GuardOptions struct {
	// Audit receives an entry per mutating request. Nil records none.
	Audit store.Audit
	// Logger receives audit write failures. If nil, discarded.
	Logger *slog.Logger
	// Now is the clock of entries. If nil, time.Now.
	Now func() time.Time
}

// Guard is the one middleware of operator routes: it finds whom a request
// acts for, refuses it unless the principal's role has the permission
// the permission table (internal/access) gives its route, and records
// every mutating request it lets through in the audit log.
type Guard struct {
	auth  *Authenticator
	audit store.Audit
	log   *slog.Logger
	now   func() time.Time
}

// NewGuard returns a Guard that authenticates with a.
func NewGuard(a *Authenticator, opts *GuardOptions) *Guard {
	var o GuardOptions
	if opts != nil {
		o = *opts
	}
	g := &Guard{auth: a, audit: o.Audit, log: o.Logger, now: o.Now}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g
}

// Authenticator returns the guard's authenticator.
func (g *Guard) Authenticator() *Authenticator { return g.auth }

// Refuse answers a refused request with status and msg.
type Refuse func(w http.ResponseWriter, r *http.Request, status int, msg string)

// Wrap returns next behind the guard. route returns the pattern of the
// route r goes to, or "" when there is none (next then answers 404 or
// 405, touching nothing). A principal already in r's context (the
// dashboard's session) is used as is; otherwise r's bearer token is
// authenticated. refuse answers 401, 403 and 503. The request's context
// ends when the principal's token is revoked or expires
// ([Authenticator.Hold]), which ends a stream.
func (g *Guard) Wrap(next http.Handler, route func(*http.Request) string, refuse Refuse) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := access.From(r.Context())
		if !ok {
			var err error
			p, err = g.auth.Request(r)
			switch {
			case errors.Is(err, ErrUnauthenticated):
				w.Header().Set("WWW-Authenticate", `Bearer realm="mailroom"`)
				refuse(w, r, http.StatusUnauthorized, err.Error())
				return
			case err != nil:
				g.log.Error("auth: authenticate", "err", err)
				w.Header().Set("Retry-After", "1")
				refuse(w, r, http.StatusServiceUnavailable, "storage unavailable; retry later")
				return
			}
		}
		// A stream lasts only as long as its credential.
		ctx, stop := g.auth.Hold(access.With(r.Context(), p), p)
		defer stop()
		pattern := route(r)
		if pattern == "" {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		if err := p.Authorize(pattern); err != nil {
			refuse(w, r, http.StatusForbidden, err.Error())
			return
		}
		if g.audit == nil || !access.Mutating(pattern) {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		ch := &audit.Change{}
		r2 := r.WithContext(audit.With(ctx, ch))
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r2)
		g.record(r2, p, pattern, ch, rec)
	})
}

// record writes the audit entry of one mutating request. A failure is
// logged: the change has happened and its answer is sent.
func (g *Guard) record(r *http.Request, p access.Principal, pattern string, ch *audit.Change, rec *recorder) {
	e := &store.AuditEntry{
		At: g.now(), Actor: p.Name, TokenID: p.TokenID, Role: string(p.Role),
		Project: ch.Project, Action: pattern, Target: ch.Target, Status: rec.status(),
		Before: ch.Before, After: ch.After,
	}
	if e.Project == "" {
		e.Project = p.Project
	}
	if e.Target == "" {
		for _, k := range []string{"id", "name"} {
			if v := r.PathValue(k); v != "" {
				e.Target = v
				break
			}
		}
	}
	if e.After == nil && !ch.Quiet && e.Status < 400 && !rec.truncated {
		if mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type")); mt == "application/json" {
			e.After = redact.JSON(rec.body.Bytes())
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	if err := g.audit.AuditInsert(ctx, e); err != nil {
		g.log.Error("audit: record entry", "action", pattern, "target", e.Target, "actor", p.Name, "err", err)
	}
}

// recorder passes an answer through and keeps its status and the start
// of its body.
type recorder struct {
	http.ResponseWriter
	code      int
	body      bytes.Buffer
	truncated bool
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if room := maxAuditBody - r.body.Len(); room > 0 {
		r.body.Write(b[:min(len(b), room)])
	}
	if len(b) > 0 && r.body.Len() >= maxAuditBody {
		r.truncated = true
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
