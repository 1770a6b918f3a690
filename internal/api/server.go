// Package api serves mailroom's admin REST API under /api/v1: the catalog
// (sources, destinations, connections) as resources to create, read,
// replace and delete; the pipeline's records (requests, events, deliveries
// and their attempts) as filtered, cursor-paged lists; and the operator's
// actions (retry a delivery, retry many, replay an event, pause and resume a
// destination).
//
// Every body in and out is JSON. Errors are {"error": "..."} with a status
// that says whose fault it is: 400 for bad input (the message names the
// field or parameter), 401 without the bearer token, 404 for a missing
// resource, 405 for a method a path does not take, 409 for a conflict, 413
// for an oversized body and 503 when storage fails (the cause is logged, not
// shown).
//
// The API never shows a secret: verification secrets and passwords, signing
// secrets and sensitive destination header values come back as "********".
// Sending that mask back unchanged in a PUT keeps the stored value, so a
// client may GET, edit and PUT a resource without knowing its secrets.
//
// GET /api/v1/openapi.json serves the OpenAPI 3.1 document of all of this
// (openapi.yaml beside this file, embedded); tests check that it describes
// every route and validate real answers against it.
//
// The package reads and writes only through [store.Store]. After every
// catalog change it reloads the [catalog.Catalog] it was given, so ingest on
// this instance sees the change at once; other instances pick it up from the
// store's change notification.
package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/project"
	"github.com/mailroomhq/mailroom/internal/reload"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/task"
)

// Prefix is the path under which [Server.Register] mounts the API.
const Prefix = "/api/v1/"

// MaxBodyBytes caps the size of a request body the API reads.
const MaxBodyBytes = 1 << 20

// reloadTimeout bounds the catalog reload that follows a change.
const reloadTimeout = 10 * time.Second

// Options tunes a Server.
type Options struct {
	// Token is the static admin token (api.token) a request may carry in
	// its Authorization header. Used only when Guard is nil.
	Token string
	// Guard authenticates, authorizes and audits every request. If nil,
	// one is built from Token and the store's tokens and audit log. With
	// no token at all the API asks for none; cmd/mailroom allows that
	// only on a loopback listener.
	Guard *auth.Guard
	// Logger receives storage errors and failed catalog reloads. If nil,
	// they are discarded.
	Logger *slog.Logger
	// Now is the clock used for retries and queue ages. If nil, time.Now.
	Now func() time.Time
	// Alerts, if non-nil, serves GET /alerts. If nil, that list is empty.
	Alerts AlertLister
	// Tasks, if non-nil, serves POST /tasks: it creates the wait tasks and
	// completes them. If nil, POST /tasks answers 501.
	Tasks *task.Tasks
	// Streams, when it ends, ends long-lived responses (the event stream),
	// so that a shutdown does not wait on them. Nil means never.
	Streams context.Context
	// Reload, if non-nil, serves POST /reload ([reload.Reloader.Reload]):
	// it re-reads the config file and applies it whole or not at all,
	// answering 200 with what it did, 422 with every reason when the file
	// was refused (lines naming file:line: field), or 503 when storage
	// failed. If nil, /reload answers 404.
	Reload func(ctx context.Context) (*reload.Result, error)
	// Projects are the declared projects and their limits: GET /projects
	// shows them, and a destination over its project's max_destinations
	// is refused. If nil, no project is declared.
	Projects *project.Projects
}

// Server is the admin API. Build it with [New] and mount it with
// [Server.Register]. It is safe for concurrent use.
type Server struct {
	// openapi is the OpenAPI document, as JSON.
	openapi      []byte
	store        store.Store
	catalog      *catalog.Catalog
	alerts       AlertLister
	reloadConfig func(ctx context.Context) (*reload.Result, error)
	tasks        *task.Tasks
	projects     *project.Projects
	streams      context.Context
	log          *slog.Logger
	now          func() time.Time
	// guard authenticates, authorizes and audits every request.
	guard *auth.Guard
	// handler is the guarded router.
	handler http.Handler
	mux     *http.ServeMux
	// patterns are the routes' patterns, in registration order.
	patterns []string
	// catalogMu serialises catalog writes made through this server, so
	// that a create's existence check and its write are not interleaved
	// with another create of the same name. Writes from other instances
	// are not covered.
	catalogMu sync.Mutex
}

