package task

import (
	"context"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// lookBack queues the look-back of a new wait: over the events of its
// source received since its Since, newest first, it finds the oldest
// match and hands it to the wait. The wait is indexed before, so an event
// that lands meanwhile is seen by one or the other.
//
// A look-back examines at most LookBackEvents events and runs at most
// LookBackTime; it runs one page at a time in its owner's turn, so other
// owners' work goes on between its pages.
func (t *Tasks) lookBack(w *waiter) {
	spec := w.m.spec
	lb := &lookBack{
		w: w, start: t.now(),
		p: store.EventListParams{Source: spec.Source, Type: spec.Type, Since: spec.Since},
	}
	t.queue.push(w.owner, func(ctx context.Context) { t.lookBackPage(ctx, lb) })
}

// lookBack is the state of one look-back between its pages.
type lookBack struct {
	w        *waiter
	p        store.EventListParams
	start    time.Time
	examined int
	found    *EventView
}

// lookBackPage examines the next page of lb and queues the one after, or
// ends the look-back.
func (t *Tasks) lookBackPage(ctx context.Context, lb *lookBack) {
	w := lb.w
	if !t.current(w) { // finished meanwhile
		return
	}
	lb.p.Limit = min(lookBackPage, t.opts.LookBackEvents-lb.examined)
	evs, err := t.store.EventList(ctx, &lb.p)
	if err != nil {
		t.log.Warn("look back", "wait", w.key, "source", w.m.spec.Source, "err", err)
		return
	}
	for _, ev := range evs { // newest first: the last match is the oldest
		view, in, err := LoadEvent(ctx, t.store, ev)
		if err != nil {
			t.log.Warn("look back", "wait", w.key, "event", ev.ID, "err", err)
			return
		}
		if in != nil && w.m.Matches(ev, in) {
			lb.found = view
		}
	}
	lb.examined += len(evs)
	more := len(evs) == lb.p.Limit
	switch {
	case more && lb.examined < t.opts.LookBackEvents && t.now().Sub(lb.start) < t.opts.LookBackTime:
		lb.p.Cursor = evs[len(evs)-1].ID
		t.queue.push(w.owner, func(ctx context.Context) { t.lookBackPage(ctx, lb) })
		return
	case more:
		t.log.Debug("look-back cut short", "wait", w.key, "source", w.m.spec.Source, "examined", lb.examined,
			"took", t.now().Sub(lb.start), "max_events", t.opts.LookBackEvents, "max_time", t.opts.LookBackTime)
	}
	if lb.found != nil {
		t.deliver(ctx, w, lb.found)
	}
}
