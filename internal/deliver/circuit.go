package deliver

import (
	"context"
	"fmt"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// The circuit breaker of a destination ([store.CircuitBreaker]).
//
// Its state lives in the store, shared by every instance, and moves only by
// compare-and-set ([store.Catalog.DestinationSetCircuit]): of several
// instances that see the threshold crossed one opens the circuit, and of
// several that see its cooldown end one sends the probe. The failure counts
// that decide to open it are each instance's own (the attempts it made).
//
//	closed ──threshold──▶ open ──cooldown over──▶ half_open ──probe 2xx──▶ closed
//	                        ▲                        │
//	                        └──probe failed (cooldown doubles, capped)
//
// While open nothing is claimed: deliveries stay pending and use up no
// attempts, so nothing is lost. A half-open probe is one ordinary claim of
// one due delivery; its outcome is recorded as any other attempt's.

// Circuit transitions passed to [Options.OnCircuit].
const (
	CircuitOpened   = "opened"   // closed -> open: the threshold was crossed
	CircuitProbing  = "probing"  // open -> half_open: one probe goes out
	CircuitReopened = "reopened" // half_open -> open: the probe failed
	CircuitClosed   = "closed"   // half_open -> closed: the probe succeeded
)

// mark is one attempt's outcome as the breaker counts it.
type mark struct {
	at     time.Time
	failed bool
}

// breaker is one worker's view of its destination's circuit: the state as
// last read or written, and the outcomes this instance saw. Guarded by the
// worker's mu.
type breaker struct {
	state       store.CircuitState
	consecutive int
	recent      []mark // within the window, oldest first
	// probe is the delivery this worker sends as the half-open probe, once
	// claimed; probing says this worker owns the probe.
	probing bool
	probe   string
}

// circuitPolicy is a [store.CircuitBreaker] with its defaults filled in.
type circuitPolicy struct {
	store.CircuitBreaker
	window, cooldown, maxCooldown time.Duration
	minAttempts                   int
}

func newCircuitPolicy(c store.CircuitBreaker) circuitPolicy {
	p := circuitPolicy{
		CircuitBreaker: c,
		window:         cmpOr(c.Window.D(), store.DefaultCircuitWindow),
		cooldown:       cmpOr(c.Cooldown.D(), store.DefaultCircuitCooldown),
		maxCooldown:    cmpOr(c.MaxCooldown.D(), store.DefaultCircuitMaxCooldown),
		minAttempts:    c.MinAttempts,
	}
	if p.minAttempts <= 0 {
		p.minAttempts = store.DefaultCircuitMinAttempts
	}
	p.maxCooldown = max(p.maxCooldown, p.cooldown)
	return p
}

// cooldownAfter is how long the circuit stays open after its opens-th
// opening: cooldown doubled for each earlier one, capped.
func (p circuitPolicy) cooldownAfter(opens int) time.Duration {
	d := p.cooldown
	for i := 1; i < opens && d < p.maxCooldown; i++ {
		d *= 2
	}
	return min(d, p.maxCooldown)
}

// trip adds one outcome and reports why the circuit should open, or "".
func (b *breaker) trip(p circuitPolicy, now time.Time, failed bool) string {
	if failed {
		b.consecutive++
	} else {
		b.consecutive = 0
	}
	b.recent = append(b.recent, mark{at: now, failed: failed})
	cut := 0
	for cut < len(b.recent) && now.Sub(b.recent[cut].at) > p.window {
		cut++
	}
	b.recent = b.recent[cut:]
	if p.Failures > 0 && b.consecutive >= p.Failures {
		return fmt.Sprintf("%d failed attempts in a row", b.consecutive)
	}
	if p.ErrorRatio > 0 && len(b.recent) >= p.minAttempts {
		n := 0
		for _, m := range b.recent {
			if m.failed {
				n++
			}
		}
		if ratio := float64(n) / float64(len(b.recent)); ratio >= p.ErrorRatio {
			return fmt.Sprintf("%d of the last %d attempts failed (%.0f%% within %s)", n, len(b.recent), ratio*100, p.window)
		}
	}
	return ""
}

// reset forgets the counted outcomes (on every transition).
func (b *breaker) reset() {
	b.consecutive, b.recent = 0, b.recent[:0]
}

// circuitGate is the run loop's question to the breaker before it claims:
// how many deliveries it may claim at most (-1: no limit from the
// breaker), and when to look again if it may claim none. A circuit whose
// cooldown is over is moved to half-open here, by one instance.
func (w *worker) circuitGate(cfg *destConfig) (limit int, wakeAt time.Time) {
	if !cfg.circuit.Enabled() {
		return -1, time.Time{}
	}
	now := w.d.now()
	w.mu.Lock()
	st := w.br.state
	probing, probe := w.br.probing, w.br.probe
	w.mu.Unlock()
	switch st.State {
	case store.CircuitClosed:
		return -1, time.Time{}
	case store.CircuitOpen, store.CircuitHalfOpen:
		if probing {
			if probe == "" {
				return 1, time.Time{} // the probe is not claimed yet
			}
			return 0, st.ProbeAt
		}
		if now.Before(st.ProbeAt) {
			return 0, st.ProbeAt
		}
		// The cooldown is over (or another instance's probe lease ran out
		// without a result): take the probe.
		half := store.CircuitState{State: store.CircuitHalfOpen, Since: now, ProbeAt: now.Add(cfg.timeout + w.d.opts.Lease),
			Opens: st.Opens, Reason: st.Reason}
		if w.moveCircuit(cfg, st, half, CircuitProbing) {
			w.mu.Lock()
			w.br.probing, w.br.probe = true, ""
			w.mu.Unlock()
			return 1, time.Time{}
		}
		return 0, now.Add(w.d.opts.PollInterval)
	}
	return -1, time.Time{}
}

// claimedProbe notes which delivery is the probe, when the worker is
// probing and this claim is its first.
func (w *worker) claimedProbe(ds []*store.Delivery) {
	if len(ds) == 0 {
		return
	}
	w.mu.Lock()
	if w.br.probing && w.br.probe == "" {
		w.br.probe = ds[0].ID
	}
	w.mu.Unlock()
}

// observeCircuit counts one finished attempt of dl and moves the circuit
// when it must: a probe's outcome closes or reopens it; in the closed
// state a crossed threshold opens it.
//
// Only attempts that reached the receiver count (reached, see
// [reachedReceiver]). One that failed on mailroom's side (a
// transformation that throws, a signing or OAuth2 token failure, the
// address guard, a proxy) says nothing about the receiver, and since a
// transformation belongs to one connection, counting it would let one
// connection's broken script stop the destination for all the others. A
// probe that did not reach the receiver is given back: the next claim
// probes instead.
func (w *worker) observeCircuit(cfg *destConfig, dl *store.Delivery, a *store.Attempt, reached bool) {
	failed := !a.Success
	if !cfg.circuit.Enabled() {
		return
	}
	now := w.d.now()
	w.mu.Lock()
	st := w.br.state
	isProbe := w.br.probing && w.br.probe == dl.ID
	if !reached {
		if isProbe {
			w.br.probe = ""
		}
		w.mu.Unlock()
		if isProbe {
			w.wake()
		}
		return
	}
	var reason string
	if !isProbe && st.State == store.CircuitClosed {
		reason = w.br.trip(cfg.circuit, now, failed)
	}
	if isProbe {
		w.br.probing, w.br.probe = false, ""
	}
	w.mu.Unlock()
	switch {
	case isProbe && !failed:
		w.moveCircuit(cfg, st, store.CircuitState{Since: now}, CircuitClosed)
	case isProbe:
		opens := st.Opens + 1
		w.moveCircuit(cfg, st, store.CircuitState{State: store.CircuitOpen, Since: now,
			ProbeAt: now.Add(cfg.circuit.cooldownAfter(opens)), Opens: opens, Reason: "probe failed: " + attemptError(a)}, CircuitReopened)
	case reason != "":
		w.moveCircuit(cfg, st, store.CircuitState{State: store.CircuitOpen, Since: now,
			ProbeAt: now.Add(cfg.circuit.cooldownAfter(1)), Opens: 1, Reason: reason}, CircuitOpened)
	}
}

// moveCircuit sets the destination's circuit from -> to in the store and,
// when it moved, adopts it, logs it and calls [Options.OnCircuit]. When
// another instance moved it first, the worker reads the state back.
func (w *worker) moveCircuit(cfg *destConfig, from, to store.CircuitState, transition string) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.r.hard), recordTimeout)
	defer cancel()
	moved, err := w.d.store.DestinationSetCircuit(ctx, w.name, from, to)
	if err != nil {
		w.d.log.Error("circuit breaker: set state", "destination", w.name, "to", to.State, "err", err)
		return false
	}
	if !moved {
		if dest, err := w.d.store.DestinationGet(ctx, w.name); err == nil {
			w.adoptCircuit(dest.Circuit)
		}
		return false
	}
	w.adoptCircuit(to)
	log := w.d.log.Warn
	if transition == CircuitClosed || transition == CircuitProbing {
		log = w.d.log.Info
	}
	log("circuit breaker "+transition, "destination", w.name, "state", circuitName(to.State), "reason", to.Reason,
		"probe_at", to.ProbeAt, "opens", to.Opens)
	if w.d.opts.OnCircuit != nil {
		w.d.opts.OnCircuit(w.name, transition, to)
	}
	if transition == CircuitClosed {
		w.wake()
	}
	return true
}

// adoptCircuit takes st as the circuit's state unless the worker already
// knows a later one (a reload listed before the worker's own move).
func (w *worker) adoptCircuit(st store.CircuitState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st.Since.Before(w.br.state.Since) {
		return
	}
	if st.State != w.br.state.State || !st.Since.Equal(w.br.state.Since) {
		w.br.reset()
		if st.State != store.CircuitHalfOpen {
			w.br.probing, w.br.probe = false, ""
		}
	}
	w.br.state = st
}

// attemptError says how a failed attempt failed.
func attemptError(a *store.Attempt) string {
	if a.Error != "" {
		return a.Error
	}
	return fmt.Sprintf("HTTP %d", a.StatusCode)
}

// circuitName is a state as logs and the API show it.
func circuitName(state string) string {
	if state == store.CircuitClosed {
		return "closed"
	}
	return state
}
