package task

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
)

// waiter is one registered wait: a stored task, or a synchronous call
// (ch set, taskID empty).
type waiter struct {
	key   string // task id (+failSuffix), or a random id for synchronous waits
	owner string
	m     *Matcher
	// ch receives the matching event of a synchronous wait.
	ch chan *EventView
	// taskID is the task a stored wait belongs to.
	taskID string
	// fail marks a wait whose event fails the task.
	fail bool
	// upstream is the proxied tool's result, combined into the task's.
	upstream json.RawMessage
	// deadline comes from the task: past it, the task fails.
	deadline time.Time
	// timeout is the wait's timeout as the caller asked for it, for the
	// timed-out result, which must read as the plain call's does.
	timeout time.Duration
	// gen orders additions to the index ([Tasks.Reload] drops only waits
	// indexed before it listed the waiting tasks).
	gen uint64
}

// failSuffix keys the failure wait of a task.
const failSuffix = "#fail"

// sourceIndex holds the waits of one source. A wait with match pairs is
// filed under its first pair (path and expected value), so an event costs
// one lookup per distinct path instead of one check per wait.
type sourceIndex struct {
	any    map[string]*waiter
	byPath map[string]map[string]map[string]*waiter // path -> value -> key -> waiter
}

func (t *Tasks) add(w *waiter) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addLocked(w)
}

// addNew indexes the waits of one task unless its first is indexed
// already, and reports whether it did. Checking and adding under one lock
// matters: a task is tracked both by its creator and by the store's
// notification of it, and a second set of waiters replacing the first
// would orphan the look-back queued for the first.
func (t *Tasks) addNew(waits []*waiter) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.byKey[waits[0].key]; ok {
		return false
	}
	for _, w := range waits {
		t.addLocked(w)
	}
	return true
}

func (t *Tasks) addLocked(w *waiter) {
	t.removeLocked(w.key)
	t.gen++
	w.gen = t.gen
	t.byKey[w.key] = w
	src := w.m.spec.Source
	si := t.bySource[src]
	if si == nil {
		si = &sourceIndex{any: map[string]*waiter{}, byPath: map[string]map[string]map[string]*waiter{}}
		t.bySource[src] = si
	}
	path, value, ok := w.m.indexPath()
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

func (t *Tasks) remove(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(key)
}

func (t *Tasks) removeLocked(key string) {
	w, ok := t.byKey[key]
	if !ok {
		return
	}
	delete(t.byKey, key)
	src := w.m.spec.Source
	si := t.bySource[src]
	if si == nil {
		return
	}
	if path, value, ok := w.m.indexPath(); ok {
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
		delete(t.bySource, src)
	}
}

// indexed returns the wait filed under key, or nil.
func (t *Tasks) indexed(key string) *waiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byKey[key]
}

// current reports whether w is still the wait filed under its key: a
// finished or forgotten wait is not.
func (t *Tasks) current(w *waiter) bool { return t.indexed(w.key) == w }

// Len returns the number of open waits indexed.
func (t *Tasks) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byKey)
}

// candidates returns the waits on source that the body could satisfy:
// those without match pairs, and those filed under a path whose value in
// this body is the expected one.
func (t *Tasks) candidates(source string, in *route.Input) []*waiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	si := t.bySource[source]
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
		for _, w := range vals[route.ValueString(got)] {
			out = append(out, w)
		}
	}
	return out
}

func (t *Tasks) hasWaiters(source string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bySource[source] != nil
}

