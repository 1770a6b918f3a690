// Package retention prunes old history from the store: requests, events,
// finished deliveries and their attempts older than the configured
// retention, dedup keys whose window has ended, and audit log entries
// older than the audit retention. It owns the schedule
// and the batching; what may be deleted is [store.Pruner.Prune]'s contract.
//
// Work is done in small batches with a pause between them, so that pruning
// a large backlog never holds storage long enough to delay ingestion.
package retention

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Defaults for zero [Options] fields.
const (
	// DefaultRetention is how long history is kept: 30 days.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultInterval is the time between two passes.
	DefaultInterval = 10 * time.Minute
	// DefaultBatch is the rows per table deleted by one Prune call.
	DefaultBatch = 500
	// DefaultPause is the pause between two Prune calls of one pass.
	DefaultPause = 50 * time.Millisecond
	// DefaultPassTimeout bounds one pass.
	DefaultPassTimeout = 5 * time.Minute
)

// maxBackoff caps the wait after consecutive failed passes.
const maxBackoff = 10 * time.Minute

// Options tunes a [Cleaner]. The zero value is ready to use.
type Options struct {
	// Retention is how long history is kept. If zero, [DefaultRetention].
	Retention time.Duration
	// AuditRetention is how long audit log entries are kept. If zero,
	// they are kept.
	AuditRetention time.Duration
	// Projects are the projects that keep their history for their own
	// time instead of Retention, by name.
	Projects map[string]time.Duration
	// Interval is the time between passes. If zero, [DefaultInterval].
	Interval time.Duration
	// Batch caps the rows per table one Prune call deletes. If zero,
	// [DefaultBatch].
	Batch int
	// Pause is the wait between Prune calls of one pass. If zero,
	// [DefaultPause].
	Pause time.Duration
	// PassTimeout bounds one pass. If zero, [DefaultPassTimeout].
	PassTimeout time.Duration
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
	// Logger receives a line per pass that deleted something, and
	// failures. If nil, logs are discarded.
	Logger *slog.Logger
}

// Cleaner prunes the store periodically. Create it with [New]; it is used
// by one [Cleaner.Run] at a time.
type Cleaner struct {
	store store.Pruner
	opts  Options
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Cleaner for s. opts may be nil; it is copied.
func New(s store.Pruner, opts *Options) *Cleaner {
	if s == nil {
		panic("retention: New with nil store")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Retention = cmp.Or(max(o.Retention, 0), DefaultRetention)
	o.Interval = cmp.Or(max(o.Interval, 0), DefaultInterval)
	o.Batch = cmp.Or(max(o.Batch, 0), DefaultBatch)
	o.Pause = cmp.Or(max(o.Pause, 0), DefaultPause)
	o.PassTimeout = cmp.Or(max(o.PassTimeout, 0), DefaultPassTimeout)
	c := &Cleaner{store: s, opts: o, log: o.Logger, now: o.Now}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Result is what one pass deleted.
type Result struct {
	store.PruneResult
	// Calls is the number of Prune calls the pass made.
	Calls int
}

// Run prunes once at start and then every [Options.Interval] until ctx
// ends, when it returns nil. A failed pass is logged and retried with a
// backoff that doubles up to the interval (at most 10 minutes); it returns
// an error only when the store is closed.
func (c *Cleaner) Run(ctx context.Context) error {
	var backoff time.Duration
	wait := time.Duration(0)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		res, err := c.RunOnce(ctx)
		switch {
		case err == nil:
			backoff, wait = 0, c.opts.Interval
			if res.Total() > 0 {
				c.log.Info("retention: pruned old history", "requests", res.Requests, "events", res.Events,
					"deliveries", res.Deliveries, "attempts", res.Attempts, "dedup_keys", res.Dedup, "audit_entries", res.Audit, "calls", res.Calls)
			}
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, store.ErrClosed):
			return err
		default:
			backoff = min(max(backoff*2, time.Second), min(c.opts.Interval, maxBackoff))
			wait = backoff
			c.log.Error("retention: prune", "err", err, "retry_in", backoff)
		}
	}
}

// RunOnce runs one pass: Prune calls with a pause between them until the
// store reports nothing more to delete, the pass timeout, or ctx ends.
// The projects with a retention of their own are pruned each to its own
// horizon, the others together to Retention's.
func (c *Cleaner) RunOnce(ctx context.Context) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.PassTimeout)
	defer cancel()
	now := c.now()
	except := slices.Sorted(maps.Keys(c.opts.Projects))
	passes := []*store.PruneParams{{Before: now.Add(-c.opts.Retention), Now: now, Limit: c.opts.Batch, Except: except}}
	for _, name := range except {
		passes = append(passes, &store.PruneParams{Before: now.Add(-c.opts.Projects[name]), Now: now, Limit: c.opts.Batch, Project: name})
	}
	if c.opts.AuditRetention > 0 {
		passes[0].AuditBefore = now.Add(-c.opts.AuditRetention)
	}
	var total Result
	for _, p := range passes {
		done, err := c.prune(ctx, p, &total)
		if err != nil || !done {
			return &total, err
		}
	}
	total.Done = true
	return &total, nil
}

// prune calls Prune with p until it is done, adding what it deleted to
// total. It reports whether it got done (not stopped by the pass timeout).
func (c *Cleaner) prune(ctx context.Context, p *store.PruneParams, total *Result) (bool, error) {
	for {
		res, err := c.store.Prune(ctx, p)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && total.Total() > 0 {
				// Time is up for this pass; the next one goes on.
				return false, nil
			}
			return false, err
		}
		total.Calls++
		total.Requests += res.Requests
		total.Events += res.Events
		total.Deliveries += res.Deliveries
		total.Attempts += res.Attempts
		total.Dedup += res.Dedup
		total.Audit += res.Audit
		if res.Done {
			return true, nil
		}
		t := time.NewTimer(c.opts.Pause)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return false, nil
			}
			return false, ctx.Err()
		case <-t.C:
		}
	}
}
