// Package task owns the event → task step: durable tasks that complete
// when a matching webhook event arrives. It parses and checks what a
// caller waits for ([Wait], [Spec]), creates the task ([Tasks.Create]),
// and runs the correlator ([Tasks.Run]) that completes tasks on their
// event, fails them at their deadline, and deletes them after their TTL.
//
// Both edges that create tasks use it: the admin API (POST /api/v1/tasks)
// and the MCP server (wait_for_event, async tools). It knows nothing of
// the MCP protocol beyond the shape of the result a task stores (a
// tools/call result), and it runs whether the MCP server is on or off.
//
// Correlation work is bounded three ways. Every filter evaluation is
// bounded by the CEL cost limit of [route.MaxCost]. A new wait's look-back
// over past events runs off the request path, examines at most
// [Options.LookBackEvents] events and stops after [Options.LookBackTime].
// And work is scheduled round-robin over task owners, one job per owner at
// a time, on [Options.Workers] workers, so an owner with expensive filters
// delays another owner's waits by at most one evaluation.
package task

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/store"
)

// Defaults of [Options].
const (
	// DefaultTimeout is how long a wait lasts when it does not say.
	DefaultTimeout = time.Hour
	// MaxTTL caps how long a task is kept.
	MaxTTL = 7 * 24 * time.Hour
	// DefaultLookBackEvents is how many past events a look-back examines
	// at most (the newest ones).
	DefaultLookBackEvents = 1000
	// DefaultLookBackTime is how long a look-back runs at most.
	DefaultLookBackTime = 10 * time.Second
	// DefaultReloadInterval is how often the index is rebuilt from
	// storage and expired tasks are deleted.
	DefaultReloadInterval = time.Minute
	// lookBackPage is how many events one look-back job examines, so that
	// other owners' jobs run between a long look-back's pages.
	lookBackPage = 20
)

// Options configures [Tasks]. The zero value is ready to use.
type Options struct {
	// Logger receives correlation problems. If nil, they are discarded.
	Logger *slog.Logger
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// DefaultTimeout is a wait's timeout when it sets none. Zero means
	// [DefaultTimeout].
	DefaultTimeout time.Duration
	// PollInterval is suggested to clients polling a task. Zero means 1s.
	PollInterval time.Duration
	// Workers is how many filter evaluations run in parallel (each for a
	// different owner). Zero means GOMAXPROCS.
	Workers int
	// LookBackEvents caps the past events a look-back examines. Zero
	// means [DefaultLookBackEvents].
	LookBackEvents int
	// LookBackTime caps how long a look-back runs. Zero means
	// [DefaultLookBackTime].
	LookBackTime time.Duration
	// ReloadInterval is how often the index is rebuilt from storage and
	// tasks past their TTL are deleted. Zero means [DefaultReloadInterval].
	ReloadInterval time.Duration
	// OnComplete, if non-nil, is called after an event completed a task.
	OnComplete func(t *store.Task)
}

// Store is what tasks need of storage: the tasks themselves, the events
// and requests they match, and change notifications.
type Store interface {
	store.Tasks
	store.History
	store.Notifier
}

// Tasks creates wait tasks and completes them. Build it with [New] and run
// [Tasks.Run] for as long as tasks may be created. It is safe for
// concurrent use.
type Tasks struct {
	store   Store
	catalog *catalog.Catalog
	log     *slog.Logger
	now     func() time.Time
	opts    Options
	queue   *fairQueue

	mu       sync.Mutex
	bySource map[string]*sourceIndex
	byKey    map[string]*waiter
	// gen counts additions to the index (waiter.gen).
	gen uint64
}

