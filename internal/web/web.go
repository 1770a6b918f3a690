// Package web serves mailroom's operator dashboard: server-rendered HTML
// pages at / and under /ui/ that show what the pipeline did (ingest and
// delivery rates, queues, requests, events with their deliveries and
// attempts, destinations, sources, MCP tasks) and offer the operator's
// actions (retry a delivery, replay an event, pause and resume a
// destination). New rows appear without a reload through a server-sent
// event stream fed by [store.Notifier.Subscribe].
//
// Templates, the stylesheet and the one script are embedded, so the binary
// needs no build step and no network. The pages work without JavaScript
// except for live updates and the copy buttons.
//
// The dashboard reads and acts only through [store.Store] (and
// [ingest.Replay] for replays, so both front ends route the same way). It
// never shows a secret: source verification secrets, destination signing
// secrets and credential-like headers are masked.
//
// Access is guarded by tokens: the login form exchanges the api.token or
// a stored token (internal/auth) for an HttpOnly, SameSite=Strict session
// cookie, signed with a key drawn at random when the [Server] is built (so
// a restart ends every session), that remembers the token's id. Every
// request acts for that token's principal, looked up again each time (a
// revoked token ends its sessions), and is checked against the permission
// table of internal/access by the same middleware as the API, which also
// records every action in the audit log. Pages show only the actions the
// role may take. Every POST must carry the session's CSRF token. Cross-site requests,
// foreign Host headers and posts that are not forms are refused before
// they reach the dashboard, by the guard cmd/mailroom puts in front of
// every operator route (internal/httpguard). When no token is configured
// (and no stored token exists) the dashboard is open, as the API is;
// cmd/mailroom allows that only on a loopback listener.
package web

import (
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/store"
)

// DefaultSessionTTL is how long a login lasts when [Options.SessionTTL] is
// zero.
const DefaultSessionTTL = 12 * time.Hour

// PageSize is the number of rows on one page of a list.
const PageSize = 50

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options tunes a Server.
type Options struct {
	// Token is the static admin token (api.token). Used only when Guard
	// is nil.
	Token string
	// Guard authenticates, authorizes and audits every request, as for
	// the API. If nil, one is built from Token and the store's tokens and
	// audit log. With no token at all the dashboard asks for no login;
	// cmd/mailroom allows that only on a loopback listener.
	Guard *auth.Guard
	// Logger receives storage errors. If nil, they are discarded.
	Logger *slog.Logger
	// Now is the clock used for rates, ages, retries and sessions. If nil,
	// time.Now.
	Now func() time.Time
	// SessionTTL is how long a login lasts. If zero, [DefaultSessionTTL].
	SessionTTL time.Duration
}

// Server is the dashboard. Build it with [New], mount it with
// [Server.Register], and call [Server.Close] when the HTTP server shuts
// down so that open live streams end. It is safe for concurrent use.
type Server struct {
	store   store.Store
	catalog *catalog.Catalog
	log     *slog.Logger
	now     func() time.Time
	ttl     time.Duration
	// auth finds the principal of a login and of a session; guard checks
	// and audits what it does through handler, the guarded router.
	auth    *auth.Authenticator
	guard   *auth.Guard
	handler http.Handler
	// key signs session cookies and derives CSRF tokens. It is random per
	// Server, so sessions do not outlive the process.
	key    []byte
	pages  map[string]*template.Template
	assets map[string]string // file name → URL with a content hash
	static http.Handler
	mux    *http.ServeMux
	// patterns are the routes' patterns, in registration order.
	patterns []string

	stopOnce sync.Once
	stop     chan struct{}
}

// New returns a dashboard over s that replays through cat. s and cat must
// not be nil.
func New(s store.Store, cat *catalog.Catalog, opts *Options) *Server {
	if s == nil || cat == nil {
		panic("web.New: nil store or catalog")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	w := &Server{
		store: s, catalog: cat, log: o.Logger, now: o.Now, ttl: o.SessionTTL,
		key:  make([]byte, 32),
		mux:  http.NewServeMux(),
		stop: make(chan struct{}),
	}
	rand.Read(w.key) // never fails; see crypto/rand.Read
	if o.Guard == nil {
		o.Guard = auth.NewGuard(auth.New(&auth.Options{Store: s, Logger: o.Logger, Now: o.Now, Static: []auth.Static{auth.AdminToken(o.Token)}}),
			&auth.GuardOptions{Audit: s, Logger: o.Logger, Now: o.Now})
	}
	w.guard, w.auth = o.Guard, o.Guard.Authenticator()
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic("web.New: embedded static files: " + err.Error())
	}
	w.assets = assetURLs(static)
	w.static = http.StripPrefix("/ui/static/", http.FileServerFS(static))
	w.pages = parsePages(w.funcs())
	w.routes()
	w.handler = w.guard.Wrap(w.mux, func(r *http.Request) string {
		_, pattern := w.mux.Handler(r)
		return pattern
	}, func(rw http.ResponseWriter, r *http.Request, status int, msg string) {
		w.renderError(rw, r, status, msg)
	})
	return w
}

