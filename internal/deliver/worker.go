package deliver

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/mailroomhq/mailroom/internal/store"
)

// destConfig is a destination with its defaults filled in.
type destConfig struct {
	dest        *store.Destination
	timeout     time.Duration
	maxConc     int
	rate        float64 // events per second; 0 means unlimited
	burst       int
	maxAttempts int
	initial     time.Duration
	max         time.Duration
	circuit     circuitPolicy
	// client sends the attempts: the shared one, or the destination's
	// own for a proxy or client TLS.
	client *http.Client
	// proxied says client sends through a proxy.
	proxied bool
	// err is set when the destination cannot be served as configured; its
	// deliveries are held (not claimed) until the configuration is fixed,
	// rather than sent unsigned or faster than intended.
	err error
}

// resolve fills in dest's defaults and picks the client it is sent with.
func (d *Dispatcher) resolve(dest *store.Destination) *destConfig {
	c := &destConfig{
		dest:        dest,
		timeout:     cmpOr(dest.Timeout.D(), DefaultTimeout),
		maxConc:     dest.MaxConcurrency,
		maxAttempts: dest.Retry.MaxAttempts,
		initial:     cmpOr(dest.Retry.Initial.D(), DefaultInitialBackoff),
		max:         cmpOr(dest.Retry.Max.D(), DefaultMaxBackoff),
		circuit:     newCircuitPolicy(dest.CircuitBreaker),
	}
	if c.maxConc <= 0 {
		c.maxConc = DefaultMaxConcurrency
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	// The rules the config file and the API check, a signing secret that
	// cannot sign among them: a destination stored before a rule
	// tightened is held, not served against it or failing every attempt.
	err := dest.Validate()
	if err != nil {
		c.err = fmt.Errorf("invalid destination: %w", err)
		return c
	}
	c.rate, _ = store.ParseRate(dest.RateLimit) // checked by Validate
	if c.rate > 0 {
		c.burst = max(1, int(math.Ceil(c.rate)))
	}
	// A proxy or TLS file that cannot be used holds the deliveries too.
	if c.client, err = d.egress.client(dest); err != nil {
		c.err = err
		return c
	}
	px, _ := d.egress.proxyFor(dest) // its error held the destination above
	c.proxied = px != ""
	return c
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// worker claims and sends the deliveries of one destination. Its run loop
// is the only goroutine that claims for the destination; each claimed
// delivery is sent on its own goroutine, at most maxConc at a time
// (one for an ordered destination).
//
// Claims are pipelined with sending: the loop claims up to one more
// maxConc of deliveries than there are free slots, and holds them, so
// that a slot freed while a claim waits in the store's writer queue is
// refilled at once, from the held ones, by the attempt that freed it.
// A held delivery is sent only if everything that would stop a claim
// still allows it when its slot frees (see [worker.pump]); otherwise it
// is given back to the store ([store.Queue.DeliveryReleaseLeases]).
type worker struct {
	r      *run
	d      *Dispatcher
	name   string
	ctx    context.Context // ends claiming
	cancel context.CancelFunc
	cfg    atomic.Pointer[destConfig]
	wakeC  chan struct{}

	mu       sync.Mutex
	inflight int
	// held are deliveries claimed ahead of a free slot, oldest claim
	// first, each with the configuration it was claimed under.
	held []heldDelivery
	// next is the soonest retry that this worker's own attempts scheduled,
	// so that it wakes for it without polling faster.
	next time.Time
	// hold pauses claiming right after a 410, before the store's paused
	// flag has come back through a reload. holdSince is when the pause
	// committed (zero while it is being written); a reload that listed the
	// destinations after it carries the store's word and clears the hold.
	hold      bool
	holdSince time.Time
	// br is the destination's circuit breaker as this worker knows it.
	br breaker

	// Only the run goroutine touches the limiter.
	lim *rate.Limiter
}

func newWorker(r *run, cfg *destConfig) *worker {
	ctx, cancel := context.WithCancel(r.ctx)
	w := &worker{
		r:      r,
		d:      r.d,
		name:   cfg.dest.Name,
		ctx:    ctx,
		cancel: cancel,
		wakeC:  make(chan struct{}, 1),
	}
	w.cfg.Store(cfg)
	w.br.state = cfg.dest.Circuit
	return w
}

// heldDelivery is a delivery claimed ahead, waiting for a slot.
type heldDelivery struct {
	dl  *store.Delivery
	cfg *destConfig
}

// wake makes the run loop look for due deliveries now.
func (w *worker) wake() {
	select {
	case w.wakeC <- struct{}{}:
	default:
	}
}

// stop ends claiming; attempts in flight go on.
func (w *worker) stop() { w.cancel() }

// update installs a reloaded configuration, read from a list that started
// at listedAt.
func (w *worker) update(cfg *destConfig, listedAt time.Time) {
	w.cfg.Store(cfg)
	w.mu.Lock()
	if w.hold && !w.holdSince.IsZero() && listedAt.After(w.holdSince) {
		w.hold = false
	}
	w.mu.Unlock()
	w.adoptCircuit(cfg.dest.Circuit)
	w.wake()
}

// holdLocal stops claiming until the pause being written is confirmed.
func (w *worker) holdLocal() {
	w.mu.Lock()
	w.hold, w.holdSince = true, time.Time{}
	w.mu.Unlock()
}

// holdCommitted marks the pause as written (or failed: then the next
// reload, which shows the destination unpaused, resumes claiming).
func (w *worker) holdCommitted() {
	w.mu.Lock()
	w.holdSince = time.Now()
	w.mu.Unlock()
}

// applyRate brings the limiter in line with cfg.
func (w *worker) applyRate(cfg *destConfig) {
	switch {
	case cfg.rate <= 0:
		w.lim = nil
	case w.lim == nil:
		w.lim = rate.NewLimiter(rate.Limit(cfg.rate), cfg.burst)
	default:
		if float64(w.lim.Limit()) != cfg.rate {
			w.lim.SetLimit(rate.Limit(cfg.rate))
		}
		if w.lim.Burst() != cfg.burst {
			w.lim.SetBurst(cfg.burst)
		}
	}
}

// slots returns how many attempts cfg lets be in flight at once
// (max_concurrency, one for an ordered destination), and how many
// deliveries it lets the worker hold claimed: those in flight plus those
// claimed ahead. A worker claims one more max_concurrency ahead, except
// for an ordered destination (its next head is known only once the
// current one is recorded) and a rate-limited one (its deliveries take
// their tokens when claimed, and are sent at once so that the sends keep
// the limiter's pace).
func (cfg *destConfig) slots() (slots, window int) {
	if cfg.dest.Ordered {
		return 1, 1
	}
	if cfg.rate > 0 {
		return cfg.maxConc, cfg.maxConc
	}
	return cfg.maxConc, 2 * cfg.maxConc
}

// capacity returns how many deliveries the worker may claim now, and
// clears a scheduled wake-up that has come due (the claim about to happen
// serves it).
func (w *worker) capacity(cfg *destConfig) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.next.IsZero() && !w.next.After(w.d.now()) {
		w.next = time.Time{}
	}
	if cfg.err != nil || cfg.dest.Paused || w.hold {
		return 0
	}
	slots, window := cfg.slots()
	room := max(0, window-w.inflight-len(w.held))
	if len(w.held) > 0 && room < max(1, slots/2) {
		// The held deliveries fill the slots meanwhile: wait for room
		// for a larger claim (fewer claims in the writer's queue).
		return 0
	}
	return room
}

// run is the worker's loop: claim what capacity and rate allow, start an
// attempt for each, then sleep until woken (a notification for the
// destination, a freed slot, a scheduled retry, a rate token) or the poll
// interval passes.
func (w *worker) run() {
	// On the way out the worker is stopping: pump gives back what it holds.
	defer w.pump(true)
	var errDelay time.Duration
	for {
		if w.ctx.Err() != nil {
			return
		}
		cfg := w.cfg.Load()
		w.applyRate(cfg)
		// A pause, a reload or a circuit that opened may have made held
		// deliveries unsendable: give them back now rather than when a
		// slot frees.
		w.pump(true)
		wait := w.d.opts.PollInterval
		n := w.capacity(cfg)
		if limit, wakeAt := w.circuitGate(cfg); limit >= 0 {
			n = min(n, limit)
			if !wakeAt.IsZero() {
				wait = max(0, min(wait, wakeAt.Sub(w.d.now())))
			}
		}
		if n > 0 && w.lim != nil {
			tokens := w.lim.Tokens()
			if tokens < 1 {
				// Sleep until a token is due rather than claim
				// deliveries that would sit under lease waiting for it.
				need := time.Duration(math.Ceil((1 - tokens) / cfg.rate * float64(time.Second)))
				wait = min(wait, need)
				n = 0
			} else {
				n = min(n, int(tokens))
			}
		}
		if n > 0 {
			ds, err := w.claim(cfg, n)
			if err != nil {
				// The store is in trouble: back off, with no hot loop. A
				// claim that did commit is not lost: its lease expires.
				errDelay = nextStoreBackoff(errDelay)
				w.d.log.Error("claim deliveries", "destination", w.name, "err", err, "retry_in", errDelay)
				if !sleep(w.ctx, errDelay) {
					return
				}
				continue
			}
			errDelay = 0
			w.claimedProbe(ds)
			if w.lim != nil && len(ds) > 0 {
				w.lim.AllowN(time.Now(), len(ds))
			}
			w.mu.Lock()
			for _, dl := range ds {
				w.held = append(w.held, heldDelivery{dl: dl, cfg: cfg})
			}
			w.mu.Unlock()
			w.pump(false)
			if len(ds) == n {
				// There may be more due; capacity decides.
				continue
			}
		}
		if !w.sleep(wait) {
			return
		}
	}
}

// claimTimeout bounds one claim.
const claimTimeout = 10 * time.Second

// claim leases up to n due deliveries. The claim runs on a context
// detached from the worker's: a claim that commits while the worker is
// stopping must still hand its deliveries over, to be given back (see
// [worker.pump]), rather than strand them until their leases expire.
func (w *worker) claim(cfg *destConfig, n int) ([]*store.Delivery, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), claimTimeout)
	defer cancel()
	now := w.d.now()
	return w.d.store.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{
		Destination: w.name,
		Now:         now,
		LeaseUntil:  now.Add(w.d.opts.Lease),
		Limit:       n,
		Ordered:     cfg.dest.Ordered,
	})
}

