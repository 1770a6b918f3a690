// Package bench is mailroom's load generator, the engine of `mailroom
// bench`. It sends correctly signed webhooks to an ingest endpoint over
// keep-alive connections, either closed loop (each connection sends its
// next request when the previous one is answered) or open loop at a fixed
// rate, and measures what came back: acknowledged requests per second,
// latency percentiles and errors by status. A [Sink] stands in for a fast
// destination and measures delivery throughput and lag. [BareHandler] is
// the ceiling to compare against: a net/http handler that reads the body
// and answers 202, without storing anything.
//
// With a rate, latency counts from the time each request was meant to be
// sent, not from when it was, so a stalled server cannot hide its stall by
// slowing the generator down (coordinated omission).
//
// The package starts no mailroom: cmd/mailroom wires an embedded one.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero [Options] fields.
const (
	DefaultConnections = 50
	DefaultDuration    = 10 * time.Second
	DefaultSize        = 1024
	DefaultTimeout     = 30 * time.Second
)

// Options configures one load run. Target and Provider are required.
type Options struct {
	// Target is the base URL of the server, e.g. http://127.0.0.1:8080.
	Target string
	// Targets, if set, are several servers (instances of one mailroom):
	// connection i goes to Targets[i % len(Targets)], instead of Target.
	Targets []string
	// Path is the request path. If empty, "/e/" + Source.
	Path string
	// Source is the source name in the default path.
	Source string
	// Provider signs each request.
	Provider *Provider
	// Connections is the number of keep-alive connections, each with at
	// most one request in flight. If zero, [DefaultConnections].
	Connections int
	// Duration is how long requests are sent. If zero, [DefaultDuration].
	Duration time.Duration
	// Rate, if positive, sends that many requests per second in total
	// (open loop) instead of as fast as answers come back.
	Rate float64
	// Size is the body size in bytes. If zero, [DefaultSize].
	Size int
	// Timeout bounds one request. If zero, [DefaultTimeout].
	Timeout time.Duration
	// RunID makes provider ids unique across runs against one database.
	// If empty, the current time.
	RunID string
	// Requests, if positive, ends the run once that many requests were
	// sent (answered or failed), even before Duration.
	Requests int
}

