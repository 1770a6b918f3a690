package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/httpguard"
	"github.com/mailroomhq/mailroom/internal/mcpwire"
	"github.com/mailroomhq/mailroom/internal/store"
)

// HTTPOptions configures [Server.HTTPHandler].
type HTTPOptions struct {
	// Tokens maps bearer tokens to the identity they stand for. Empty
	// means no authentication (loopback listeners only): every caller is
	// Options.DefaultOwner. Origin and Host checks are not done here but
	// by internal/httpguard in front of every operator route.
	Tokens map[string]string
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
		srv: s, opts: o, tokens: httpguard.NewTokens(o.Tokens),
		legacy: mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{Logger: s.log, DisableLocalhostProtection: true}),
		modern: mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{Logger: s.log, Stateless: true, DisableLocalhostProtection: true}),
	}
	if h.tokens.Empty() {
		return h
	}
	return auth.RequireBearerToken(h.verifyToken, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
}

type httpShim struct {
	srv    *Server
	opts   HTTPOptions
	tokens *httpguard.Tokens
	legacy http.Handler
	modern http.Handler
}

func (h *httpShim) verifyToken(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	who, ok := h.tokens.Match(token)
	if !ok {
		return nil, auth.ErrInvalidToken
	}
	return &auth.TokenInfo{UserID: who, Expiration: time.Now().Add(time.Hour)}, nil
}

// peek is what the shim needs to know of a JSON-RPC message.
type peek struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method"`
	Params struct {
		Meta map[string]any `json:"_meta"`
	} `json:"params"`
}

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
		if single && (p.Method == "server/discover" || isModern(metaProtocol(p.Params.Meta))) {
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
		if isModern(version) {
			if single && p.Method == "subscriptions/listen" && h.listenTasks(w, r, body, p) {
				return
			}
			h.forward(h.modern, w, r, body)
			return
		}
		if single && p.Method == "tools/call" {
			body = mcpwire.MoveTaskParam(body, internalTaskKey)
		}
		h.forward(h.legacy, w, r, body)
	case http.MethodGet:
		if isModern(version) {
			h.modern.ServeHTTP(w, r)
			return
		}
		stream := mcpwire.NewSSEStream(w, false)
		if id := r.Header.Get("Mcp-Session-Id"); id != "" {
			defer h.srv.streams.addSession(id, stream)()
		}
		defer stream.Close()
		h.legacy.ServeHTTP(stream, r)
	default:
		if isModern(version) {
			h.modern.ServeHTTP(w, r)
			return
		}
		h.legacy.ServeHTTP(w, r)
	}
}

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
		stream.Send(modernTaskNotification(t, subID))
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
