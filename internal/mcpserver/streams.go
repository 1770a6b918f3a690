package mcpserver

import (
	"encoding/json"
	"sync"

	"github.com/mailroomhq/mailroom/internal/mcpwire"
	"github.com/mailroomhq/mailroom/internal/store"
)

// listener is one 2026-07-28 subscriptions/listen stream with task ids.
type listener struct {
	stream *mcpwire.SSEStream
	// subID is the listen request's id, echoed in each notification's _meta.
	subID json.RawMessage
}

// streamRegistry routes task status notifications to the streams that
// want them: legacy sessions' GET streams by session id, and listeners by
// task id.
type streamRegistry struct {
	mu        sync.Mutex
	sessions  map[string]*mcpwire.SSEStream
	listeners map[string]map[*listener]bool
}

func newStreamRegistry() *streamRegistry {
	return &streamRegistry{sessions: map[string]*mcpwire.SSEStream{}, listeners: map[string]map[*listener]bool{}}
}

func (r *streamRegistry) addSession(id string, s *mcpwire.SSEStream) func() {
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

// publishTask sends t's status to the streams that want it: sessionNote
// (nil when t's wire form has none) to the session that created it, and
// notifications/tasks to listeners of its id.
func (r *streamRegistry) publishTask(t *store.Task, sessionNote []byte) {
	r.mu.Lock()
	sess := r.sessions[t.SessionID]
	var ls []*listener
	for l := range r.listeners[t.ID] {
		ls = append(ls, l)
	}
	r.mu.Unlock()
	if sessionNote != nil && sess != nil && t.SessionID != "" {
		sess.Send(sessionNote)
	}
	for _, l := range ls {
		l.stream.Send(listenerNotification(t, l.subID))
	}
}
