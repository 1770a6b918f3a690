package store

import (
	"context"
	"sync"
)

// Hub fans notifications out to in-process subscribers. Drivers embed one to
// implement [Store.Subscribe]. A Hub is safe for concurrent use; its zero
// value is ready to use.
type Hub struct {
	mu   sync.Mutex
	subs map[chan Notification]struct{}
}

// hubBuffer is each subscriber's buffer. Notifications are hints, so a full
// buffer drops rather than blocks the publisher (the writer).
const hubBuffer = 1024

// Subscribe returns a channel that receives notifications until ctx ends,
// when it is closed.
func (h *Hub) Subscribe(ctx context.Context) <-chan Notification {
	ch := make(chan Notification, hubBuffer)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = make(map[chan Notification]struct{})
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	context.AfterFunc(ctx, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		close(ch)
		h.mu.Unlock()
	})
	return ch
}

// Publish sends ns to every subscriber without blocking; a subscriber whose
// buffer is full misses them.
func (h *Hub) Publish(ns ...Notification) {
	if len(ns) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		for _, n := range ns {
			select {
			case ch <- n:
			default:
			}
		}
	}
}