// sleep waits for a wake-up, at most wait, or until a scheduled retry is
// due. It reports false when the worker is stopping.
func (w *worker) sleep(wait time.Duration) bool {
	w.mu.Lock()
	if !w.next.IsZero() {
		wait = max(0, min(wait, w.next.Sub(w.d.now())))
	}
	w.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.ctx.Done():
		return false
	case <-w.wakeC:
	case <-t.C:
	}
	return true
}

// pump starts held deliveries while slots are free, oldest claim first,
// and gives back to the store those that may no longer be sent. It is
// called at each turn of the run loop (every wake-up and poll) and after
// each claim, and by each attempt as soon as its exchange frees a slot, so
// that a freed slot is refilled without waiting for a claim.
//
// A held delivery is sent under the configuration in force when its slot
// frees, as if it were claimed then, and only if a claim then could have
// taken it:
//   - the worker is not stopping (shutdown, or the destination removed):
//     nothing claimed ahead is sent after the worker was told to stop;
//   - the destination is not paused (in the store or by a 410 being
//     written) and its configuration is valid;
//   - the circuit is closed, or the delivery is the half-open probe;
//   - it was claimed under the same ordering, and under a rate limit if
//     one is in force now (a delivery claimed ahead took no token);
//   - at least half of its lease is left. A held delivery's lease is not
//     renewed (only attempts in flight are, see [leaseKeeper]); with half
//     a lease left its first renewal, at most Lease/4 away, still comes
//     before another instance could claim it.
//
// Whatever fails these is given back at once, due again, its unused
// attempt number taken back. With full, every held delivery is looked at,
// not only those the free slots take: the run loop's turns so give back
// one that may no longer be sent even while every slot stays busy (a slow
// receiver), rather than keep it from other instances until its lease
// runs out. An attempt that frees its slot looks only at what it starts.
func (w *worker) pump(full bool) {
	cfg := w.cfg.Load()
	now := w.d.now()
	slots, _ := cfg.slots()
	stopping := w.ctx.Err() != nil
	var send, back []*store.Delivery
	w.mu.Lock()
	blocked := stopping || cfg.err != nil || cfg.dest.Paused || w.hold
	open := cfg.circuit.Enabled() && w.br.state.State != store.CircuitClosed
	kept := w.held[:0]
	for i, h := range w.held {
		if !full && !blocked && w.inflight >= slots {
			kept = append(kept, w.held[i:]...)
			break
		}
		isProbe := w.br.probing && w.br.probe == h.dl.ID
		switch {
		case blocked,
			open && !isProbe,
			h.cfg.dest.Ordered != cfg.dest.Ordered,
			cfg.rate > 0 && h.cfg.rate <= 0,
			h.dl.NextAttemptAt.Sub(now) < w.d.opts.Lease/2:
			if isProbe {
				w.br.probe = "" // the next claim probes instead
			}
			back = append(back, h.dl)
		case w.inflight < slots:
			w.inflight++
			send = append(send, h.dl)
		default:
			kept = append(kept, h)
		}
	}
	clear(w.held[len(kept):])
	w.held = kept
	if len(w.held) == 0 {
		w.held = nil // let the backing array go
	}
	w.mu.Unlock()
	for _, dl := range send {
		w.start(cfg, dl)
	}
	if len(back) > 0 {
		w.giveBack(back)
		if !stopping {
			w.wake() // their room may be claimed again
		}
	}
}