// New returns a Server that reads and writes s and reloads cat after every
// catalog change. s and cat must not be nil.
func New(s store.Store, cat *catalog.Catalog, opts *Options) *Server {
	if s == nil || cat == nil {
		panic("api.New: nil store or catalog")
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
	doc, err := OpenAPIJSON()
	if err != nil {
		panic("api.New: the embedded OpenAPI document is broken: " + err.Error())
	}
	if o.Guard == nil {
		o.Guard = auth.NewGuard(auth.New(&auth.Options{Store: s, Logger: o.Logger, Now: o.Now,
			Static: []auth.Static{auth.AdminToken(o.Token)}}),
			&auth.GuardOptions{Audit: s, Logger: o.Logger, Now: o.Now})
	}
	a := &Server{openapi: doc, store: s, catalog: cat, alerts: o.Alerts, reloadConfig: o.Reload, tasks: o.Tasks, projects: o.Projects, streams: cmp.Or[context.Context](o.Streams, context.Background()), log: o.Logger, now: o.Now, mux: http.NewServeMux(),
		guard: o.Guard}
	a.routes()
	a.handler = a.guard.Wrap(http.HandlerFunc(a.dispatch), func(r *http.Request) string {
		_, pattern := a.mux.Handler(r)
		return pattern
	}, func(w http.ResponseWriter, _ *http.Request, status int, msg string) { writeError(w, status, msg) })
	return a
}

// Register mounts the API on mux under [Prefix].
func (a *Server) Register(mux *http.ServeMux) {
	mux.Handle(Prefix, a)
}

// RegisterDisabled mounts, where the API would be, an answer saying why it
// is off: every path under /api/ answers 403 {"error": reason}, so that a
// client learns what to change instead of seeing a 404.
func RegisterDisabled(mux *http.ServeMux, reason string) {
	mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusForbidden, "admin API disabled: "+reason)
	})
}

func (a *Server) routes() {
	sources, destinations, connections := a.sourcesResource(), a.destinationsResource(), a.connectionsResource()
	for _, r := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET /api/v1/sources", sources.handleList(a)},
		{"POST /api/v1/sources", sources.handleCreate(a)},
		{"GET /api/v1/sources/{name}", sources.handleGet(a)},
		{"PUT /api/v1/sources/{name}", sources.handlePut(a)},
		{"DELETE /api/v1/sources/{name}", sources.handleDelete(a)},

		{"GET /api/v1/destinations", destinations.handleList(a)},
		{"POST /api/v1/destinations", destinations.handleCreate(a)},
		{"GET /api/v1/destinations/{name}", destinations.handleGet(a)},
		{"PUT /api/v1/destinations/{name}", destinations.handlePut(a)},
		{"DELETE /api/v1/destinations/{name}", destinations.handleDelete(a)},
		{"POST /api/v1/destinations/{name}/pause", a.destinationPause},
		{"POST /api/v1/destinations/{name}/resume", a.destinationResume},

		{"GET /api/v1/connections", connections.handleList(a)},
		{"POST /api/v1/connections", connections.handleCreate(a)},
		{"GET /api/v1/connections/{id}", connections.handleGet(a)},
		{"PUT /api/v1/connections/{id}", connections.handlePut(a)},
		{"DELETE /api/v1/connections/{id}", connections.handleDelete(a)},
		{"POST /api/v1/connections/{id}/transform/test", a.transformTest},

		{"GET /api/v1/requests", a.requestList},
		{"GET /api/v1/requests/{id}", a.requestGet},

		{"GET /api/v1/events", a.eventList},
		{"GET /api/v1/events/stream", a.eventStream},
		{"GET /api/v1/events/{id}", a.eventGet},
		{"POST /api/v1/events/{id}/listen-attempts", a.listenAttempt},
		{"POST /api/v1/events/{id}/replay", a.eventReplay},

		{"GET /api/v1/deliveries", a.deliveryList},
		{"POST /api/v1/deliveries/retry", a.deliveryRetryMany},
		{"GET /api/v1/deliveries/{id}", a.deliveryGet},
		{"GET /api/v1/deliveries/{id}/attempts", a.attemptList},
		{"POST /api/v1/deliveries/{id}/retry", a.deliveryRetry},

		{"GET /api/v1/stats", a.stats},

		{"GET /api/v1/tasks", a.taskList},
		{"GET /api/v1/tasks/{id}", a.taskGet},
		{"POST /api/v1/tasks", a.taskCreate},
		{"POST /api/v1/tasks/{id}/cancel", a.taskCancel},

		{"GET /api/v1/alerts", a.alertList},

		{"POST /api/v1/reload", a.configReload},

		{"GET /api/v1/projects", a.projectList},

		{"GET /api/v1/openapi.json", openAPIHandler(a.openapi)},

		{"GET /api/v1/tokens", a.tokenList},
		{"POST /api/v1/tokens", a.tokenCreate},
		{"DELETE /api/v1/tokens/{id}", a.tokenRevoke},

		{"GET /api/v1/audit", a.auditList},
	} {
		a.mux.HandleFunc(r.pattern, r.h)
		a.patterns = append(a.patterns, r.pattern)
	}
}

