package ingest

import (
	"sync"
	"time"
)

// warnLimiter lets one warning per key through per interval and counts the
// ones it holds back, so that a misconfigured source logs once, not once
// per request. It is safe for concurrent use. Keys are source names that
// exist in the catalog, so the map stays as small as the catalog.
type warnLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
	held  map[string]int
}

func newWarnLimiter(every time.Duration) *warnLimiter {
	return &warnLimiter{every: every, last: map[string]time.Time{}, held: map[string]int{}}
}

// allow reports whether a warning for key may be logged at now, and how
// many were held back since the last one that was.
func (l *warnLimiter) allow(key string, now time.Time) (held int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, seen := l.last[key]; seen && now.Sub(last) < l.every {
		l.held[key]++
		return 0, false
	}
	held = l.held[key]
	l.last[key] = now
	delete(l.held, key)
	return held, true
}
