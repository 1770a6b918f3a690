package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// streamKeepAlive is how often an idle stream sends a comment, so that
// proxies keep it open and a dead client is noticed.
const streamKeepAlive = 15 * time.Second

// streamEvent is the data of one server-sent event.
type streamEvent struct {
	ID          string `json:"id"`
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination,omitempty"`
}

// stream is the live tail: a text/event-stream that forwards the store's
// notifications as hints ("created" for a new event, "task" for a task
// change, "delivery" when a delivery becomes due). The script refetches
// the part of the page it shows, so filters apply as on a reload, and a
// missed hint costs only freshness.
func (w *Server) stream(rw http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(rw)
	// The server's write timeout is meant for pages; a stream lives until
	// the client leaves or the server stops.
	_ = rc.SetWriteDeadline(time.Time{})
	h := rw.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	rw.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(rw, "retry: 3000\n: live\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	ctx := r.Context()
	notes := w.store.Subscribe(ctx)
	tick := time.NewTicker(streamKeepAlive)
	defer tick.Stop()
	for {
		var msg string
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case <-tick.C:
			msg = ": ping\n\n"
		case n, ok := <-notes:
			if !ok {
				return
			}
			var kind string
			switch n.Kind {
			case store.NotifyEventCreated:
				kind = "created"
			case store.NotifyTaskChanged:
				kind = "task"
			case store.NotifyDeliveryDue:
				kind = "delivery"
			default:
				continue
			}
			if (n.Source != "" && !sees(ctx, store.ProjectOf(n.Source))) || (n.Destination != "" && !sees(ctx, store.ProjectOf(n.Destination))) {
				continue // another project's
			}
			b, _ := json.Marshal(streamEvent{ID: n.ID, Source: n.Source, Destination: n.Destination})
			msg = "event: " + kind + "\ndata: " + string(b) + "\n\n"
		}
		if _, err := fmt.Fprint(rw, msg); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