// track indexes a stored task that waits, or drops one that is terminal.
// A task already indexed is left as it is (a task's wait never changes).
// A task whose wait cannot be compiled could never match, so it fails at
// once rather than waiting out its deadline unseen.
func (t *Tasks) track(ctx context.Context, tk *store.Task) {
	if tk.Wait == nil || store.TaskTerminal(tk.Status) {
		t.Forget(tk.ID)
		return
	}
	if t.indexed(tk.ID) != nil {
		return
	}
	var args storedArgs
	dec := json.NewDecoder(bytes.NewReader(tk.Arguments))
	dec.UseNumber()       // match values keep their exact text
	_ = dec.Decode(&args) // match pairs are optional
	waits := []*waiter{}
	m, err := t.Compile(Spec{Source: tk.Wait.Source, Type: tk.Wait.Type, Filter: tk.Wait.Filter, Since: tk.Wait.Since, Match: MatchStrings(args.Match)})
	if err != nil {
		t.failBadWait(ctx, tk, fmt.Errorf("filter: %w", err))
		return
	}
	// The timeout is the one stored with the call. Deadline less creation
	// time is not it: the deadline is taken before the task is written,
	// and the write stamps its own (later) time, so on a busy machine a
	// 1s wait would time out "within 995ms". Tasks stored without one
	// fall back to that difference.
	timeout, err := time.ParseDuration(args.Timeout)
	if err != nil || timeout <= 0 {
		timeout = tk.Wait.Deadline.Sub(tk.CreatedAt).Round(time.Millisecond)
	}
	waits = append(waits, &waiter{key: tk.ID, owner: tk.Owner, m: m, taskID: tk.ID, upstream: args.Upstream,
		deadline: tk.Wait.Deadline, timeout: timeout})
	if f := args.Fail; f != nil {
		fm, err := t.Compile(Spec{Source: f.Source, Type: f.Type, Filter: f.Filter, Since: tk.Wait.Since, Match: MatchStrings(f.Match)})
		if err != nil {
			t.failBadWait(ctx, tk, fmt.Errorf("fail.filter: %w", err))
			return
		}
		waits = append(waits, &waiter{key: tk.ID + failSuffix, owner: tk.Owner, m: fm, taskID: tk.ID, fail: true, upstream: args.Upstream})
	}
	t.addNew(waits)
}

// failBadWait fails a task whose stored wait cannot be evaluated.
func (t *Tasks) failBadWait(ctx context.Context, tk *store.Task, cause error) {
	msg := fmt.Sprintf("the wait cannot be evaluated: %v", cause)
	_, err := t.store.TaskUpdate(ctx, &store.TaskUpdateParams{ID: tk.ID, Status: store.TaskFailed, StatusMessage: msg,
		Error: rpcError(CodeBadWait, msg, nil), Now: t.now()})
	if err != nil && !errors.Is(err, store.ErrTaskTerminal) && !errors.Is(err, store.ErrNotFound) {
		t.log.Warn("fail task with a bad wait", "task", tk.ID, "err", err)
	}
}

// HandleEvent queues the new event against the waits of its source that
// its body could satisfy, each evaluation in its owner's turn.
func (t *Tasks) HandleEvent(ctx context.Context, eventID, source string) error {
	if !t.hasWaiters(source) {
		return nil
	}
	ev, err := t.store.EventGetByID(ctx, eventID)
	if err != nil {
		return fmt.Errorf("correlate event %s: %w", eventID, err)
	}
	view, in, err := LoadEvent(ctx, t.store, ev)
	if err != nil || in == nil {
		return err
	}
	in.Prepare() // shared by workers from here on
	for _, w := range t.candidates(ev.Source, in) {
		t.queue.push(w.owner, func(ctx context.Context) {
			if t.current(w) && w.m.Matches(ev, in) {
				t.deliver(ctx, w, view)
			}
		})
	}
	return nil
}

// deliver hands a matching event to its wait: a synchronous caller, or
// the stored task.
func (t *Tasks) deliver(ctx context.Context, w *waiter, ev *EventView) {
	if w.ch != nil {
		select {
		case w.ch <- ev:
		default:
		}
		return
	}
	t.complete(ctx, w, ev)
}

