package mcpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/mcpwire"
	"github.com/mailroomhq/mailroom/internal/store"
)

// HTTPOptions configures [Server.HTTPHandler].
type HTTPOptions struct {
	// Auth authenticates requests (static tokens, OAuth access tokens):
	// the identity a request's tasks belong to is the UserID of the
	// TokenInfo it sets. Nil or empty means no authentication (loopback
	// listeners only): every caller is Options.DefaultOwner. Origin and
	// Host checks are not done here but by internal/httpguard in front of
	// every operator route.
	Auth *mcpauth.Guard
	// MaxBodyBytes caps a request body. Zero means 4 MiB.
	MaxBodyBytes int64
}

// HTTPHandler serves Streamable HTTP at the path it is mounted on. It
// routes 2026-07-28 requests to a stateless SDK handler and older ones to
// a stateful one, and adds what the SDK withholds: the legacy params.task,
// task status on legacy GET streams, and subscriptions/listen with taskIds.
func (s *Server) HTTPHandler(opts *HTTPOptions) http.Handler {
	o := HTTPOptions{}
	if opts != nil {
		o = *opts
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 20
	}
	getServer := func(*http.Request) *mcp.Server { return s.mcp }
	h := &httpShim{
		srv: s, opts: o,
		// The event store gives POST streams their priming event and
		// lets a client resume a broken stream with Last-Event-ID.
		legacy: mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{Logger: s.sdkLog(), DisableLocalhostProtection: true, EventStore: mcp.NewMemoryEventStore(nil)}),
		modern: mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{Logger: s.sdkLog(), Stateless: true, DisableLocalhostProtection: true}),
	}
	if o.Auth == nil || o.Auth.Empty() {
		return h
	}
	return o.Auth.Wrap(h)
}

type httpShim struct {
	srv    *Server
	opts   HTTPOptions
	legacy http.Handler
	modern http.Handler
}

// peek is what the shim needs to know of a JSON-RPC message.
type peek struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method"`
	Params struct {
		Meta   map[string]any `json:"_meta"`
		TaskID any            `json:"taskId"`
	} `json:"params"`
}

// isRequest reports whether the message expects an answer.
func (p *peek) isRequest() bool { return len(p.ID) > 0 && string(p.ID) != "null" }

