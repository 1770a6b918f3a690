package mcpserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/mailroomhq/mailroom/internal/store"
)

// sseStream is an SSE response that the SDK writes its events into and
// that mailroom may inject notifications into. Every write holds mu, so
// injected events never interleave with the SDK's; after the handler
// returns, closed stops injection (writing then would race).
type sseStream struct {
	http.ResponseWriter
	mu      sync.Mutex
	started bool
	closed  bool
}

// WriteHeader implements http.ResponseWriter.
func (s *sseStream) WriteHeader(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = true
	s.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (s *sseStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, http.ErrHandlerTimeout
	}
	s.started = true
	return s.ResponseWriter.Write(p)
}

// Flush implements http.Flusher, which the SDK needs to stream.
func (s *sseStream) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		_ = http.NewResponseController(s.ResponseWriter).Flush()
	}
}

// close stops further writes; call it before the handler returns.
func (s *sseStream) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// send writes one JSON-RPC message as an SSE event and flushes it.
func (s *sseStream) send(msg []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.started {
		return false
	}
	if _, err := fmt.Fprintf(s.ResponseWriter, "event: message\ndata: %s\n\n", msg); err != nil {
		return false
	}
	return http.NewResponseController(s.ResponseWriter).Flush() == nil
}

// listener is one 2026-07-28 subscriptions/listen stream with task ids.
type listener struct {
	stream *sseStream
	// subID is the listen request's id, echoed in each notification's _meta.
	subID json.RawMessage
}

// streamRegistry routes task status notifications to the streams that
// want them: legacy sessions' GET streams by session id, and listeners by
// task id.
type streamRegistry struct {
	mu        sync.Mutex
	sessions  map[string]*sseStream
	listeners map[string]map[*listener]bool
}

func newStreamRegistry() *streamRegistry {
	return &streamRegistry{sessions: map[string]*sseStream{}, listeners: map[string]map[*listener]bool{}}
}

func (r *streamRegistry) addSession(id string, s *sseStream) func() {
	r.mu.Lock()
	r.sessions[id] = s
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		if r.sessions[id] == s {
			delete(r.sessions, id)
		}
		r.mu.Unlock()
	}
}

func (r *streamRegistry) addListener(l *listener, taskIDs []string) func() {
	r.mu.Lock()
	for _, id := range taskIDs {
		if r.listeners[id] == nil {
			r.listeners[id] = map[*listener]bool{}
		}
		r.listeners[id][l] = true
	}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		for _, id := range taskIDs {
			delete(r.listeners[id], l)
			if len(r.listeners[id]) == 0 {
				delete(r.listeners, id)
			}
		}
		r.mu.Unlock()
	}
}

// interested reports whether any stream might want task id's status.
func (r *streamRegistry) interested(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions) > 0 || len(r.listeners[id]) > 0
}

func notification(method string, params any) []byte {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
	return b
}

// modernTaskNotification is notifications/tasks for a listener.
func modernTaskNotification(t *store.Task, subID json.RawMessage) []byte {
	params := objectOf(toModern(t))
	params["_meta"] = map[string]any{"io.modelcontextprotocol/subscriptionId": subID}
	return notification("notifications/tasks", params)
}

// publishTask sends t's status to the streams that want it.
func (r *streamRegistry) publishTask(t *store.Task) {
	r.mu.Lock()
	sess := r.sessions[t.SessionID]
	var ls []*listener
	for l := range r.listeners[t.ID] {
		ls = append(ls, l)
	}
	r.mu.Unlock()
	if !isModern(t.Protocol) && sess != nil && t.SessionID != "" {
		sess.send(notification("notifications/tasks/status", toLegacy(t)))
	}
	for _, l := range ls {
		l.stream.send(modernTaskNotification(t, l.subID))
	}
}