// complete stores the task's outcome; a lost race is not an error.
func (t *Tasks) complete(ctx context.Context, w *waiter, ev *EventView) {
	p := &store.TaskUpdateParams{ID: w.taskID, Status: store.TaskCompleted, EventID: ev.EventID, Now: t.now(),
		StatusMessage: fmt.Sprintf("event %s (%s) arrived", ev.EventID, ev.Type)}
	var err error
	if w.fail {
		p.Status = store.TaskFailed
		p.StatusMessage = fmt.Sprintf("failure event %s (%s) arrived", ev.EventID, ev.Type)
		p.Error = rpcError(CodeFailureEvent, p.StatusMessage, map[string]any{"event": ev, "upstream": w.upstream})
	} else {
		p.Result, err = json.Marshal(CompletionResult(ev, w.upstream))
	}
	if err != nil {
		t.log.Error("encode task result", "task", w.taskID, "err", err)
		return
	}
	tk, err := t.store.TaskUpdate(ctx, p)
	switch {
	case err == nil:
		t.Forget(w.taskID)
		t.log.Debug("task finished by event", "task", w.taskID, "status", p.Status, "event", ev.EventID, "source", ev.Source)
		if t.opts.OnComplete != nil && !w.fail {
			t.opts.OnComplete(tk)
		}
	case errors.Is(err, store.ErrTaskTerminal), errors.Is(err, store.ErrNotFound):
		t.Forget(w.taskID)
	default:
		t.log.Error("finish task", "task", w.taskID, "event", ev.EventID, "err", err)
	}
}

// Reload rebuilds the index from storage: it indexes every waiting task
// and drops stored waits that are no longer waiting.
func (t *Tasks) Reload(ctx context.Context) error {
	// A wait indexed after the listing began (a task created meanwhile)
	// is not in it and must stay: only older ones can be stale.
	t.mu.Lock()
	listed := t.gen
	t.mu.Unlock()
	ts, err := t.store.TaskListWaiting(ctx, t.now())
	if err != nil {
		return fmt.Errorf("list waiting tasks: %w", err)
	}
	keep := map[string]bool{}
	for _, tk := range ts {
		keep[tk.ID], keep[tk.ID+failSuffix] = true, true
		t.track(ctx, tk)
	}
	t.mu.Lock()
	var stale []string
	for k, w := range t.byKey {
		if w.ch == nil && !keep[k] && w.gen <= listed {
			stale = append(stale, k)
		}
	}
	t.mu.Unlock()
	for _, k := range stale {
		t.remove(k)
	}
	return nil
}

// expire fails tasks whose deadline passed. It scans the in-memory index
// (cheap even with many waits) rather than storage; every waiting task is
// in the index, since one that cannot be indexed is failed at once, and
// Reload keeps the index whole.
func (t *Tasks) expire(ctx context.Context) {
	now := t.now()
	var due []*waiter
	t.mu.Lock()
	for _, w := range t.byKey {
		if w.ch == nil && !w.fail && !w.deadline.IsZero() && !now.Before(w.deadline) {
			due = append(due, w)
		}
	}
	t.mu.Unlock()
	for _, w := range due {
		// The task holds what the plain call answers when time runs out:
		// an error tool result, not a JSON-RPC error.
		res := TimedOutResult(w.m.spec.Describe(), w.timeout)
		b, err := json.Marshal(res)
		if err != nil {
			t.log.Error("encode timed-out result", "task", w.taskID, "err", err)
			continue
		}
		_, err = t.store.TaskUpdate(ctx, &store.TaskUpdateParams{ID: w.taskID, Status: store.TaskFailed,
			StatusMessage: res.StructuredContent.(WaitResult).Message, Result: b, Now: now})
		if err != nil && !errors.Is(err, store.ErrTaskTerminal) && !errors.Is(err, store.ErrNotFound) {
			t.log.Warn("time out task", "task", w.taskID, "err", err)
			continue
		}
		t.Forget(w.taskID)
	}
}
