// Package alert watches destinations for sustained failure and raises
// alerts: one open alert per failing destination, opened after N
// consecutive failed attempts or when dead deliveries pile up, resolved by
// the next successful attempt. Opening and resolving are posted, when a URL
// is configured, as a Slack-compatible {"text": "..."} webhook.
//
// The package is fed by [Monitor.ObserveAttempt] (the signature of
// deliver.Options.OnAttempt) and reads dead-delivery counts from the store
// on a timer. Alert state lives in memory, per instance: after a restart
// an alert is opened again only if its condition still holds (dead
// deliveries are re-read from the store; consecutive failures are counted
// afresh). It does not pause destinations or change deliveries.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Defaults for zero [Options] fields.
const (
	DefaultCheckInterval  = 30 * time.Second
	DefaultNotifyTimeout  = 10 * time.Second
	DefaultMaxNotifyTries = 3
	// DefaultKeep is how many resolved alerts are kept for the list.
	DefaultKeep = 200
)

// Reasons an alert opens.
const (
	// ReasonConsecutiveFailures: the destination failed
	// [Options.ConsecutiveFailures] attempts in a row.
	ReasonConsecutiveFailures = "consecutive_failures"
	// ReasonDeadDeliveries: [Options.DeadDeliveries] deliveries to the
	// destination died since the last alert was resolved.
	ReasonDeadDeliveries = "dead_deliveries"
	// ReasonCircuitOpen: the destination's circuit breaker opened.
	ReasonCircuitOpen = "circuit_open"
)