// Patterns returns the pattern of every route the API serves ("POST
// /api/v1/destinations"), so that tests can walk them all.
func (a *Server) Patterns() []string { return slices.Clone(a.patterns) }

// ServeHTTP authenticates the request, checks its principal may call the
// route (internal/access's permission table), dispatches it, and records
// it in the audit log if it changes something. Unknown paths and methods
// get JSON errors like every other failure.
func (a *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	a.handler.ServeHTTP(w, r)
}

// dispatch routes an authorized request.
func (a *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern == "" {
		// No route: let the mux decide between 404, 405 and a redirect to
		// the canonical path, then answer in JSON.
		h, _ := a.mux.Handler(r)
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path))
		case http.StatusMovedPermanently, http.StatusPermanentRedirect, http.StatusTemporaryRedirect, http.StatusFound:
			w.Header().Set("Location", rec.header.Get("Location"))
			writeError(w, rec.status, "see "+rec.header.Get("Location"))
		default:
			writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
		}
		return
	}
	a.mux.ServeHTTP(w, r)
}

// statusRecorder captures what the mux's own 404, 405 and redirect
// handlers write, so that ServeHTTP can answer in JSON instead.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}

func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
}

// errorBody is the JSON body of every error.
type errorBody struct {
	Error string `json:"error"`
}

// list is the JSON body of every list.
type list[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// badRequest is an input error: its message is shown to the client with a
// 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error {
	return &badRequest{msg: fmt.Sprintf(format, args...)}
}

// fail answers for err: a [badRequest] is 400, [store.ErrNotFound] is 404
// with notFound as its message, [store.ErrDuplicate] is 409, anything else
// is logged and answered 503, since it is storage failing rather than the
// client.
func (a *Server) fail(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	var bad *badRequest
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, bad.msg)
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit))
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, notFound)
	case errors.Is(err, store.ErrDuplicate):
		writeError(w, http.StatusConflict, "the resource already exists")
	case errors.Is(err, project.ErrTooManyDestinations):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		writeError(w, http.StatusServiceUnavailable, "request canceled")
	default:
		a.log.Error("api: storage error", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "storage unavailable; retry later")
	}
}

// decode reads r's JSON body into v: at most [MaxBodyBytes], one value, no
// unknown fields. An empty body is an error unless optional is set, in which
// case v is left alone.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return badf("read request body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if optional {
			return nil
		}
		return badf("request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	dec.UseNumber() // a number held as any (a wait's match value) keeps its exact text
	if err := dec.Decode(v); err != nil {
		return badf("invalid JSON body: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badf("invalid JSON body: unexpected data after the JSON object")
	}
	if escapesNUL(body) {
		// No field takes one, and PostgreSQL's text refuses it: the write
		// would fail as "storage unavailable".
		return badf("invalid JSON body: a string holds NUL (\\u0000)")
	}
	return nil
}

// escapesNUL reports whether body, valid JSON, has a string holding NUL,
// which JSON can only write as the escape \u0000.
func escapesNUL(body []byte) bool {
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' || i+1 >= len(body) {
			continue
		}
		if body[i+1] == 'u' && i+6 <= len(body) && string(body[i+2:i+6]) == "0000" {
			return true
		}
		i++ // the escaped character: \\ is not the start of another escape
	}
	return false
}

// describeJSONError turns a decoding error into a message that names the
// field at fault.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return fmt.Sprintf("field %s: cannot use a JSON %s as %s", typeErr.Field, typeErr.Value, typeErr.Type)
		}
		return fmt.Sprintf("cannot use a JSON %s here; want %s", typeErr.Value, typeErr.Type)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("syntax error at byte %d: %v", syntaxErr.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of JSON"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