// New returns the task service over s, checking sources and compiling
// filters with cat. s and cat must not be nil.
func New(s Store, cat *catalog.Catalog, opts *Options) *Tasks {
	if s == nil || cat == nil {
		panic("task.New: nil store or catalog")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Logger = cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	if o.Now == nil {
		o.Now = time.Now
	}
	o.DefaultTimeout = cmp.Or(o.DefaultTimeout, DefaultTimeout)
	o.PollInterval = cmp.Or(o.PollInterval, time.Second)
	o.Workers = cmp.Or(o.Workers, runtime.GOMAXPROCS(0))
	o.LookBackEvents = cmp.Or(o.LookBackEvents, DefaultLookBackEvents)
	o.LookBackTime = cmp.Or(o.LookBackTime, DefaultLookBackTime)
	o.ReloadInterval = cmp.Or(o.ReloadInterval, DefaultReloadInterval)
	return &Tasks{
		store: s, catalog: cat, log: o.Logger, now: o.Now, opts: o, queue: newFairQueue(),
		bySource: map[string]*sourceIndex{}, byKey: map[string]*waiter{},
	}
}

// NewID returns a task id with 130 bits from crypto/rand.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return "task_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// FailRule is an async tool's failure expectation: an event matching it
// fails the task instead of completing it.
type FailRule struct {
	Source string         `json:"source"`
	Type   string         `json:"type,omitempty"`
	Match  map[string]any `json:"match,omitempty"`
	Filter string         `json:"filter,omitempty"`
}

// CreateParams is the input of [Tasks.Create].
type CreateParams struct {
	// Wait is what the task waits for.
	Wait
	// TTL is how long the task is kept. Zero means the timeout plus an
	// hour; it is capped at [MaxTTL], and the timeout at the TTL.
	TTL time.Duration
	// Owner is the identity the task belongs to; required.
	Owner string
	// Project is the project the task is created in: the wait's and the
	// fail rule's sources are names in it (short, or full in it), and the
	// task is listed in it only. Empty is a caller of every project: the
	// names are full, and the task is in its wait source's project.
	Project string
	// SessionID and Protocol are the MCP session and revision of the call
	// that created the task, if any.
	SessionID, Protocol string
	// Tool names the call that created the task (wait_for_event, or an
	// async tool).
	Tool string
	// StatusMessage is shown while the task waits. Empty means "waiting
	// for a <source> <type> event".
	StatusMessage string
	// PollInterval is suggested to clients. Zero means the option's.
	PollInterval time.Duration
	// CallArguments are the arguments of a proxied tool call, kept with
	// the task.
	CallArguments json.RawMessage
	// Upstream is a proxied tool's own result, combined into the task's.
	Upstream json.RawMessage
	// Fail, if non-nil, is an event that fails the task.
	Fail *FailRule
}

// storedArgs is the task's Arguments: the resolved wait, and for an async
// tool its call, the upstream result and the failure rule. The correlator
// reads match, upstream and fail back from it.
type storedArgs struct {
	Source    string          `json:"source,omitempty"`
	Type      string          `json:"type,omitempty"`
	Match     map[string]any  `json:"match,omitempty"`
	Filter    string          `json:"filter,omitempty"`
	Since     string          `json:"since,omitempty"`
	Timeout   string          `json:"timeout,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Upstream  json.RawMessage `json:"upstream,omitempty"`
	Fail      *FailRule       `json:"fail,omitempty"`
}

// Create checks p, stores the task, indexes it, and starts its look-back
// over past events; it returns without waiting for the look-back, which
// completes the task if a past event matches. A wrong argument is an
// [*InputError].
func (t *Tasks) Create(ctx context.Context, p *CreateParams) (*store.Task, error) {
	if p.Owner == "" {
		return nil, errors.New("create task: no owner")
	}
	// Without a project the caller acts in every project: its names are
	// full, and the task is in the project of the source it waits on.
	project := p.Project
	if project == "" {
		project = store.ProjectOf(p.Wait.Source)
	}
	wait := p.Wait
	if wait.Source != "" {
		full, err := store.Qualify(project, wait.Source)
		if err != nil {
			return nil, inputf("source: %q does not exist (see list_sources or GET /api/v1/sources)", wait.Source)
		}
		wait.Source = full
	}
	if f := p.Fail; f != nil && f.Source != "" {
		full, err := store.Qualify(project, f.Source)
		if err != nil {
			return nil, inputf("fail.source: %q does not exist", f.Source)
		}
		fail := *f
		fail.Source = full
		p.Fail = &fail
	}
	spec, err := t.Resolve(ctx, &wait)
	if err != nil {
		return nil, err
	}
	if p.TTL < 0 {
		return nil, inputf("ttl: %s is negative", p.TTL)
	}
	if f := p.Fail; f != nil && f.Filter != "" {
		if err := t.catalog.Compiler().CheckFilter(f.Filter); err != nil {
			return nil, inputf("fail.filter: %v", err)
		}
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = min(spec.Timeout, MaxTTL) + time.Hour // not the timeout + 1h: it may be the longest duration
	}
	ttl = min(ttl, MaxTTL)
	timeout := min(spec.Timeout, ttl)
	args, err := json.Marshal(storedArgs{Source: spec.Source, Type: spec.Type, Match: p.Match, Filter: spec.Filter,
		Since: spec.Since.UTC().Format(time.RFC3339Nano), Timeout: timeout.String(),
		Arguments: p.CallArguments, Upstream: p.Upstream, Fail: p.Fail})
	if err != nil {
		return nil, inputf("match: %v", err)
	}
	tk := &store.Task{
		ID: NewID(), Owner: p.Owner, Project: project, SessionID: p.SessionID, Protocol: p.Protocol, Tool: p.Tool,
		Arguments: args, TTL: ttl, PollInterval: cmp.Or(p.PollInterval, t.opts.PollInterval),
		StatusMessage: cmp.Or(p.StatusMessage, fmt.Sprintf("waiting for a %s event", spec.Describe())),
		Wait: &store.TaskWait{Source: spec.Source, Type: spec.Type, Filter: spec.Filter, Since: spec.Since,
			Deadline: t.now().Add(timeout)},
	}
	if err := t.store.TaskCreate(ctx, tk); err != nil {
		return nil, fmt.Errorf("create task: %w", err)
	}
	t.track(ctx, tk)
	for _, key := range []string{tk.ID + failSuffix, tk.ID} {
		if w := t.indexed(key); w != nil {
			t.lookBack(w)
		}
	}
	t.log.Debug("task created", "task", tk.ID, "owner", tk.Owner, "tool", tk.Tool, "source", spec.Source, "type", spec.Type)
	return tk, nil
}

// FilterCost returns what the filter of waiting task id has cost on this
// instance, or nil when the task has no filter or is not waiting here.
func (t *Tasks) FilterCost(id string) *FilterCost {
	if w := t.indexed(id); w != nil {
		return w.m.Cost()
	}
	return nil
}

// Forget drops task id from the index at once, after it was cancelled or
// finished here; other instances drop it on its change notification.
func (t *Tasks) Forget(id string) {
	t.remove(id)
	t.remove(id + failSuffix)
}

// WaitSync waits without a stored task, for callers that cannot take one:
// it looks back over past events, then waits up to d for a matching
// event. It returns nil when none came. owner is whose turn the wait's
// filter evaluations take.
func (t *Tasks) WaitSync(ctx context.Context, owner string, spec Spec, d time.Duration) (*EventView, error) {
	m, err := t.Compile(spec)
	if err != nil {
		return nil, inputf("filter: %v", err)
	}
	w := &waiter{key: NewID(), owner: owner, m: m, ch: make(chan *EventView, 1)}
	t.add(w)
	defer t.remove(w.key)
	t.lookBack(w)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case ev := <-w.ch:
		return ev, nil
	case <-timer.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run correlates until ctx ends: it reacts to event.created and
// task.changed notifications, runs the evaluation workers, fails tasks
// past their deadline every second, and every ReloadInterval rebuilds the
// index from storage (notifications are hints) and deletes tasks past
// their TTL.
func (t *Tasks) Run(ctx context.Context) error {
	notes := t.store.Subscribe(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	for range t.opts.Workers {
		wg.Go(func() { t.queue.work(ctx) })
	}
	if err := t.Reload(ctx); err != nil {
		t.log.Warn("load waiting tasks", "err", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	reload := time.NewTicker(t.opts.ReloadInterval)
	defer reload.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case n, ok := <-notes:
			if !ok {
				return nil
			}
			t.notified(ctx, n)
		case <-tick.C:
			t.expire(ctx)
		case <-reload.C:
			if err := t.Reload(ctx); err != nil {
				t.log.Warn("reload waiting tasks", "err", err)
			}
			if _, err := t.store.TaskDeleteExpired(ctx, t.now(), 1000); err != nil {
				t.log.Warn("delete expired tasks", "err", err)
			}
		}
	}
}

// notified handles one store notification.
func (t *Tasks) notified(ctx context.Context, n store.Notification) {
	switch n.Kind {
	case store.NotifyEventCreated:
		if err := t.HandleEvent(ctx, n.ID, n.Source); err != nil {
			t.log.Warn("correlate event", "event", n.ID, "err", err)
		}
	case store.NotifyTaskChanged:
		tk, err := t.store.TaskGet(ctx, n.ID, time.Time{})
		switch {
		case errors.Is(err, store.ErrNotFound):
			t.Forget(n.ID)
		case err != nil:
			t.log.Warn("load task", "task", n.ID, "err", err)
		default:
			t.track(ctx, tk)
		}
	}
}
