// Package deliver owns the last step of mailroom's pipeline: it takes due
// deliveries from the [store.Store], POSTs them to their destinations,
// records every attempt, schedules retries and dead-letters deliveries that
// run out of attempts.
//
// Work always comes from the store, never from memory alone: a delivery is
// claimed under a lease (its NextAttemptAt moves to the lease expiry and its
// Attempts count, the fencing token, goes up by one) before it is sent, and
// its outcome is recorded with [store.Queue.AttemptRecordMany] afterwards
// (many attempts per store write). If the process dies in between, the
// lease expires and the delivery is claimed again, so delivery is at least
// once; receivers deduplicate on the webhook-id header, which every
// attempt of one event carries unchanged.
//
// Each destination has its own worker goroutine, concurrency bound, rate
// limiter and retry policy, so a slow or dead receiver never holds up
// another. The package does not decide where events go (package route does);
// which addresses a destination may resolve to is [Options.Guard]'s call.
package deliver

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
	"github.com/mailroomhq/mailroom/internal/netguard"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/transform"
)

// Defaults for zero [Options] fields.
const (
	DefaultPollInterval    = time.Second
	DefaultLease           = 15 * time.Second
	DefaultMaxResponseBody = 64 << 10
	// DefaultMaxResponseHeaderBytes caps the response headers kept with an
	// attempt, names and values counted.
	DefaultMaxResponseHeaderBytes = 16 << 10
	// DefaultMaxResponseHeaders caps the number of response header lines
	// (one per value) kept with an attempt.
	DefaultMaxResponseHeaders = 100
	DefaultGracePeriod        = 10 * time.Second
	DefaultReloadInterval     = time.Minute
)

// Defaults for zero [store.Destination] fields.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultMaxConcurrency = 10
	DefaultMaxAttempts    = 8
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = time.Hour
)

// Outcomes passed to [Options.OnAttempt]: what an attempt did to its
// delivery.
const (
	// OutcomeSucceeded: a 2xx was received; the delivery succeeded.
	OutcomeSucceeded = "succeeded"
	// OutcomeRetry: the attempt failed and the delivery was scheduled again.
	OutcomeRetry = "retry"
	// OutcomeDead: the attempt failed and the delivery is dead (out of
	// attempts, or a status its destination does not retry).
	OutcomeDead = "dead"
	// OutcomePaused: the receiver answered 410 Gone; the destination was
	// paused and the delivery left pending.
	OutcomePaused = "paused"
	// OutcomeCanceled: the dispatcher stopped and its grace period ran out
	// while the attempt was in flight; the delivery is due again at once.
	OutcomeCanceled = "canceled"
)

