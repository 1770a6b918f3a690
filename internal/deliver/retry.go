package deliver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// retryPlan is the retry policy that applies to one delivery: its
// destination's, or the rule of its connection that matches its event's
// type ([store.RetryRule]), with the destination's values filled in where
// the rule leaves them out. [Dispatcher.decide] follows it; applied is how
// the delivery shows it.
type retryPlan struct {
	applied store.RetryApplied
	// maxAttempts bounds the automatic attempts.
	maxAttempts int
	// maxAge ends retrying this long after the delivery was created; 0
	// means no age limit.
	maxAge time.Duration
	// schedule, when set, gives the delay before each retry, its last
	// repeated; otherwise exponential backoff from initial, capped at max.
	schedule     []time.Duration
	initial, max time.Duration
	retryOn      []int
}

// destinationPlan is cfg's own retry policy.
func destinationPlan(cfg *destConfig) *retryPlan {
	return &retryPlan{
		applied: store.RetryApplied{Policy: "destination " + cfg.dest.Name, MaxAttempts: cfg.maxAttempts,
			Initial: store.Duration(cfg.initial), Max: store.Duration(cfg.max)},
		maxAttempts: cfg.maxAttempts,
		initial:     cfg.initial,
		max:         cfg.max,
		retryOn:     cfg.dest.Retry.RetryOn,
	}
}

// rulePlan is the plan of rule i of connection conn, for an event of type
// typ, over the destination's policy cfg.
func rulePlan(cfg *destConfig, conn string, i int, r *store.RetryRule, typ string) *retryPlan {
	p := destinationPlan(cfg)
	p.maxAttempts = r.Attempts(cfg.maxAttempts)
	p.maxAge = r.MaxAge.D()
	p.initial = cmpOr(r.Initial.D(), cfg.initial)
	p.max = cmpOr(r.Max.D(), cfg.max)
	for _, d := range r.Schedule {
		p.schedule = append(p.schedule, d.D())
	}
	p.applied = store.RetryApplied{
		Policy:      "connection " + conn + " retry[" + strconv.Itoa(i) + "]",
		EventType:   typ,
		Types:       slices.Clone(r.Types),
		MaxAttempts: p.maxAttempts,
		MaxAge:      r.MaxAge,
		Schedule:    slices.Clone(r.Schedule),
	}
	if len(r.Schedule) == 0 {
		p.applied.Initial, p.applied.Max = store.Duration(p.initial), store.Duration(p.max)
	}
	return p
}

// retryPlan returns the plan of dl: the first retry rule of its
// connection that matches its event's type, else its destination's
// policy. The event's type is read only when the connection has rules. An
// error is storage trouble: the caller leaves the delivery to its lease.
func (d *Dispatcher) retryPlan(ctx context.Context, cfg *destConfig, dl *store.Delivery) (*retryPlan, error) {
	if d.opts.Connection == nil || dl.ConnectionID == "" {
		return destinationPlan(cfg), nil
	}
	conn := d.opts.Connection(dl.ConnectionID)
	if conn == nil || len(conn.Retry) == 0 {
		return destinationPlan(cfg), nil
	}
	ev, err := d.store.EventGetByID(ctx, dl.EventID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Pruned: its request is gone too, and the attempt fails on that.
		return destinationPlan(cfg), nil
	case err != nil:
		return nil, fmt.Errorf("read the event type of delivery %s: %w", dl.ID, err)
	}
	rule, i := conn.RetryRuleFor(ev.Type)
	if rule == nil {
		return destinationPlan(cfg), nil
	}
	return rulePlan(cfg, conn.ID, i, rule, ev.Type), nil
}

// delay is how long to wait after failed attempt number n: the schedule's
// n-th delay (its last once past its end), or exponential backoff. A
// Retry-After from the receiver replaces the backoff, and lengthens a
// scheduled delay; either way it is capped at max.
func (p *retryPlan) delay(n int, retryAfter time.Duration, rnd float64) time.Duration {
	if len(p.schedule) == 0 {
		return Backoff(n, p.initial, p.max, retryAfter, rnd)
	}
	d := p.schedule[min(max(n, 1), len(p.schedule))-1]
	if retryAfter > d {
		d = min(retryAfter, max(p.max, d))
	}
	return d
}

// decide maps an attempt of a delivery created at created to the
// delivery's next status, next due time and outcome, following plan, and
// says what it decided in the returned [store.RetryApplied]. It is the one
// place where a failed attempt's retry is decided.
func (d *Dispatcher) decide(plan *retryPlan, a *store.Attempt, created time.Time, retryAfter time.Duration, canceled bool, now time.Time) (status string, next time.Time, outcome string, applied *store.RetryApplied) {
	applied = new(store.RetryApplied)
	*applied = plan.applied
	dead := func(format string, args ...any) (string, time.Time, string, *store.RetryApplied) {
		applied.Decision, applied.Reason = OutcomeDead, fmt.Sprintf(format, args...)
		return store.DeliveryDead, time.Time{}, OutcomeDead, applied
	}
	var deadline time.Time
	if plan.maxAge > 0 {
		deadline = created.Add(plan.maxAge)
	}
	switch {
	case a.Success:
		status, next, outcome = store.DeliverySucceeded, time.Time{}, OutcomeSucceeded
	case canceled:
		// Our stop, not the receiver's failure: due again at once.
		status, next, outcome = store.DeliveryPending, now, OutcomeCanceled
	case a.StatusCode == http.StatusGone:
		// The receiver says it is gone for good: stop sending to it
		// until an operator resumes it, then deliver at once.
		status, next, outcome = store.DeliveryPending, now, OutcomePaused
	case a.StatusCode != 0 && len(plan.retryOn) > 0 && !slices.Contains(plan.retryOn, a.StatusCode):
		// A status the destination does not retry. Transport errors
		// and timeouts carry no status and are always retried.
		return dead("status %d is not in the destination's retry_on", a.StatusCode)
	case plan.maxAttempts > 0 && a.Number >= plan.maxAttempts:
		return dead("%d of %d attempts made", a.Number, plan.maxAttempts)
	case !deadline.IsZero() && !now.Before(deadline):
		return dead("max_age %s reached", store.Duration(plan.maxAge))
	default:
		next = now.Add(plan.delay(a.Number, retryAfter, d.rnd()))
		if !deadline.IsZero() && next.After(deadline) {
			// The last retry goes at the deadline, so the whole age is used.
			next = deadline
		}
		status, outcome = store.DeliveryPending, OutcomeRetry
	}
	applied.Decision = outcome
	return status, next, outcome, applied
}