// Percentiles summarises a latency distribution.
type Percentiles struct {
	P50 time.Duration `json:"p50"`
	P90 time.Duration `json:"p90"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
	N   int           `json:"n"`
}

// String formats p in milliseconds.
func (p Percentiles) String() string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s", ms(p.P50), ms(p.P90), ms(p.P99), ms(p.Max))
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms" }

// percentiles sorts d in place and summarises it.
func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[int(q*float64(len(d)-1))] }
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: d[len(d)-1], N: len(d)}
}

// LoadResult is what one load run measured.
type LoadResult struct {
	// Elapsed is the measured window, from the first send to the last
	// answer.
	Elapsed time.Duration `json:"elapsed"`
	// Sent counts requests that got an answer or an error.
	Sent int `json:"sent"`
	// OK counts 2xx answers.
	OK int `json:"ok"`
	// PerSecond is OK / Elapsed.
	PerSecond float64 `json:"per_second"`
	// Latency covers 2xx answers only.
	Latency Percentiles `json:"latency"`
	// Statuses counts answers by status code ("200", "503") and failed
	// requests by kind ("conn_error").
	Statuses map[string]int `json:"statuses"`
	// FirstError is the first transport error, if any.
	FirstError string `json:"first_error,omitempty"`
}

// Load runs one load test as opts says and returns what it measured. It
// stops early, with what it has, when ctx ends.
func Load(ctx context.Context, opts *Options) (*LoadResult, error) {
	o := *opts
	if o.Provider == nil {
		return nil, errors.New("bench: no provider")
	}
	targets := o.Targets
	if len(targets) == 0 {
		targets = []string{o.Target}
	}
	hosts := make([]string, len(targets))
	for i, t := range targets {
		u, err := url.Parse(t)
		if err != nil || u.Host == "" || u.Scheme != "http" {
			return nil, fmt.Errorf("bench: target %q: want http://host:port", t)
		}
		hosts[i] = u.Host
	}
	if o.Path == "" {
		o.Path = "/e/" + o.Source
	}
	if o.Connections <= 0 {
		o.Connections = DefaultConnections
	}
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.RunID == "" {
		o.RunID = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	// Check that the targets answer before the clock starts.
	for _, h := range hosts {
		c0, err := dial(h)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		c0.close()
	}

	start := time.Now()
	end := start.Add(o.Duration)
	results := make([]*workerResult, o.Connections)
	var wg sync.WaitGroup
	var budget *atomic.Int64
	if o.Requests > 0 {
		budget = new(atomic.Int64)
		budget.Store(int64(o.Requests))
	}
	for i := range o.Connections {
		wr := &workerResult{statuses: map[string]int{}}
		results[i] = wr
		g := &generator{opts: &o, host: hosts[i%len(hosts)], worker: i, res: wr, budget: budget}
		wg.Go(func() { g.run(ctx, start, end) })
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &LoadResult{Elapsed: elapsed, Statuses: map[string]int{}}
	var lat []time.Duration
	for _, wr := range results {
		res.Sent += wr.sent
		res.OK += wr.ok
		for k, v := range wr.statuses {
			res.Statuses[k] += v
		}
		if res.FirstError == "" {
			res.FirstError = wr.firstErr
		}
		lat = append(lat, wr.latency...)
	}
	res.Latency = percentiles(lat)
	res.PerSecond = float64(res.OK) / elapsed.Seconds()
	return res, nil
}

type workerResult struct {
	sent, ok int
	statuses map[string]int
	latency  []time.Duration
	firstErr string
}

// generator is one connection's sending loop.
type generator struct {
	opts   *Options
	host   string
	worker int
	res    *workerResult
	budget *atomic.Int64 // requests left to send in the whole run, or nil
}

func (g *generator) run(ctx context.Context, start, end time.Time) {
	o := g.opts
	c := &conn{addr: g.host}
	defer c.close()
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(o.Connections) / o.Rate)
	}
	// Offset the connections of an open loop evenly over one interval.
	intended := start.Add(interval * time.Duration(g.worker) / time.Duration(o.Connections))
	h := http.Header{}
	var body, head []byte
	idPrefix := "evt_" + o.RunID + "_" + strconv.Itoa(g.worker) + "_"
	for seq := 0; ; seq++ {
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if interval > 0 {
			if !intended.Before(end) {
				return
			}
			if d := intended.Sub(now); d > 0 {
				time.Sleep(d)
				now = time.Now()
			}
		} else {
			if !now.Before(end) {
				return
			}
			intended = now
		}
		if g.budget != nil && g.budget.Add(-1) < 0 {
			return
		}
		id := idPrefix + strconv.Itoa(seq)
		body = appendBody(body[:0], id, now, o.Size)
		clear(h)
		path, err := o.Provider.sign(h, "http://"+g.host+o.Path, id, body, now)
		if err != nil {
			g.res.statuses["sign_error"]++
			if g.res.firstErr == "" {
				g.res.firstErr = err.Error()
			}
			return
		}
		head = appendHead(head[:0], path, g.host, h, len(body))
		status, err := c.do(head, body, o.Timeout)
		done := time.Now()
		g.res.sent++
		switch {
		case err != nil:
			g.res.statuses["conn_error"]++
			if g.res.firstErr == "" {
				g.res.firstErr = err.Error()
			}
		case status >= 200 && status <= 299:
			g.res.ok++
			g.res.latency = append(g.res.latency, done.Sub(intended))
			g.res.statuses[strconv.Itoa(status)]++
		default:
			g.res.statuses[strconv.Itoa(status)]++
		}
		if interval > 0 {
			intended = intended.Add(interval)
		}
	}
}

// appendBody appends a JSON body of about size bytes carrying id, a type
// and the send time in Unix nanoseconds (which [Sink] reads back).
func appendBody(b []byte, id string, now time.Time, size int) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","type":"bench.event","`...)
	b = append(b, sentKey...)
	b = strconv.AppendInt(b, now.UnixNano(), 10)
	b = append(b, `,"data":{"object":{"amount":4200,"currency":"eur"}},"pad":"`...)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// sentKey precedes the send time in a generated body.
const sentKey = `sent":`

func appendHead(b []byte, path, host string, h http.Header, n int) []byte {
	b = append(b, "POST "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUser-Agent: mailroom-bench\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "\r\n"...)
	for k, vs := range h {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...)
}

// BareHandler returns the ceiling's handler: it reads the body and answers
// 202 with no body, storing nothing.
func BareHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})
}

// Summary formats r in a few lines for people.
func (r *LoadResult) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  acknowledged  %d in %.1fs = %.0f req/s\n", r.OK, r.Elapsed.Seconds(), r.PerSecond)
	fmt.Fprintf(&b, "  latency       %s\n", r.Latency)
	keys := make([]string, 0, len(r.Statuses))
	for k := range r.Statuses {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, r.Statuses[k]))
	}
	fmt.Fprintf(&b, "  statuses      %s\n", strings.Join(parts, " "))
	if r.FirstError != "" {
		fmt.Fprintf(&b, "  first error   %s\n", r.FirstError)
	}
	return b.String()
}