// Options tunes a [Dispatcher]. The zero value is ready to use.
type Options struct {
	// Logger receives the dispatcher's logs. If nil, they are discarded.
	Logger *slog.Logger
	// HTTPClient sends the attempts. If nil, the dispatcher builds one with
	// a keep-alive pool large enough for every worker, no proxy, and
	// redirects not followed. A client passed here should not follow
	// redirects either: a 3xx is meant to be a failed attempt.
	HTTPClient *http.Client
	// Now returns the current time for claims, leases and schedules. If
	// nil, time.Now.
	Now func() time.Time
	// PollInterval is how often an idle worker looks for due deliveries
	// when no notification woke it. If zero, [DefaultPollInterval].
	PollInterval time.Duration
	// Lease is how long a claim holds a delivery without renewal. While
	// its attempt is in flight the dispatcher renews it every Lease/4 (see
	// [store.Queue.DeliveryExtendLeases]); when the process dies, its
	// deliveries come due for other instances (or for itself after a
	// restart) at most Lease after the last renewal. If zero,
	// [DefaultLease].
	Lease time.Duration
	// MaxResponseBody caps the response body kept with an attempt. If
	// zero, [DefaultMaxResponseBody].
	MaxResponseBody int64
	// MaxResponseHeaderBytes caps the response headers kept with an
	// attempt (names and values; the rest are dropped and the drop noted
	// in [TruncatedHeader]). If zero, [DefaultMaxResponseHeaderBytes].
	MaxResponseHeaderBytes int
	// MaxResponseHeaders caps the number of response header lines kept
	// with an attempt. If zero, [DefaultMaxResponseHeaders].
	MaxResponseHeaders int
	// UserAgent is sent with every attempt. If empty, the build's
	// [buildinfo.Info.UserAgent] ("mailroom/<version>").
	UserAgent string
	// Rand returns a number in [0, 1) for backoff jitter. If nil,
	// math/rand/v2's Float64.
	Rand func() float64
	// GracePeriod is how long [Dispatcher.Run] lets attempts in flight
	// finish after its context ends before it cancels them. If zero,
	// [DefaultGracePeriod].
	GracePeriod time.Duration
	// ReloadInterval is how often the destination list is reloaded even
	// without a catalog notification. If zero, [DefaultReloadInterval].
	ReloadInterval time.Duration
	// OnAttempt, if non-nil, is called after each attempt with the attempt
	// as recorded and one of the Outcome constants. It runs on the
	// attempt's goroutine and must not block for long.
	OnAttempt func(a store.Attempt, outcome string)
	// OnCircuit, if non-nil, is called after this instance moved a
	// destination's circuit breaker, with one of the Circuit transition
	// constants and the new state. It must not block for long.
	OnCircuit func(destination, transition string, st store.CircuitState)
	// TracerProvider, if non-nil, traces each attempt with one client span
	// (destination, delivery, event, attempt number, status code) and sends
	// its W3C traceparent header to the destination. The span continues
	// the trace of the original request's traceparent when it carried one,
	// and starts a new trace otherwise. If nil, nothing is traced and no
	// traceparent is sent.
	TracerProvider trace.TracerProvider
	// Proxy, if set, is the proxy every destination's deliveries go
	// through unless the destination names its own (or "direct") or its
	// host matches NoProxy: an http://, https:// or socks5:// URL. Guard
	// still applies to the final target (see [store.Destination.Proxy]).
	Proxy string
	// NoProxy lists hosts reached without Proxy, as the NO_PROXY
	// environment variable does: comma-separated host names (a leading
	// "." or none matches subdomains too), IP addresses, CIDR prefixes,
	// optional ports; "*" for all.
	NoProxy string
	// Guard, if non-nil, decides which addresses the default HTTP client
	// may connect to. It checks every address right before connecting,
	// after DNS resolution, so a destination whose host name resolves to
	// a refused address (loopback, private, link-local, cloud metadata)
	// fails its attempt with a [netguard.RefusedError] and is never
	// contacted. It does not apply to an HTTPClient passed in. If nil, any
	// address may be reached; cmd/mailroom always sets one.
	Guard *netguard.Policy
	// Transforms, if non-nil, returns the transformation of a connection
	// (nil when it has none): each attempt of a delivery through that
	// connection sends what the transformation returns, signed as sent.
	// An error, or a transformation that throws or runs out of its time
	// budget, fails the attempt with the reason, retried like any failure.
	// It runs on the attempt's goroutine. If nil, nothing is transformed.
	Transforms func(connectionID string) (*transform.Program, error)
	// Connection, if non-nil, returns a connection by id (nil when it is
	// unknown): the retry rules of a delivery's connection
	// ([store.Connection.Retry]) replace its destination's retry policy
	// for the event types they match. If nil, or for a connection it does
	// not know, the destination's policy applies. It runs on the
	// attempt's goroutine.
	Connection func(id string) *store.Connection
}

// Dispatcher delivers due deliveries. Create it with [New] and start it
// with [Dispatcher.Run]; one Dispatcher runs at most one Run at a time.
type Dispatcher struct {
	store store.Store
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	rnd   func() float64
	http  *http.Client
	// tracer is nil when tracing is off.
	tracer trace.Tracer
	// egress holds the clients of destinations with a proxy or client
	// TLS, and OAuth2 tokens.
	egress *egress
	// recordTimeout is recordTimeout; tests shorten it.
	recordTimeout time.Duration
}

