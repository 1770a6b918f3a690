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
	buf     [10]byte // the entropy of the id being made
}

// The times a ULID can carry.
var (
	ulidMinTime = time.UnixMilli(0)
	ulidMaxTime = ulid.Time(ulid.MaxTime())
)

// NewIDGenerator returns a generator seeded from crypto/rand.
func NewIDGenerator() *IDGenerator {
	return &IDGenerator{entropy: ulid.Monotonic(rand.Reader, 0)}
}

// New returns a fresh id with the given prefix ("req", "evt", "dlv", "att")
// stamped with t, or with the last stamp used if t is earlier, to keep ids
// increasing when the clock steps back, or if a ULID cannot carry t
// (before 1970 or after year 10889).
func (g *IDGenerator) New(prefix string, t time.Time) string {
	g.mu.Lock()
	ms := g.last
	if !t.Before(ulidMinTime) && !t.After(ulidMaxTime) {
		ms = max(ulid.Timestamp(t), g.last)
	}
	g.last = ms
	id, err := g.next(ms)
	if err != nil {
		// Entropy overflow within one millisecond: move to the next one.
		g.last++
		id = ulid.MustNew(g.last, g.entropy)
	}
	g.mu.Unlock()
	return format(prefix, id)
}

// next is ulid.New(ms, g.entropy) without its allocation (the entropy
// reader may keep the slice it fills, so a ULID on the stack escaped to
// the heap): the entropy is read into g.buf. Called with g.mu held.
func (g *IDGenerator) next(ms uint64) (id ulid.ULID, err error) {
	if err = id.SetTime(ms); err != nil {
		return id, err
	}
	err = g.entropy.MonotonicRead(ms, g.buf[:])
	copy(id[6:], g.buf[:])
	return id, err
}

// format returns prefix_id with the ULID in lower case, in one
// allocation (prefix + "_" + strings.ToLower(id.String()) took three,
// three ids per ingested request).
func format(prefix string, id ulid.ULID) string {
	var text [ulid.EncodedSize]byte
	_ = id.MarshalTextTo(text[:]) // fails only on a short buffer
	var b strings.Builder
	b.Grow(len(prefix) + 1 + len(text))
	b.WriteString(prefix)
	b.WriteByte('_')
	for _, c := range text {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}
