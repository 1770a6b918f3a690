package store

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// IDGenerator makes prefixed, time-sortable ids ("evt_01jd…"): a ULID in
// lower case, so ids sort in creation order and cursors can page by id.
// Within one generator ids are strictly increasing, even within one
// millisecond. It is safe for concurrent use; the zero value is not usable,
// call [NewIDGenerator].
type IDGenerator struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
	last    uint64
}

// NewIDGenerator returns a generator seeded from crypto/rand.
func NewIDGenerator() *IDGenerator {
	return &IDGenerator{entropy: ulid.Monotonic(rand.Reader, 0)}
}

// New returns a fresh id with the given prefix ("req", "evt", "dlv", "att")
// stamped with t, or with the last stamp used if t is earlier, to keep ids
// increasing when the clock steps back.
func (g *IDGenerator) New(prefix string, t time.Time) string {
	g.mu.Lock()
	ms := ulid.Timestamp(t)
	if ms < g.last {
		ms = g.last
	}
	g.last = ms
	id, err := ulid.New(ms, g.entropy)
	if err != nil {
		// Entropy overflow within one millisecond: move to the next one.
		g.last++
		id = ulid.MustNew(g.last, g.entropy)
	}
	g.mu.Unlock()
	return prefix + "_" + strings.ToLower(id.String())
}