// New returns a Dispatcher that takes its work from s. opts may be nil;
// it is copied.
func New(s store.Store, opts *Options) *Dispatcher {
	if s == nil {
		panic("deliver: New with nil store")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.MaxResponseBody <= 0 {
		o.MaxResponseBody = DefaultMaxResponseBody
	}
	if o.MaxResponseHeaderBytes <= 0 {
		o.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if o.MaxResponseHeaders <= 0 {
		o.MaxResponseHeaders = DefaultMaxResponseHeaders
	}
	if o.UserAgent == "" {
		o.UserAgent = buildinfo.Read().UserAgent()
	}
	if o.GracePeriod <= 0 {
		o.GracePeriod = DefaultGracePeriod
	}
	if o.ReloadInterval <= 0 {
		o.ReloadInterval = DefaultReloadInterval
	}
	d := &Dispatcher{store: s, opts: o, log: o.Logger, now: o.Now, rnd: o.Rand, http: o.HTTPClient, recordTimeout: recordTimeout}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.rnd == nil {
		d.rnd = rand.Float64
	}
	if d.http == nil {
		d.http = newHTTPClient(o.Guard)
	}
	d.egress = newEgress(d.http, o.Guard, o.Proxy, o.NoProxy)
	if o.TracerProvider != nil {
		d.tracer = o.TracerProvider.Tracer(tracerName)
	}
	return d
}

// newHTTPClient returns a client whose keep-alive pool holds enough idle
// connections per host for every concurrent attempt, so that steady
// delivery reuses connections instead of opening one per attempt, and
// which returns a 3xx as it is instead of following it (so a redirect can
// never lead past guard). guard checks every address dialed.
func newHTTPClient(guard *netguard.Policy) *http.Client {
	return &http.Client{Transport: newTransport(guard), CheckRedirect: noRedirects}
}

// newTransport is the delivery transport: a large keep-alive pool, no
// proxy, every address dialed checked by guard.
func newTransport(guard *netguard.Policy) *http.Transport {
	return &http.Transport{
		DialContext:           guard.DialContext(newDialer()),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

func newDialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
}

// noRedirects makes a client return a 3xx as the attempt's outcome.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// maxStoreBackoff caps the pause after consecutive store errors.
const maxStoreBackoff = 5 * time.Second

// minStoreBackoff is the first pause after a store error.
const minStoreBackoff = 100 * time.Millisecond

// nextStoreBackoff doubles prev within [minStoreBackoff, maxStoreBackoff].
func nextStoreBackoff(prev time.Duration) time.Duration {
	if prev < minStoreBackoff {
		return minStoreBackoff
	}
	return min(prev*2, maxStoreBackoff)
}

// Run delivers until ctx ends. It loads the destinations from the store,
// runs one worker per destination, and reloads them when the store
// announces a catalog change (and every [Options.ReloadInterval]).
//
// When ctx ends Run stops claiming, lets attempts in flight finish for up
// to [Options.GracePeriod], then cancels the rest (each is recorded as
// canceled and due again at once), waits for every goroutine it started,
// and returns nil. It returns an error only if the store is closed before
// the destinations could be loaded.
func (d *Dispatcher) Run(ctx context.Context) error {
	// hard ends the attempts themselves: only after the grace period.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	r := &run{
		d:       d,
		ctx:     ctx,
		hard:    hard,
		workers: map[string]*worker{},
		leases:  newLeaseKeeper(d),
		rec:     newRecorder(d),
	}
	// Leases are renewed until the last attempt, grace period included,
	// has ended.
	stopRenew := make(chan struct{})
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		r.leases.run(stopRenew)
	}()
	defer func() {
		close(stopRenew)
		<-renewDone
	}()
	// Records are written until the last attempt has returned.
	stopRec := make(chan struct{})
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		r.rec.run(stopRec)
	}()
	defer func() {
		close(stopRec)
		<-recDone
	}()
	notes := d.store.Subscribe(ctx)

	err := r.loop(ctx, notes)

	for _, w := range r.workers {
		w.stop()
	}
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(d.opts.GracePeriod)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		d.log.Info("grace period over, canceling attempts in flight")
		cancelHard()
		<-done
	}
	return err
}

// run is the state of one [Dispatcher.Run].
type run struct {
	d       *Dispatcher
	ctx     context.Context // ends claiming
	hard    context.Context // ends attempts
	wg      sync.WaitGroup  // workers and attempts
	workers map[string]*worker
	leases  *leaseKeeper // claims held by this run's attempts
	rec     *recorder    // writes this run's attempt records
}

// loop reloads destinations and routes notifications until ctx ends.
func (r *run) loop(ctx context.Context, notes <-chan store.Notification) error {
	d := r.d
	// First load: retry store errors with backoff until it works.
	var delay time.Duration
	for {
		err := r.reload(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, store.ErrClosed) {
			return err
		}
		delay = nextStoreBackoff(delay)
		d.log.Error("load destinations", "err", err, "retry_in", delay)
		if !sleep(ctx, delay) {
			return nil
		}
	}
	tick := time.NewTicker(d.opts.ReloadInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			r.reloadLogged(ctx)
		case n, ok := <-notes:
			if !ok {
				// The subscription ends with ctx; keep polling if it
				// ended otherwise.
				notes = nil
				continue
			}
			switch n.Kind {
			case store.NotifyCatalogChanged:
				r.reloadLogged(ctx)
			case store.NotifyDeliveryDue:
				if n.Destination == "" {
					for _, w := range r.workers {
						w.wake()
					}
				} else if w := r.workers[n.Destination]; w != nil {
					w.wake()
				}
			}
		}
	}
}

func (r *run) reloadLogged(ctx context.Context) {
	if err := r.reload(ctx); err != nil && ctx.Err() == nil {
		// The next notification or tick tries again; workers keep their
		// last known configuration meanwhile.
		r.d.log.Error("reload destinations", "err", err)
	}
}

// reload reads the destination list and starts, updates or stops workers
// to match it.
func (r *run) reload(ctx context.Context) error {
	listedAt := time.Now() // monotonic: orders this read after local pauses
	list, err := r.d.store.DestinationList(ctx)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(list))
	for _, dest := range list {
		seen[dest.Name] = true
		cfg := r.d.resolve(dest)
		if cfg.err != nil {
			r.d.log.Error("destination config invalid, holding its deliveries", "destination", dest.Name, "err", cfg.err)
		}
		if w := r.workers[dest.Name]; w != nil {
			w.update(cfg, listedAt)
			continue
		}
		w := newWorker(r, cfg)
		r.workers[dest.Name] = w
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			w.run()
		}()
	}
	for name, w := range r.workers {
		if !seen[name] {
			// Attempts in flight finish; the worker claims no more.
			w.stop()
			delete(r.workers, name)
		}
	}
	return nil
}

// sleep waits for d or ctx, and reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
