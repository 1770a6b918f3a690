package sqlstore

import (
	"strconv"
	"strings"
	"sync"
)

// rebind rewrites the ? placeholders of q as $1, $2, ... for engines that
// number them. A ? inside a single-quoted literal is left alone.
func rebind(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n, quoted := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// maxRebound bounds the statements a [Rebinder] remembers; list queries
// are built from filters, so their number is bounded but not small.
const maxRebound = 1024

// Rebinder rewrites ? placeholders as $1, $2, ... for engines that number
// them (a ? inside a single-quoted literal is left alone), and remembers
// what it rewrote. Its zero value is ready; it is safe for
// concurrent use.
type Rebinder struct {
	mu sync.RWMutex
	m  map[string]string
}

// Rebind returns q with numbered placeholders.
func (r *Rebinder) Rebind(q string) string {
	r.mu.RLock()
	out, ok := r.m[q]
	r.mu.RUnlock()
	if ok {
		return out
	}
	out = rebind(q)
	r.mu.Lock()
	if r.m == nil {
		r.m = make(map[string]string)
	}
	if len(r.m) < maxRebound {
		r.m[q] = out
	}
	r.mu.Unlock()
	return out
}