func (h *httpShim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	version := r.Header.Get("Mcp-Protocol-Version")
	switch r.Method {
	case http.MethodPost:
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				http.Error(w, fmt.Sprintf("request body over %d bytes", h.opts.MaxBodyBytes), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		var p peek
		single := json.Unmarshal(body, &p) == nil // batches and junk pass through
		if single && (p.Method == "server/discover" || stateless(metaProtocol(p.Params.Meta))) {
			version = max(version, ProtocolModern)
		}
		if single && p.Method == "events/stream" {
			if !h.srv.opts.EventsExtension {
				eventsUnsupported(w, p.ID)
				return
			}
			h.streamEvents(w, r, body, p.ID)
			return
		}
		if stateless(version) {
			if single {
				id, _ := p.Params.TaskID.(string)
				if err := mcpwire.CheckTaskName(r.Header, p.Method, id); err != nil {
					writeRPCError(w, p.ID, http.StatusBadRequest, err)
					return
				}
				if p.Method == "subscriptions/listen" && h.listenTasks(w, r, body, p) {
					return
				}
			}
			h.forward(h.modern, w, r, body)
			return
		}
		if !single {
			h.forward(h.legacy, w, r, body)
			return
		}
		if p.Method != "initialize" && r.Header.Get("Mcp-Session-Id") == "" {
			writeRPCError(w, p.ID, http.StatusBadRequest, rpcError(jsonrpc.CodeInvalidRequest,
				"%s without an Mcp-Session-Id header: send initialize first and pass the session id it returns", cmpOr(p.Method, "a message")))
			return
		}
		if p.Method == "tools/call" {
			body = mcpwire.MoveTaskParam(body, internalTaskKey)
		}
		h.upgradeVersion(r)
		lw := &legacyPostWriter{ResponseWriter: w, id: p.ID, retry: h.srv.opts.PollInterval}
		defer lw.finish()
		h.forward(h.legacy, lw, r, body)
	case http.MethodGet:
		if stateless(version) {
			h.modern.ServeHTTP(w, r)
			return
		}
		stream := mcpwire.NewSSEStream(w, false)
		id := r.Header.Get("Mcp-Session-Id")
		if id == "" {
			defer stream.Close()
			h.legacy.ServeHTTP(stream, r)
			return
		}
		// The stream becomes the session's only once the SDK accepts it:
		// a GET it refuses (an unknown session, another token's session)
		// must neither receive the session's notifications nor displace
		// its stream.
		as := &acceptedStream{SSEStream: stream, accept: func() func() { return h.srv.streams.addSession(id, stream) }}
		defer as.unregister()
		defer stream.Close()
		h.legacy.ServeHTTP(as, r)
	default:
		if stateless(version) {
			h.modern.ServeHTTP(w, r)
			return
		}
		h.legacy.ServeHTTP(w, r)
	}
}

// acceptedStream calls accept when the SDK starts a 200 response on the
// stream (explicitly, or implicitly by writing), and never for another
// status.
type acceptedStream struct {
	*mcpwire.SSEStream
	accept func() (unregister func())
	once   sync.Once
	mu     sync.Mutex
	undo   func()
}

func (a *acceptedStream) WriteHeader(code int) {
	a.once.Do(func() {
		if code == http.StatusOK {
			a.accepted()
		}
	})
	a.SSEStream.WriteHeader(code)
}

func (a *acceptedStream) Write(p []byte) (int, error) {
	a.once.Do(a.accepted) // a write without WriteHeader is a 200
	return a.SSEStream.Write(p)
}

func (a *acceptedStream) accepted() {
	undo := a.accept()
	a.mu.Lock()
	a.undo = undo
	a.mu.Unlock()
}

// unregister undoes accept, if it ran.
func (a *acceptedStream) unregister() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.undo != nil {
		a.undo()
	}
}

// upgradeVersion makes a 2025-11-25 session's POST carry its negotiated
// revision when the client's header names an older one, so the session
// gets what it negotiated (priming events, among others).
func (h *httpShim) upgradeVersion(r *http.Request) {
	id, header := r.Header.Get("Mcp-Session-Id"), r.Header.Get("Mcp-Protocol-Version")
	if header >= ProtocolLegacy {
		return
	}
	for ss := range h.srv.mcp.Sessions() {
		if ss.ID() != id {
			continue
		}
		if ip := ss.InitializeParams(); ip != nil && ip.ProtocolVersion >= ProtocolLegacy {
			r.Header.Set("Mcp-Protocol-Version", ProtocolLegacy) // a newer request negotiates 2025-11-25
		}
		return
	}
}

// legacyPostWriter adjusts the SDK's answer to a 2025-11-25 POST: it adds
// a retry: field to the priming event, telling the client how soon to
// reconnect, and turns the SDK's plain-text refusal of an unknown method
// into the JSON-RPC -32601 error the revision expects.
type legacyPostWriter struct {
	http.ResponseWriter
	id    json.RawMessage
	retry time.Duration

	wrote   bool // a body write went through
	refused bool // the SDK answered a plain-text 400, held in held
	held    bytes.Buffer
}

// notHandled starts the SDK's refusal of a method it does not have.
const notHandled = "JSON RPC not handled"