// giveBack releases the leases of claimed deliveries that will not be
// sent, so that they are due again at once, for this instance or
// another. If the store fails, their leases expire instead.
func (w *worker) giveBack(ds []*store.Delivery) {
	leases := make([]store.DeliveryLease, len(ds))
	for i, dl := range ds {
		leases[i] = store.DeliveryLease{ID: dl.ID, Attempt: dl.Attempts, Until: dl.NextAttemptAt}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.r.hard), recordTimeout)
	defer cancel()
	n, err := w.d.store.DeliveryReleaseLeases(ctx, &store.DeliveryReleaseLeasesParams{Leases: leases, Now: w.d.now()})
	if err != nil {
		w.d.log.Error("give back claimed deliveries", "destination", w.name, "deliveries", len(ds), "err", err)
		return
	}
	w.d.log.Debug("gave back claimed deliveries", "destination", w.name, "deliveries", len(ds), "released", n)
}

// start sends dl, for which pump took a slot, on its own goroutine, which
// [Dispatcher.Run] waits for.
func (w *worker) start(cfg *destConfig, dl *store.Delivery) {
	w.r.leases.add(dl)
	w.r.wg.Add(1)
	go func() {
		defer w.r.wg.Done()
		defer w.r.leases.remove(dl)
		var once sync.Once
		release := func() { once.Do(w.release) }
		next := w.attempt(cfg, dl, release)
		release()
		w.finish(next)
	}()
}

// release frees the concurrency slot of an attempt whose HTTP exchange is
// over, refills it from the held deliveries, and wakes the loop to claim
// more. max_concurrency bounds requests in flight to
// the destination; recording the outcome does not hold a slot, so a
// commit queued behind ingest batches does not throttle delivery. An
// ordered destination still waits: its head stays leased until recorded.
func (w *worker) release() {
	w.mu.Lock()
	w.inflight--
	w.mu.Unlock()
	w.pump(false)
	w.wake()
}

// finish notes when an attempt scheduled its delivery for next (zero if
// it did not) and wakes the loop, which also claims the next head of an
// ordered destination now that this attempt is recorded.
func (w *worker) finish(next time.Time) {
	w.mu.Lock()
	if !next.IsZero() && (w.next.IsZero() || next.Before(w.next)) {
		w.next = next
	}
	w.mu.Unlock()
	w.wake()
}