// Options tunes a [Monitor].
type Options struct {
	// ConsecutiveFailures opens an alert after this many failed attempts
	// in a row to one destination. Zero disables the condition.
	ConsecutiveFailures int
	// DeadDeliveries opens an alert when this many deliveries to one
	// destination are dead (counting only those that died since its last
	// alert was resolved). Zero disables the condition.
	DeadDeliveries int
	// URL, if set, receives a POST with a Slack-compatible JSON body
	// {"text": "..."} when an alert opens and when it resolves. It is a
	// credential (Slack's webhook URLs are) and is never logged.
	URL string
	// HTTPClient posts notifications. If nil, a client with
	// [DefaultNotifyTimeout].
	HTTPClient *http.Client
	// CheckInterval is how often dead deliveries are counted. If zero,
	// [DefaultCheckInterval].
	CheckInterval time.Duration
	// Logger receives opened and resolved alerts and failed
	// notifications. If nil, they are discarded.
	Logger *slog.Logger
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Alert is one episode of a failing destination.
type Alert struct {
	// ID is unique within the process ("alr_" and a sequence number).
	ID          string `json:"id"`
	Destination string `json:"destination"`
	// Reason is ReasonConsecutiveFailures or ReasonDeadDeliveries.
	Reason string `json:"reason"`
	// Message says what happened, for people.
	Message string `json:"message"`
	// Failures is the number of consecutive failed attempts, kept up to
	// date while the alert is open.
	Failures int `json:"failures"`
	// Dead is the number of dead deliveries of the destination when last
	// counted.
	Dead int `json:"dead"`
	// LastError describes the latest failed attempt.
	LastError  string    `json:"last_error,omitempty"`
	OpenedAt   time.Time `json:"opened_at"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
}

// Open reports whether the alert is not resolved.
func (a *Alert) Open() bool { return a.ResolvedAt.IsZero() }

// destState is what the monitor knows of one destination.
type destState struct {
	failures  int
	lastError string
	dead      int
	// deadBase is the dead count when the last alert resolved: only
	// deliveries that died since then count towards a new alert.
	deadBase int
	open     *Alert
}

// notice is one notification to post.
type notice struct{ text string }

// Monitor raises and resolves alerts. Build it with [New], feed it with
// [Monitor.ObserveAttempt], and run [Monitor.Run] to count dead deliveries
// and post notifications. It is safe for concurrent use.
type Monitor struct {
	store store.Queue
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	http  *http.Client

	notices chan notice

	mu       sync.Mutex
	dests    map[string]*destState
	resolved []*Alert // oldest first, at most DefaultKeep
	seq      int
}

// New returns a Monitor that counts dead deliveries in s (nil: only
// consecutive failures are watched). opts may be nil.
func New(s store.Queue, opts *Options) *Monitor {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: DefaultNotifyTimeout}
	}
	return &Monitor{
		store:   s,
		opts:    o,
		log:     o.Logger,
		now:     o.Now,
		http:    o.HTTPClient,
		notices: make(chan notice, 256),
		dests:   map[string]*destState{},
	}
}

func (m *Monitor) state(dest string) *destState {
	st := m.dests[dest]
	if st == nil {
		st = &destState{}
		m.dests[dest] = st
	}
	return st
}

// ObserveAttempt counts one attempt's outcome; its signature matches
// deliver.Options.OnAttempt. A success resets the destination's failure
// count and resolves its open alert; a failure (outcome retry, dead or
// paused) may open one. Canceled attempts (a stopping dispatcher) count
// for nothing. It never blocks.
func (m *Monitor) ObserveAttempt(a store.Attempt, outcome string) {
	if a.Success {
		m.mu.Lock()
		st := m.state(a.Destination)
		st.failures = 0
		var n *notice
		if st.open != nil {
			n = m.resolveLocked(a.Destination, st)
		}
		m.mu.Unlock()
		m.send(n)
		return
	}
	if outcome == "canceled" {
		return
	}
	errText := a.Error
	if errText == "" && a.StatusCode != 0 {
		errText = "HTTP " + strconv.Itoa(a.StatusCode)
	}
	m.mu.Lock()
	st := m.state(a.Destination)
	st.failures++
	st.lastError = errText
	if outcome == "dead" {
		st.dead++
	}
	var n *notice
	switch {
	case st.open != nil:
		st.open.Failures, st.open.LastError, st.open.Dead = st.failures, errText, st.dead
	case m.opts.ConsecutiveFailures > 0 && st.failures >= m.opts.ConsecutiveFailures:
		n = m.openLocked(a.Destination, st, ReasonConsecutiveFailures,
			fmt.Sprintf("%d consecutive failed attempts; last: %s", st.failures, errText))
	case m.opts.DeadDeliveries > 0 && st.dead-st.deadBase >= m.opts.DeadDeliveries:
		n = m.openLocked(a.Destination, st, ReasonDeadDeliveries,
			fmt.Sprintf("%d dead deliveries; last error: %s", st.dead-st.deadBase, errText))
	}
	m.mu.Unlock()
	m.send(n)
}

// ObserveCircuit follows a destination's circuit breaker; with a
// transition argument it matches deliver.Options.OnCircuit. An open
// circuit opens an alert (or updates the open one), a closed one resolves
// it; half-open changes nothing. It never blocks.
func (m *Monitor) ObserveCircuit(dest, _ string, c store.CircuitState) {
	m.mu.Lock()
	st := m.state(dest)
	var n *notice
	switch c.State {
	case store.CircuitOpen:
		msg := fmt.Sprintf("circuit breaker open (%s): nothing is sent until a probe at %s succeeds",
			c.Reason, c.ProbeAt.UTC().Format(time.RFC3339))
		if st.open == nil {
			n = m.openLocked(dest, st, ReasonCircuitOpen, msg)
		} else {
			st.open.Message = msg
		}
	case store.CircuitClosed:
		if st.open != nil {
			n = m.resolveLocked(dest, st)
		}
	}
	m.mu.Unlock()
	m.send(n)
}

// openLocked opens an alert for dest and returns its notice.
func (m *Monitor) openLocked(dest string, st *destState, reason, msg string) *notice {
	m.seq++
	a := &Alert{
		ID:          "alr_" + strconv.Itoa(m.seq),
		Destination: dest,
		Reason:      reason,
		Message:     msg,
		Failures:    st.failures,
		Dead:        st.dead,
		LastError:   st.lastError,
		OpenedAt:    m.now(),
	}
	st.open = a
	m.log.Warn("alert opened", "alert", a.ID, "destination", dest, "reason", reason, "message", msg)
	return &notice{text: fmt.Sprintf(":rotating_light: mailroom: destination %s is failing: %s", dest, msg)}
}

// resolveLocked resolves dest's open alert and returns its notice.
func (m *Monitor) resolveLocked(dest string, st *destState) *notice {
	a := st.open
	a.ResolvedAt = m.now()
	st.open = nil
	st.deadBase = st.dead
	m.resolved = append(m.resolved, a)
	if len(m.resolved) > DefaultKeep {
		m.resolved = slices.Delete(m.resolved, 0, len(m.resolved)-DefaultKeep)
	}
	took := a.ResolvedAt.Sub(a.OpenedAt).Round(time.Second)
	m.log.Info("alert resolved", "alert", a.ID, "destination", dest, "open_for", took)
	return &notice{text: fmt.Sprintf(":white_check_mark: mailroom: destination %s delivers again (alert open for %s)", dest, took)}
}

// send queues n for posting, dropping it (with a log line) if the queue
// is full, so that the delivery path never waits on the alert URL.
func (m *Monitor) send(n *notice) {
	if n == nil || m.opts.URL == "" {
		return
	}
	select {
	case m.notices <- *n:
	default:
		m.log.Error("alert notification dropped: queue full")
	}
}

// List returns alerts newest first: the open ones, and unless openOnly
// the most recent resolved ones too. The alerts are copies.
func (m *Monitor) List(openOnly bool) []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Alert
	for _, st := range m.dests {
		if st.open != nil {
			out = append(out, *st.open)
		}
	}
	if !openOnly {
		for _, a := range m.resolved {
			out = append(out, *a)
		}
	}
	slices.SortFunc(out, func(a, b Alert) int {
		if c := b.OpenedAt.Compare(a.OpenedAt); c != 0 {
			return c
		}
		return cmpID(b.ID, a.ID)
	})
	return out
}

// cmpID orders "alr_N" ids by N.
func cmpID(a, b string) int {
	na, _ := strconv.Atoi(a[len("alr_"):])
	nb, _ := strconv.Atoi(b[len("alr_"):])
	return na - nb
}

// Run counts dead deliveries every [Options.CheckInterval] (and once at
// start) and posts notifications, until ctx ends. It returns nil.
func (m *Monitor) Run(ctx context.Context) error {
	m.check(ctx)
	tick := time.NewTicker(m.opts.CheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			m.check(ctx)
		case n := <-m.notices:
			m.post(ctx, n)
		}
	}
}

// checkTimeout bounds one count of dead deliveries.
const checkTimeout = 10 * time.Second

// check reads dead counts from the store and opens alerts they call for.
func (m *Monitor) check(ctx context.Context) {
	if m.store == nil || m.opts.DeadDeliveries <= 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	stats, err := m.store.DeliveryStats(cctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("alerts: read delivery stats", "err", err)
		}
		return
	}
	var notes []*notice
	m.mu.Lock()
	for _, s := range stats {
		st := m.state(s.Destination)
		st.dead = s.Dead
		// Retried dead deliveries lower the count: only new deaths count.
		st.deadBase = min(st.deadBase, s.Dead)
		if st.open != nil {
			st.open.Dead = s.Dead
			continue
		}
		if n := s.Dead - st.deadBase; n >= m.opts.DeadDeliveries {
			msg := fmt.Sprintf("%d dead deliveries", n)
			if st.lastError != "" {
				msg += "; last error: " + st.lastError
			}
			notes = append(notes, m.openLocked(s.Destination, st, ReasonDeadDeliveries, msg))
		}
	}
	m.mu.Unlock()
	for _, n := range notes {
		m.send(n)
	}
}

// post sends one notification, trying a few times with a short backoff.
func (m *Monitor) post(ctx context.Context, n notice) {
	body, err := json.Marshal(map[string]string{"text": n.text})
	if err != nil {
		m.log.Error("alert notification: encode", "err", err)
		return
	}
	delay := 500 * time.Millisecond
	for try := 1; ; try++ {
		err := m.postOnce(ctx, body)
		if err == nil {
			return
		}
		if try >= DefaultMaxNotifyTries || ctx.Err() != nil {
			m.log.Error("alert notification not delivered", "tries", try, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay *= 2
	}
}

func (m *Monitor) postOnce(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.opts.URL, bytes.NewReader(body))
	if err != nil {
		// The error names the URL, which is a credential: say less.
		return fmt.Errorf("build request to the alert URL")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.http.Do(req)
	if err != nil {
		return fmt.Errorf("post to the alert URL: %w", redactURLError(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("alert URL answered %d", resp.StatusCode)
	}
	return nil
}

// redactURLError strips the URL from a transport error, since an alert
// URL is a credential.
func redactURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}