// assetURLs maps each static file to its URL with a short content hash, so
// that browsers may cache it and still see a new build at once.
func assetURLs(static fs.FS) map[string]string {
	out := map[string]string{}
	entries, _ := fs.ReadDir(static, ".")
	for _, e := range entries {
		b, err := fs.ReadFile(static, e.Name())
		if err != nil {
			continue
		}
		sum := sha256.Sum256(b)
		out[e.Name()] = "/ui/static/" + e.Name() + "?v=" + hex.EncodeToString(sum[:6])
	}
	return out
}

// Register mounts the dashboard on mux: the overview at / and everything
// else under /ui/.
func (w *Server) Register(mux *http.ServeMux) {
	mux.Handle("GET /{$}", w)
	mux.Handle("/ui/", w)
}

// RegisterDisabled mounts, where the dashboard would be, a 403 page saying
// why it is off.
func RegisterDisabled(mux *http.ServeMux, reason string) {
	off := func(rw http.ResponseWriter, _ *http.Request) {
		http.Error(rw, "dashboard disabled: "+reason, http.StatusForbidden)
	}
	mux.HandleFunc("GET /{$}", off)
	mux.HandleFunc("/ui/", off)
}

// Close ends every open live stream, so that an HTTP server shutting down
// need not wait for them; register it with [http.Server.RegisterOnShutdown].
// Pages keep working after Close, but new streams end at once.
func (w *Server) Close() {
	w.stopOnce.Do(func() { close(w.stop) })
}

func (w *Server) routes() {
	for _, r := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET /{$}", w.overview},
		{"GET /ui/{$}", func(rw http.ResponseWriter, r *http.Request) { http.Redirect(rw, r, "/", http.StatusFound) }},
		{"GET /ui/login", w.loginPage},
		{"POST /ui/login", w.login},
		{"POST /ui/logout", w.logout},
		{"GET /ui/requests", w.requestList},
		{"GET /ui/requests/{id}", w.requestDetail},
		{"GET /ui/events", w.eventList},
		{"GET /ui/events/{id}", w.eventDetail},
		{"POST /ui/events/{id}/replay", w.eventReplay},
		{"POST /ui/deliveries/{id}/retry", w.deliveryRetry},
		{"GET /ui/destinations", w.destinationList},
		{"POST /ui/destinations/{name}/pause", w.destinationPause},
		{"POST /ui/destinations/{name}/resume", w.destinationResume},
		{"GET /ui/sources", w.sourceList},
		{"GET /ui/tasks", w.taskList},
		{"GET /ui/stream", w.stream},
	} {
		w.mux.HandleFunc(r.pattern, r.h)
		w.patterns = append(w.patterns, r.pattern)
	}
}

// Patterns returns the pattern of every route the dashboard serves ("POST
// /ui/events/{id}/replay"), so that tests can walk them all.
func (w *Server) Patterns() []string { return slices.Clone(w.patterns) }

// setSecurityHeaders sets what every answer carries: scripts and styles
// only from this origin (so no inline script can run), no framing, no MIME
// sniffing, and no full URLs (which may carry filters) leaked to other
// sites.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

// ServeHTTP sets the security headers, serves the static files, and for
// everything else checks the session (and on POST the CSRF token) before
// dispatching.
func (w *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	h := rw.Header()
	setSecurityHeaders(h)
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if strings.HasPrefix(r.URL.Path, "/ui/static/") {
			h.Set("Cache-Control", "public, max-age=86400")
			w.static.ServeHTTP(rw, r)
			return
		}
	}
	h.Set("Cache-Control", "no-store")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(rw, r.Body, maxFormBytes)
	}
	if r.URL.Path == "/ui/login" {
		w.mux.ServeHTTP(rw, r)
		return
	}
	sess, ok := w.session(r)
	if !ok {
		open, err := w.auth.Open(r.Context())
		if err != nil {
			w.storageError(rw, r, err)
			return
		}
		if !open {
			w.needLogin(rw, r)
			return
		}
		// Open mode: no login, but still a session, so that actions carry
		// a CSRF token.
		sess = w.newSession(rw, r, "")
	}
	p, err := w.auth.ByID(r.Context(), sess.tokenID)
	if errors.Is(err, auth.ErrUnauthenticated) {
		// The token was revoked or expired, or open mode ended.
		w.needLogin(rw, r)
		return
	}
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	ctx := access.With(withSession(r.Context(), sess), p)
	if r.Method == http.MethodPost && !w.validCSRF(sess, r.PostFormValue("csrf")) {
		w.renderError(rw, r.WithContext(ctx), http.StatusForbidden, "Missing or invalid CSRF token. Reload the page and try again.")
		return
	}
	w.handler.ServeHTTP(rw, r.WithContext(ctx))
}

// needLogin answers a request without a valid session: pages redirect to
// the login form and come back afterwards; actions and the stream get 401.
func (w *Server) needLogin(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path == "/ui/stream" || r.URL.Query().Has("partial") {
		w.renderError(rw, r, http.StatusUnauthorized, "Log in first.")
		return
	}
	next := r.URL.RequestURI()
	http.Redirect(rw, r, "/ui/login?next="+urlQueryEscape(next), http.StatusSeeOther)
}