func (w *legacyPostWriter) WriteHeader(code int) {
	if code == http.StatusBadRequest && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.refused = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *legacyPostWriter) Write(p []byte) (int, error) {
	if w.refused {
		return w.held.Write(p)
	}
	if !w.wrote {
		w.wrote = true
		if rest, ok := bytes.CutPrefix(p, []byte("event: prime\n")); ok && !bytes.Contains(rest, []byte("retry:")) {
			var b bytes.Buffer
			b.WriteString("event: prime\n")
			idLine, data, _ := bytes.Cut(rest, []byte("\n"))
			b.Write(idLine)
			fmt.Fprintf(&b, "\nretry: %d\n", w.retry.Milliseconds())
			b.Write(data)
			if _, err := w.ResponseWriter.Write(b.Bytes()); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController flush the stream.
func (w *legacyPostWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish sends what was held back: -32601 for an unknown method, the
// SDK's own 400 otherwise.
func (w *legacyPostWriter) finish() {
	if !w.refused {
		return
	}
	if bytes.HasPrefix(w.held.Bytes(), []byte(notHandled)) {
		w.Header().Del("X-Content-Type-Options")
		writeRPCError(w.ResponseWriter, w.id, http.StatusOK, rpcError(jsonrpc.CodeMethodNotFound, "method not found: %s", strings.TrimSpace(strings.TrimPrefix(w.held.String(), notHandled+":"))))
		return
	}
	w.ResponseWriter.WriteHeader(http.StatusBadRequest)
	_, _ = w.ResponseWriter.Write(w.held.Bytes())
}

// stateless reports whether a request of protocol revision v goes to the
// stateless SDK handler: 2026-07-28 and later have no sessions.
func stateless(v string) bool { return v >= ProtocolModern }

func (h *httpShim) forward(to http.Handler, w http.ResponseWriter, r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	to.ServeHTTP(w, r)
}

// listenParams is the part of subscriptions/listen the shim serves.
type listenParams struct {
	Meta          map[string]any `json:"_meta"`
	Notifications map[string]any `json:"notifications"`
}

// listenTasks serves a 2026-07-28 subscriptions/listen that asks for task
// ids, which the SDK would drop. It reports false for other listens.
func (h *httpShim) listenTasks(w http.ResponseWriter, r *http.Request, body []byte, p peek) bool {
	var msg struct {
		Params listenParams `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Params.Notifications == nil {
		return false
	}
	rawIDs, ok := msg.Params.Notifications["taskIds"]
	if !ok {
		return false
	}
	if !metaHasTasks(msg.Params.Meta) {
		writeRPCError(w, p.ID, http.StatusBadRequest, missingExtension())
		return true
	}
	if len(msg.Params.Notifications) > 1 {
		writeRPCError(w, p.ID, http.StatusOK, rpcError(-32602, "subscriptions/listen: taskIds cannot be combined with other notifications in one listen; open a second listen for them"))
		return true
	}
	var ids []string
	for _, v := range asSlice(rawIDs) {
		if id, ok := v.(string); ok {
			ids = append(ids, id)
		}
	}
	owner := h.srv.opts.DefaultOwner
	if ti := auth.TokenInfoFromContext(r.Context()); ti != nil && ti.UserID != "" {
		owner = ti.UserID
	}
	var agreed []string
	var tasks []*store.Task
	for _, id := range ids {
		t, err := h.srv.store.TaskGet(r.Context(), id, h.srv.now())
		if err != nil || t.Owner != owner {
			continue // unknown, expired or someone else's: not agreed
		}
		agreed = append(agreed, id)
		tasks = append(tasks, t)
	}
	subID := p.ID
	if len(subID) == 0 {
		subID = json.RawMessage("null")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	stream := mcpwire.NewSSEStream(w, true)
	defer stream.Close()
	l := &listener{stream: stream, subID: subID}
	defer h.srv.streams.addListener(l, agreed)()
	if agreed == nil {
		agreed = []string{}
	}
	stream.Send(notification("notifications/subscriptions/acknowledged", map[string]any{
		"notifications": map[string]any{"taskIds": agreed},
		"_meta":         map[string]any{"io.modelcontextprotocol/subscriptionId": subID},
	}))
	for _, t := range tasks { // the current state at once, terminal or not
		stream.Send(listenerNotification(t, subID))
	}
	<-r.Context().Done()
	return true
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func writeRPCError(w http.ResponseWriter, id json.RawMessage, status int, err error) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": err})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
