package bench

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Sink is a fast destination: it answers every POST 204, counts what it
// received, and records each delivery's lag, from the send time the
// generator wrote into the body to the moment the sink read it. It is safe
// for concurrent use; the zero value is ready to use.
type Sink struct {
	mu    sync.Mutex
	n     int
	lags  []time.Duration
	first time.Time
	last  time.Time
	bufs  sync.Pool
}

// ServeHTTP implements http.Handler.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 4096)
		bp = &b
	}
	buf := bytes.NewBuffer((*bp)[:0])
	buf.ReadFrom(r.Body)
	now := time.Now()
	lag := time.Duration(-1)
	if sent, ok := sentTime(buf.Bytes()); ok {
		lag = now.Sub(sent)
	}
	*bp = buf.Bytes()[:0]
	s.bufs.Put(bp)
	s.mu.Lock()
	s.n++
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
	if lag >= 0 {
		s.lags = append(s.lags, lag)
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// sentTime reads the send time that [appendBody] wrote.
func sentTime(body []byte) (time.Time, bool) {
	i := bytes.Index(body, []byte(sentKey))
	if i < 0 {
		return time.Time{}, false
	}
	rest := body[i+len(sentKey):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	ns, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// Count returns how many deliveries the sink has received.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// SinkStats is what a [Sink] saw.
type SinkStats struct {
	// Received counts deliveries.
	Received int `json:"received"`
	// Lag is from the generator's send to the sink's receipt.
	Lag Percentiles `json:"lag"`
	// First and Last are when the first and last deliveries arrived.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// Stats returns what the sink has seen so far.
func (s *Sink) Stats() SinkStats {
	s.mu.Lock()
	lags := slices.Clone(s.lags)
	st := SinkStats{Received: s.n, First: s.first, Last: s.last}
	s.mu.Unlock()
	st.Lag = percentiles(lags)
	return st
}

// Reset forgets everything received so far.
func (s *Sink) Reset() {
	s.mu.Lock()
	s.n, s.lags, s.first, s.last = 0, nil, time.Time{}, time.Time{}
	s.mu.Unlock()
}
