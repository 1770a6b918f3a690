package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Probe sends one signed webhook per id, in order, one every interval,
// over one connection of its own, to opts' target and path, with the same
// bodies and signatures as [Load] (the id in body.id). It returns when
// each was sent; the zero time for one that was not acknowledged with a
// 2xx. It stops early when ctx ends.
func Probe(ctx context.Context, opts *Options, ids []string, interval time.Duration) ([]time.Time, error) {
	o := *opts
	if o.Provider == nil {
		return nil, fmt.Errorf("bench: no provider")
	}
	u, err := url.Parse(o.Target)
	if err != nil || u.Host == "" || u.Scheme != "http" {
		return nil, fmt.Errorf("bench: target %q: want http://host:port", o.Target)
	}
	if o.Path == "" {
		o.Path = "/e/" + o.Source
	}
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	c := &conn{addr: u.Host}
	defer c.close()
	sent := make([]time.Time, len(ids))
	h := http.Header{}
	var body, head []byte
	next := time.Now()
	for i, id := range ids {
		if d := time.Until(next); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return sent, nil
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return sent, nil
		}
		next = next.Add(interval)
		now := time.Now()
		body = appendBody(body[:0], id, now, o.Size)
		clear(h)
		path, err := o.Provider.sign(h, "http://"+u.Host+o.Path, id, body, now)
		if err != nil {
			return sent, fmt.Errorf("bench: probe %s: %w", id, err)
		}
		head = appendHead(head[:0], path, u.Host, h, len(body))
		if status, err := c.do(head, body, o.Timeout); err == nil && status >= 200 && status <= 299 {
			sent[i] = now
		}
	}
	return sent, nil
}

// Latencies returns the percentiles of d, as [Load] reports them.
func Latencies(d []time.Duration) Percentiles { return percentiles(d) }

// Timer collects durations from many goroutines; the zero value is ready
// to use.
type Timer struct {
	mu sync.Mutex
	d  []time.Duration
}

// Observe records one duration.
func (t *Timer) Observe(d time.Duration) {
	t.mu.Lock()
	t.d = append(t.d, d)
	t.mu.Unlock()
}

// Take returns the percentiles of what was recorded and forgets it.
func (t *Timer) Take() Percentiles {
	t.mu.Lock()
	d := t.d
	t.d = nil
	t.mu.Unlock()
	return percentiles(d)
}
