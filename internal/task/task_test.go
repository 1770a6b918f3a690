package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// clock is a settable test clock.
type clock struct{ at atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.at.Store(time.Now().UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.at.Load()) }
func (c *clock) advance(d time.Duration) { c.at.Add(int64(d)) }

// seeAll, as the now of TaskGet, shows tasks whatever their expiry.
var seeAll = time.Unix(1, 0)

type testBundle struct {
	store store.Store
	tasks *Tasks
	clock *clock
}

// setup returns tasks over a fresh SQLite store with sources stripe and
// shop. Run is not started: tests that need it call run.
func setup(t *testing.T, opts *Options) *testBundle {
	t.Helper()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	for _, name := range []string{"stripe", "shop"} {
		if err := s.SourceUpsert(ctx, &store.Source{Name: name, Verify: verify.Config{Type: "none"}}); err != nil {
			t.Fatal(err)
		}
	}
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(s, compiler, nil)
	if err := cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	c := newClock()
	if o.Now == nil {
		o.Now = c.now
	}
	return &testBundle{store: s, tasks: New(s, cat, &o), clock: c}
}

// run starts Run until the test ends.
func (b *testBundle) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.tasks.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// ingest stores an event of source with a JSON body, received at the
// test clock's now, and returns its id.
func (b *testBundle) ingest(t *testing.T, source, typ, body string) string {
	t.Helper()
	res, err := b.store.RequestIngest(context.Background(), &store.RequestIngestParams{
		Request: &store.Request{Source: source, ReceivedAt: b.clock.now(), Method: "POST", Path: "",
			Headers: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)},
		Event: &store.Event{Type: typ},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.EventID
}

// await blocks until task id is terminal and returns it. Store
// notifications wake it; the test's own deadline bounds it.
func (b *testBundle) await(t *testing.T, id string) *store.Task {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notes := b.store.Subscribe(ctx)
	for {
		tk, err := b.store.TaskGet(ctx, id, seeAll)
		if err != nil {
			t.Fatal(err)
		}
		if store.TaskTerminal(tk.Status) {
			return tk
		}
		select {
		case <-notes:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.run(t)
	ctx := context.Background()

	t.Run("CompletesOnItsEvent", func(t *testing.T) {
		tk, err := b.tasks.Create(ctx, &CreateParams{Owner: "a", Tool: "wait_for_event",
			Wait: Wait{Source: "stripe", Type: "checkout.session.completed", Match: map[string]any{"data.id": "cs_1", "n": 7.0}}})
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status != store.TaskWorking || tk.Wait.Deadline.Sub(b.clock.now()) > DefaultTimeout || tk.TTL != DefaultTimeout+time.Hour {
			t.Fatalf("created %+v", tk)
		}
		b.ingest(t, "stripe", "checkout.session.completed", `{"data":{"id":"cs_2"},"n":7}`) // other id
		b.ingest(t, "shop", "checkout.session.completed", `{"data":{"id":"cs_1"},"n":7}`)   // other source
		want := b.ingest(t, "stripe", "checkout.session.completed", `{"data":{"id":"cs_1"},"n":7}`)
		got := b.await(t, tk.ID)
		if got.Status != store.TaskCompleted || got.EventID != want {
			t.Fatalf("task %+v, want completed by %s", got, want)
		}
		var res struct {
			StructuredContent WaitResult `json:"structuredContent"`
		}
		if err := json.Unmarshal(got.Result, &res); err != nil || res.StructuredContent.Event.EventID != want {
			t.Fatalf("result %s: %v", got.Result, err)
		}
	})

	t.Run("TypeWithNUL", func(t *testing.T) {
		// PostgreSQL refused to store it: 503 "storage unavailable".
		for _, w := range []Wait{{Source: "shop", Type: "a\x00b"}, {Source: "shop", Filter: `body.x == "a` + "\x00" + `b"`}} {
			_, err := b.tasks.Create(ctx, &CreateParams{Owner: "a", Wait: w})
			var in *InputError
			if !errors.As(err, &in) || !strings.Contains(err.Error(), "NUL") {
				t.Fatalf("Create with a NUL in %+v: %v, want an input error", w, err)
			}
		}
	})

	t.Run("LongestTimeout", func(t *testing.T) {
		// The longest duration there is: its TTL (timeout + 1h) wrapped
		// around to a negative, and the deadline to the year 1734.
		tk, err := b.tasks.Create(ctx, &CreateParams{Owner: "a", Wait: Wait{Source: "shop", Timeout: time.Duration(math.MaxInt64)}})
		if err != nil {
			t.Fatal(err)
		}
		now := b.clock.now()
		if tk.TTL != MaxTTL || tk.Wait.Deadline.Before(now) || tk.Wait.Deadline.After(now.Add(MaxTTL)) {
			t.Fatalf("created with ttl %v and deadline %v at %v, want both within MaxTTL ahead", tk.TTL, tk.Wait.Deadline, now)
		}
	})

	t.Run("MatchesIntegersExactly", func(t *testing.T) {
		// 2^53 and 2^53+1 are one float64: a wait for the second must not
		// complete on the first. Callers decode match values with
		// UseNumber, as the API and the MCP tool do.
		tk, err := b.tasks.Create(ctx, &CreateParams{Owner: "a", Wait: Wait{Source: "shop", Match: map[string]any{"big": json.Number("9007199254740993")}}})
		if err != nil {
			t.Fatal(err)
		}
		b.ingest(t, "shop", "order.paid", `{"big":9007199254740992}`)
		want := b.ingest(t, "shop", "order.paid", `{"big":9007199254740993}`)
		if got := b.await(t, tk.ID); got.Status != store.TaskCompleted || got.EventID != want {
			t.Fatalf("task %s by %s, want completed by %s (big 9007199254740993)", got.Status, got.EventID, want)
		}
	})

	t.Run("LooksBackAfterReturning", func(t *testing.T) {
		want := b.ingest(t, "shop", "order.paid", `{"order":"o_9"}`)
		tk, err := b.tasks.Create(ctx, &CreateParams{Owner: "a", Wait: Wait{Source: "shop", Match: map[string]any{"order": "o_9"}}})
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status != store.TaskWorking {
			t.Fatalf("Create returned %s: the look-back ran on the caller's path", tk.Status)
		}
		if got := b.await(t, tk.ID); got.Status != store.TaskCompleted || got.EventID != want {
			t.Fatalf("task %+v, want completed by the past event %s", got, want)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		for _, tt := range []struct {
			w    Wait
			want string
		}{
			{Wait{}, "source is required"},
			{Wait{Source: "paypal"}, `source: "paypal" does not exist`},
			{Wait{Source: "stripe", Filter: "body.("}, "filter:"},
			{Wait{Source: "stripe", Filter: `"x"`}, "want bool"},
			{Wait{Source: "stripe", Filter: `size(body)`}, "want bool"},
			{Wait{Source: "stripe", Since: "yesterday"}, "since:"},
			{Wait{Source: "stripe", Since: "evt_nope"}, "does not exist"},
			{Wait{Source: "stripe", Timeout: -time.Second}, "timeout:"},
			{Wait{Source: "stripe", Match: map[string]any{"a..b": 1}}, "match:"},
		} {
			_, err := b.tasks.Create(ctx, &CreateParams{Owner: "a", Wait: tt.w})
			var ie *InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%+v: %v, want an InputError with %q", tt.w, err, tt.want)
			}
		}
	})
}

// TestTerminalByTimeout: every waiting task ends by its deadline, and is
// deleted after its TTL, with or without an MCP server. A task stored with
// a filter that cannot run (a string, which older versions accepted) fails
// at once instead of waiting unseen.
func TestTerminalByTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, &Options{ReloadInterval: 20 * time.Millisecond})
	ctx := context.Background()
	// The store stamps the task later than the deadline was taken, as a
	// slow write does on a busy machine.
	b.clock.advance(-50 * time.Millisecond)
	tk, err := b.tasks.Create(ctx, &CreateParams{Owner: "a", TTL: 3 * time.Second, Wait: Wait{Source: "stripe", Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	bad := &store.Task{ID: NewID(), Owner: "a", Tool: "wait_for_event", TTL: time.Hour,
		Wait: &store.TaskWait{Source: "stripe", Filter: `"x"`, Since: b.clock.now(), Deadline: b.clock.now().Add(time.Hour)}}
	if err := b.store.TaskCreate(ctx, bad); err != nil {
		t.Fatal(err)
	}
	b.run(t)
	if got := b.await(t, bad.ID); got.Status != store.TaskFailed || !strings.Contains(got.StatusMessage, "want bool") {
		t.Errorf("task with a string filter: %s %q, want failed saying why", got.Status, got.StatusMessage)
	}
	b.clock.advance(2 * time.Second)
	got := b.await(t, tk.ID)
	var res struct {
		IsError           bool       `json:"isError"`
		StructuredContent WaitResult `json:"structuredContent"`
	}
	if json.Unmarshal(got.Result, &res); got.Status != store.TaskFailed || !res.IsError || res.StructuredContent.Status != "timed_out" {
		t.Fatalf("after its timeout: %s %s", got.Status, got.Result)
	}
	// The plain call's words, with the timeout asked for.
	if got, want := res.StructuredContent.Message, "no matching stripe event within 2s"; got != want {
		t.Errorf("timed-out message = %q, want %q", got, want)
	}
	b.clock.advance(time.Hour) // past its TTL
	for {
		_, err := b.store.TaskGet(ctx, tk.ID, seeAll)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the next reload deletes it
	}
}

// quadratic is a filter whose cost grows with the square of the items.
const quadratic = `body.items.all(a, body.items.all(b, true))`

func bigBody(n int) string {
	return `{"items":[` + strings.TrimSuffix(strings.Repeat(`{"a":1},`, n), ",") + `]}`
}

// TestFairness: one owner's expensive waits do not hold up another's.
// Owner a has three waits with a quadratic filter, each looking back over
// a 3,000-item body (stopped at the cost limit); owner b's cheap wait,
// created after them, completes on its event after at most one of a's
// jobs, not after all of them, on a single worker. (In arrival order, b's
// jobs would run after a's three look-backs.)
func TestFairness(t *testing.T) {
	t.Parallel()
	b := setup(t, &Options{Workers: 1})
	ctx := context.Background()
	b.ingest(t, "shop", "bulk", bigBody(3000))
	b.ingest(t, "shop", "bulk", `{"items":"none"}`)
	b.clock.advance(time.Millisecond)
	var slow []*waiter
	for range 3 {
		tk, err := b.tasks.Create(ctx, &CreateParams{Owner: "a", Wait: Wait{Source: "shop", Type: "bulk", Filter: quadratic}})
		if err != nil {
			t.Fatal(err)
		}
		slow = append(slow, b.tasks.indexed(tk.ID))
	}
	cheap, err := b.tasks.Create(ctx, &CreateParams{Owner: "b", Wait: Wait{Source: "shop", Match: map[string]any{"order": "o_1"}}})
	if err != nil {
		t.Fatal(err)
	}
	ev := b.ingest(t, "shop", "order.paid", `{"order":"o_1"}`)
	if err := b.tasks.HandleEvent(ctx, ev, "shop"); err != nil {
		t.Fatal(err)
	}
	// Everything is queued: a's three look-backs and three checks of the
	// new event, b's look-back and its check. The worker starts now.
	queuedOf := func(owner string) int {
		b.tasks.queue.mu.Lock()
		defer b.tasks.queue.mu.Unlock()
		return len(b.tasks.queue.queued[owner])
	}
	if n := queuedOf("a"); n != 6 {
		t.Fatalf("a has %d jobs queued, want 6", n)
	}
	completed := make(chan int, 1)
	b.tasks.opts.OnComplete = func(tk *store.Task) { completed <- queuedOf("a") }
	b.run(t)
	if left := <-completed; left != 5 {
		t.Fatalf("b's task completed after %d of a's jobs, want after 1", 6-left)
	}
	if got := b.await(t, cheap.ID); got.Status != store.TaskCompleted || got.EventID != ev {
		t.Fatalf("b's task %+v", got)
	}
	for _, w := range slow {
		if !b.tasks.current(w) {
			t.Fatalf("a's wait %s is gone: the quadratic filter matched something", w.key)
		}
	}
}

// TestFairQueue: owners take turns, one job each at a time, and an owner's
// jobs run in the order queued.
func TestFairQueue(t *testing.T) {
	t.Parallel()
	q := newFairQueue()
	var got []string
	job := func(name string) job { return func(context.Context) { got = append(got, name) } }
	for i := range 3 {
		q.push("a", job(fmt.Sprint("a", i)))
	}
	q.push("b", job("b0"))
	q.push("b", job("b1"))
	q.push("c", job("c0"))
	for {
		owner, j, ok := q.take()
		if !ok {
			break
		}
		j(context.Background())
		q.done(owner)
	}
	if want := "a0 b0 c0 a1 b1 a2"; strings.Join(got, " ") != want {
		t.Fatalf("order %q, want %q", strings.Join(got, " "), want)
	}

	// While one of a's jobs runs, a's next one waits, even with no other
	// owner queued.
	q.push("a", job("a3"))
	q.push("a", job("a4"))
	owner, j, _ := q.take()
	if _, _, ok := q.take(); ok {
		t.Fatal("a second job of a was handed out while its first ran")
	}
	j(context.Background())
	q.done(owner)
	if _, _, ok := q.take(); !ok {
		t.Fatal("a's next job was not handed out after its first ended")
	}
}

// TestTrackedTwiceAtOnce: a task is tracked by its creator and by the
// store's notification of it, at the same time. Only one set of waiters
// may be indexed: a second replacing the first orphaned the look-back
// queued for the first, and a wait whose event came before it stayed
// working (TestEventBeforeWait failed so under CI load).
func TestTrackedTwiceAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	m, err := b.tasks.Compile(Spec{Source: "stripe"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		key := fmt.Sprintf("task_%d", i)
		ws := []*waiter{{key: key, m: m, taskID: key}, {key: key, m: m, taskID: key}}
		added := make([]bool, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for j := range ws {
			wg.Go(func() {
				<-start
				added[j] = b.tasks.addNew(ws[j : j+1])
			})
		}
		close(start)
		wg.Wait()
		if added[0] == added[1] {
			t.Fatalf("round %d: added %v, want exactly one", i, added)
		}
		winner := ws[0]
		if added[1] {
			winner = ws[1]
		}
		if got := b.tasks.indexed(key); got != winner {
			t.Fatalf("round %d: the indexed waiter is not the one added", i)
		}
	}
}

// listHook runs during's hook after listing the waiting tasks, before
// Reload goes on: a task created then is not in the list.
type listHook struct {
	Store
	hook func()
}

func (l *listHook) TaskListWaiting(ctx context.Context, now time.Time) ([]*store.Task, error) {
	ts, err := l.Store.TaskListWaiting(ctx, now)
	if l.hook != nil {
		l.hook()
	}
	return ts, err
}

// TestReloadKeepsWaitsCreatedMeanwhile: Reload (at start and every
// ReloadInterval) drops the waits its listing did not see; one created
// while it listed was dropped too, and its task stayed working even when
// its event came (TestEventBeforeWait failed so under CI load, the task
// created as Run started).
func TestReloadKeepsWaitsCreatedMeanwhile(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	hooked := &listHook{Store: b.store.(Store)}
	tasks := New(hooked, b.tasks.catalog, &Options{Now: b.clock.now})
	var id string
	hooked.hook = func() {
		hooked.hook = nil
		tk, err := tasks.Create(ctx, &CreateParams{Owner: "a", Wait: Wait{Source: "stripe", Match: map[string]any{"id": "x"}}})
		if err != nil {
			t.Error(err)
			return
		}
		id = tk.ID
	}
	if err := tasks.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Fatal("no task created")
	}
	if tasks.indexed(id) == nil {
		t.Fatalf("task %s created while Reload listed was dropped from the index", id)
	}
}
