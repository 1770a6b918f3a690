package sqlstore

import (
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// recentBytes bounds what [recentRequests] holds: at 10,000 requests of
// 1.5 KB a second, about two seconds of ingest, which is as far as
// delivery trails ingest when it keeps pace.
const recentBytes = 32 << 20

// recentRequests holds the requests this store ingested last, with their
// routed deliveries still to make, so that a delivery of a fresh event
// does not read back from the database what this process has just
// written (one read per delivery was a tenth of the CPU of ingest with
// delivery). It is only a copy: the row, committed before the request
// was acknowledged, stays the truth, and a request that is not here is
// read from the database. Entries are dropped oldest first past
// recentBytes, and all of them when history is pruned. Safe for
// concurrent use.
type recentRequests struct {
	mu    sync.Mutex
	byID  map[string]*store.Request
	order []recentEntry // insertion order; head is the oldest live one
	head  int
	bytes int
}

type recentEntry struct {
	id   string
	size int
}

func newRecentRequests() *recentRequests {
	return &recentRequests{byID: map[string]*store.Request{}}
}

// size is what r costs the cache: body, headers and a fixed overhead.
func size(r *store.Request) int {
	n := len(r.Body) + len(r.Path) + len(r.Query) + 256
	for k, vs := range r.Headers {
		n += len(k)
		for _, v := range vs {
			n += len(v) + 16
		}
	}
	return n
}

// add keeps r, which was just committed as row id. r must not be changed
// afterwards.
func (c *recentRequests) add(r *store.Request) {
	n := size(r)
	if n > recentBytes/64 {
		return // large bodies are read back from the database
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byID[r.ID] = r
	c.order = append(c.order, recentEntry{r.ID, n})
	c.bytes += n
	for c.bytes > recentBytes && c.head < len(c.order) {
		e := c.order[c.head]
		c.order[c.head] = recentEntry{}
		c.head++
		delete(c.byID, e.id)
		c.bytes -= e.size
	}
	// Compact the queue once its dead head is as long as its live tail.
	if c.head > 1024 && c.head*2 > len(c.order) {
		c.order = append(c.order[:0], c.order[c.head:]...)
		c.head = 0
	}
}

// get returns a copy of request id if it is held; the copy's headers are
// its own, its body is shared and must not be changed.
func (c *recentRequests) get(id string) (*store.Request, bool) {
	c.mu.Lock()
	r, ok := c.byID[id]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	cp := *r
	cp.Headers = r.Headers.Clone()
	return &cp, true
}

// clear forgets everything.
func (c *recentRequests) clear() {
	c.mu.Lock()
	clear(c.byID)
	c.order, c.head, c.bytes = nil, 0, 0
	c.mu.Unlock()
}

// recentCopy is the request row RequestIngest wrote for r, as a read
// returns it: times in microseconds, UTC.
func recentCopy(r *store.Request, id, eventID string) *store.Request {
	cp := *r
	cp.ID, cp.EventID, cp.Headers = id, eventID, r.Headers.Clone()
	cp.ReceivedAt = time.UnixMicro(r.ReceivedAt.UnixMicro()).UTC()
	cp.Status, cp.Reason, cp.HTTPStatus = store.RequestAccepted, "", 200
	return &cp
}
