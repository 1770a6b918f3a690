package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
)

// EventView is what a tool result, a resource and a channel message show
// of one event: its identity and the request that carried it.
type EventView struct {
	EventID    string            `json:"event_id"`
	Source     string            `json:"source"`
	Type       string            `json:"type,omitempty"`
	ReceivedAt time.Time         `json:"received_at"`
	Path       string            `json:"path,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	// Body is the decoded body: JSON as is, a form as an object, anything
	// else as a string.
	Body any `json:"body,omitempty"`
}

// waiter is one registered wait: a stored task, or a synchronous call
// (ch set, task empty).
type waiter struct {
	key    string // task id, or a random id for synchronous waits
	owner  string
	source string
	typ    string
	filter *route.Program
	match  map[string]string
	since  time.Time
	// ch receives the matching event of a synchronous wait.
	ch chan *EventView
	// taskID is the task a stored wait belongs to (key is taskID+failSuffix
	// for a failure wait).
	taskID string
	// fail marks a wait whose event fails the task.
	fail bool
	// upstream is the proxied tool's result, combined into the task's.
	upstream json.RawMessage
	// created and deadline come from the task: past deadline it fails.
	created, deadline time.Time
}

// failSuffix keys the failure wait of a task.
const failSuffix = "#fail"

// taskArgs is what the correlator reads of a task's stored arguments:
// wait_for_event's own arguments, or a proxied async tool's record.
type taskArgs struct {
	Match    map[string]any  `json:"match"`
	Upstream json.RawMessage `json:"upstream,omitempty"`
	Fail     *failRule       `json:"fail,omitempty"`
}

// failRule is a resolved failure expectation of an async tool.
type failRule struct {
	Source string         `json:"source"`
	Type   string         `json:"type,omitempty"`
	Match  map[string]any `json:"match,omitempty"`
	Filter string         `json:"filter,omitempty"`
}

// matches reports whether the event satisfies the wait.
func (w *waiter) matches(ev *store.Event, in *route.Input) bool {
	if ev.Source != w.source || (w.typ != "" && ev.Type != w.typ) {
		return false
	}
	if !w.since.IsZero() && ev.ReceivedAt.Before(w.since) {
		return false
	}
	for path, want := range w.match {
		got, ok := lookupPath(in.Decoded(), path)
		if !ok || fmt.Sprint(got) != want {
			return false
		}
	}
	return w.filter == nil || w.filter.Match(in)
}

// lookupPath follows a dotted path ("data.object.id") through decoded JSON.
func lookupPath(v any, path string) (any, bool) {
	for part := range strings.SplitSeq(path, ".") {
		switch m := v.(type) {
		case map[string]any:
			next, ok := m[part]
			if !ok {
				return nil, false
			}
			v = next
		case map[string]string:
			next, ok := m[part]
			if !ok {
				return nil, false
			}
			v = next
		default:
			return nil, false
		}
	}
	switch n := v.(type) {
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	return v, true
}

// Correlator matches incoming events against open waits. Waits are
// indexed by source, so an event costs a map lookup plus the waits of its
// own source, never a scan of all waits. Completion goes through
// [store.Tasks.TaskUpdate], which lets exactly one of racing matches win,
// on this instance or another.
type Correlator struct {
	store    store.Store
	compiler *route.Compiler
	log      *slog.Logger
	now      func() time.Time
	// onComplete is called after a task was completed by an event.
	onComplete func(t *store.Task)

	mu       sync.Mutex
	bySource map[string]*sourceIndex
	byKey    map[string]*waiter
}

// sourceIndex holds the waits of one source. A wait with match pairs is
// filed under its first pair (path and expected value), so an event costs
// one lookup per distinct path instead of one check per wait.
type sourceIndex struct {
	any    map[string]*waiter
	byPath map[string]map[string]map[string]*waiter // path -> value -> key -> waiter
}

func (w *waiter) indexPath() (path, value string, ok bool) {
	if len(w.match) == 0 {
		return "", "", false
	}
	k := sortedKeys(w.match)[0]
	return k, w.match[k], true
}

// CorrelatorOptions configures a [Correlator].
type CorrelatorOptions struct {
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnComplete is called after an event completes a task.
	OnComplete func(t *store.Task)
}

// NewCorrelator returns a correlator over s. Call [Correlator.Run] to feed it.
func NewCorrelator(s store.Store, c *route.Compiler, opts *CorrelatorOptions) *Correlator {
	if opts == nil {
		opts = &CorrelatorOptions{}
	}
	co := &Correlator{
		store: s, compiler: c, log: opts.Logger, now: opts.Now, onComplete: opts.OnComplete,
		bySource: map[string]*sourceIndex{}, byKey: map[string]*waiter{},
	}
	if co.log == nil {
		co.log = slog.New(slog.DiscardHandler)
	}
	if co.now == nil {
		co.now = time.Now
	}
	return co
}

// WaitSpec is the correlation rule of wait_for_event, as a tool call gives it.
type WaitSpec struct {
	Source string
	Type   string
	Match  map[string]string
	Filter string
	Since  time.Time
}

// compile checks the rule and returns a waiter for it.
func (c *Correlator) compile(key, owner string, spec WaitSpec) (*waiter, error) {
	w := &waiter{key: key, owner: owner, source: spec.Source, typ: spec.Type, match: spec.Match, since: spec.Since}
	if spec.Filter != "" {
		p, err := c.compiler.CompileFilter(spec.Filter)
		if err != nil {
			return nil, err
		}
		w.filter = p
	}
	return w, nil
}

func (c *Correlator) add(w *waiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(w.key)
	c.byKey[w.key] = w
	si := c.bySource[w.source]
	if si == nil {
		si = &sourceIndex{any: map[string]*waiter{}, byPath: map[string]map[string]map[string]*waiter{}}
		c.bySource[w.source] = si
	}
	path, value, ok := w.indexPath()
	if !ok {
		si.any[w.key] = w
		return
	}
	vals := si.byPath[path]
	if vals == nil {
		vals = map[string]map[string]*waiter{}
		si.byPath[path] = vals
	}
	keys := vals[value]
	if keys == nil {
		keys = map[string]*waiter{}
		vals[value] = keys
	}
	keys[w.key] = w
}

func (c *Correlator) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(key)
}

func (c *Correlator) removeLocked(key string) {
	w, ok := c.byKey[key]
	if !ok {
		return
	}
	delete(c.byKey, key)
	si := c.bySource[w.source]
	if si == nil {
		return
	}
	if path, value, ok := w.indexPath(); ok {
		delete(si.byPath[path][value], key)
		if len(si.byPath[path][value]) == 0 {
			delete(si.byPath[path], value)
		}
		if len(si.byPath[path]) == 0 {
			delete(si.byPath, path)
		}
	} else {
		delete(si.any, key)
	}
	if len(si.any) == 0 && len(si.byPath) == 0 {
		delete(c.bySource, w.source)
	}
}

// Len returns the number of open waits indexed.
func (c *Correlator) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}

// hasWaiters reports whether any wait is on source.
func (c *Correlator) hasWaiters(source string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bySource[source] != nil
}

// candidates returns the waits on the event's source that its body could
// satisfy: those without match pairs, and those filed under a path whose
// value in this body is the expected one.
func (c *Correlator) candidates(source string, in *route.Input) []*waiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	si := c.bySource[source]
	if si == nil {
		return nil
	}
	out := make([]*waiter, 0, len(si.any))
	for _, w := range si.any {
		out = append(out, w)
	}
	for path, vals := range si.byPath {
		got, ok := lookupPath(in.Decoded(), path)
		if !ok {
			continue
		}
		for _, w := range vals[fmt.Sprint(got)] {
			out = append(out, w)
		}
	}
	return out
}

// trackTask indexes a stored waiting task.
func (c *Correlator) trackTask(t *store.Task) error {
	if t.Wait == nil || store.TaskTerminal(t.Status) {
		c.remove(t.ID)
		c.remove(t.ID + failSuffix)
		return nil
	}
	var args taskArgs
	_ = json.Unmarshal(t.Arguments, &args) // match pairs are optional
	w, err := c.compile(t.ID, t.Owner, WaitSpec{Source: t.Wait.Source, Type: t.Wait.Type, Filter: t.Wait.Filter,
		Since: t.Wait.Since, Match: matchStrings(args.Match)})
	if err != nil {
		return fmt.Errorf("task %s: %w", t.ID, err)
	}
	w.taskID, w.upstream, w.created, w.deadline = t.ID, args.Upstream, t.CreatedAt, t.Wait.Deadline
	c.add(w)
	if f := args.Fail; f != nil {
		fw, err := c.compile(t.ID+failSuffix, t.Owner, WaitSpec{Source: f.Source, Type: f.Type, Filter: f.Filter,
			Since: t.Wait.Since, Match: matchStrings(f.Match)})
		if err != nil {
			return fmt.Errorf("task %s failure rule: %w", t.ID, err)
		}
		fw.taskID, fw.fail, fw.upstream = t.ID, true, args.Upstream
		c.add(fw)
	}
	return nil
}

// Watch indexes task t and then looks back over the events of its source
// received since its Since, completing it with the oldest match. Indexing
// first means an event that lands during the look-back is not missed.
func (c *Correlator) Watch(ctx context.Context, t *store.Task) error {
	if err := c.trackTask(t); err != nil {
		return err
	}
	for _, key := range []string{t.ID + failSuffix, t.ID} {
		c.mu.Lock()
		w := c.byKey[key]
		c.mu.Unlock()
		if w == nil {
			continue
		}
		ev, err := c.lookBack(ctx, w)
		if err != nil {
			return err
		}
		if ev != nil {
			c.completeTask(ctx, w, ev)
			return nil
		}
	}
	return nil
}

// WaitSync waits without a stored task: it looks back, then waits up to
// d for a matching event. It returns nil when none came.
func (c *Correlator) WaitSync(ctx context.Context, key, owner string, spec WaitSpec, d time.Duration) (*EventView, error) {
	w, err := c.compile(key, owner, spec)
	if err != nil {
		return nil, err
	}
	w.ch = make(chan *EventView, 1)
	c.add(w)
	defer c.remove(key)
	if ev, err := c.lookBack(ctx, w); err != nil || ev != nil {
		return ev, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ev := <-w.ch:
		return ev, nil
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lookBack returns the oldest event matching w received since w.since.
func (c *Correlator) lookBack(ctx context.Context, w *waiter) (*EventView, error) {
	p := &store.EventListParams{Source: w.source, Type: w.typ, Since: w.since, Limit: 1000}
	var found *EventView
	for {
		evs, err := c.store.EventList(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("look back over %s events: %w", w.source, err)
		}
		for _, ev := range evs { // newest first: the last match is the oldest
			view, in, err := c.load(ctx, ev)
			if err != nil {
				return nil, err
			}
			if in != nil && w.matches(ev, in) {
				found = view
			}
		}
		if len(evs) < p.Limit {
			return found, nil
		}
		p.Cursor = evs[len(evs)-1].ID
	}
}

// load fetches the request of ev and builds its view and filter input. A
// request pruned since returns nil input.
func (c *Correlator) load(ctx context.Context, ev *store.Event) (*EventView, *route.Input, error) {
	req, err := c.store.RequestGetByID(ctx, ev.RequestID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load request of event %s: %w", ev.ID, err)
	}
	query, _ := url.ParseQuery(req.Query)
	in := route.NewInput(ev.Source, req.Path, query, req.Headers, req.Body)
	return newEventView(ev, req, in), in, nil
}

// newEventView builds the view of an event. Header values are joined.
func newEventView(ev *store.Event, req *store.Request, in *route.Input) *EventView {
	h := make(map[string]string, len(req.Headers))
	for k, vs := range req.Headers {
		h[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	return &EventView{
		EventID: ev.ID, Source: ev.Source, Type: ev.Type, ReceivedAt: ev.ReceivedAt,
		Path: req.Path, Headers: h, Body: in.Decoded(),
	}
}

// HandleEvent matches one new event against the waits of its source.
func (c *Correlator) HandleEvent(ctx context.Context, eventID, source string) error {
	if !c.hasWaiters(source) {
		return nil
	}
	ev, err := c.store.EventGetByID(ctx, eventID)
	if err != nil {
		return fmt.Errorf("correlate event %s: %w", eventID, err)
	}
	view, in, err := c.load(ctx, ev)
	if err != nil || in == nil {
		return err
	}
	for _, w := range c.candidates(ev.Source, in) {
		if !w.matches(ev, in) {
			continue
		}
		if w.ch != nil {
			select {
			case w.ch <- view:
			default:
			}
			continue
		}
		c.completeTask(ctx, w, view)
	}
	return nil
}

// completeTask stores the result; a lost race is not an error.
func (c *Correlator) completeTask(ctx context.Context, w *waiter, ev *EventView) {
	p := &store.TaskUpdateParams{ID: w.taskID, Status: store.TaskCompleted, EventID: ev.EventID, Now: c.now(),
		StatusMessage: fmt.Sprintf("event %s (%s) arrived", ev.EventID, ev.Type)}
	var err error
	if w.fail {
		p.Status = store.TaskFailed
		p.StatusMessage = fmt.Sprintf("failure event %s (%s) arrived", ev.EventID, ev.Type)
		p.Error, err = json.Marshal(map[string]any{"code": codeFailureEvent, "message": p.StatusMessage,
			"data": map[string]any{"event": ev, "upstream": w.upstream}})
	} else {
		p.Result, err = json.Marshal(completionResult(ev, w.upstream))
	}
	if err != nil {
		c.log.Error("encode task result", "task", w.taskID, "err", err)
		return
	}
	t, err := c.store.TaskUpdate(ctx, p)
	switch {
	case err == nil:
		c.remove(w.taskID)
		c.remove(w.taskID + failSuffix)
		c.log.Info("task finished by event", "task", w.taskID, "status", p.Status, "event", ev.EventID, "source", ev.Source)
		if c.onComplete != nil && !w.fail {
			c.onComplete(t)
		}
	case errors.Is(err, store.ErrTaskTerminal), errors.Is(err, store.ErrNotFound):
		c.remove(w.taskID)
		c.remove(w.taskID + failSuffix)
	default:
		c.log.Error("finish task", "task", w.taskID, "event", ev.EventID, "err", err)
	}
}

// codeFailureEvent is the JSON-RPC error code of a task failed by the
// failure event of an async tool.
const codeFailureEvent = -32002

// Reload rebuilds the index from storage.
func (c *Correlator) Reload(ctx context.Context) error {
	ts, err := c.store.TaskListWaiting(ctx, c.now())
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, t := range ts {
		keep[t.ID], keep[t.ID+failSuffix] = true, true
		if err := c.trackTask(t); err != nil {
			c.log.Warn("skip waiting task", "task", t.ID, "err", err)
		}
	}
	c.mu.Lock()
	var stale []string
	for k, w := range c.byKey {
		if w.ch == nil && !keep[k] {
			stale = append(stale, k)
		}
	}
	c.mu.Unlock()
	for _, k := range stale {
		c.remove(k)
	}
	return nil
}

// expire fails tasks whose deadline passed.
// It scans the in-memory index (cheap even with many waits) rather than
// storage; the periodic Reload keeps the index whole.
func (c *Correlator) expire(ctx context.Context) {
	now := c.now()
	var due []*waiter
	c.mu.Lock()
	for _, w := range c.byKey {
		if w.ch == nil && !w.fail && !w.deadline.IsZero() && !now.Before(w.deadline) {
			due = append(due, w)
		}
	}
	c.mu.Unlock()
	for _, w := range due {
		// The task holds what the plain call answers when time runs out:
		// an error tool result, not a JSON-RPC error.
		res := timedOutResult(describeWait(WaitSpec{Source: w.source, Type: w.typ}), w.deadline.Sub(w.created).Round(time.Millisecond))
		b, _ := json.Marshal(res)
		_, err := c.store.TaskUpdate(ctx, &store.TaskUpdateParams{ID: w.taskID, Status: store.TaskFailed, StatusMessage: toolErrorText(res), Result: b, Now: now})
		if err != nil && !errors.Is(err, store.ErrTaskTerminal) && !errors.Is(err, store.ErrNotFound) {
			c.log.Warn("time out task", "task", w.taskID, "err", err)
			continue
		}
		c.remove(w.taskID)
		c.remove(w.taskID + failSuffix)
	}
}

// matchStrings renders match values the way events are compared: numbers
// without a fraction as integers, everything else with fmt.
func matchStrings(m map[string]any) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if f, ok := v.(float64); ok && f == float64(int64(f)) {
			v = int64(f)
		}
		out[k] = fmt.Sprint(v)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Run keeps the index current and correlates new events until ctx ends:
// it reacts to event.created and task.changed notifications, re-reads the
// waiting tasks periodically (notifications are hints), fails tasks past
// their deadline, and prunes expired tasks.
func (c *Correlator) Run(ctx context.Context) error {
	notes := c.store.Subscribe(ctx)
	if err := c.Reload(ctx); err != nil {
		c.log.Warn("load waiting tasks", "err", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	reload := time.NewTicker(time.Minute)
	defer reload.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case n, ok := <-notes:
			if !ok {
				return nil
			}
			switch n.Kind {
			case store.NotifyEventCreated:
				if err := c.HandleEvent(ctx, n.ID, n.Source); err != nil {
					c.log.Warn("correlate event", "event", n.ID, "err", err)
				}
			case store.NotifyTaskChanged:
				t, err := c.store.TaskGet(ctx, n.ID, time.Time{})
				switch {
				case errors.Is(err, store.ErrNotFound):
					c.remove(n.ID)
					c.remove(n.ID + failSuffix)
				case err != nil:
					c.log.Warn("load task", "task", n.ID, "err", err)
				default:
					if err := c.trackTask(t); err != nil {
						c.log.Warn("track task", "task", n.ID, "err", err)
					}
				}
			}
		case <-tick.C:
			c.expire(ctx)
		case <-reload.C:
			if err := c.Reload(ctx); err != nil {
				c.log.Warn("reload waiting tasks", "err", err)
			}
			if _, err := c.store.TaskDeleteExpired(ctx, c.now(), 1000); err != nil {
				c.log.Warn("delete expired tasks", "err", err)
			}
		}
	}
}
