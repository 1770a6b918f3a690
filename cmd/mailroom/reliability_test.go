package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/reload"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
)

// soakOr returns short in a plain `go test` and long under -tags soak.
func soakOr(short, long time.Duration) time.Duration {
	if soakMode {
		return long
	}
	return short
}

// soakFigures are what a kill soak reports.
type soakFigures struct {
	rounds, sent, acked, delivered, unackedDelivered, duplicates, lost int
	elapsed                                                            time.Duration
}

func (f soakFigures) String() string {
	return fmt.Sprintf("%d SIGKILLs in %s: sent %d, acknowledged %d, delivered %d (+%d delivered that were never acknowledged), duplicates %d, lost %d",
		f.rounds, f.elapsed.Round(time.Second), f.sent, f.acked, f.delivered, f.unackedDelivered, f.duplicates, f.lost)
}

// soakLoad posts signed webhooks with unique ids from workers connections
// until stop is closed or the server stops answering; it counts every
// request sent and returns the ids that got a 200.
func soakLoad(addr string, workers int, prefix string, sent *atomic.Int64, stop <-chan struct{}) []string {
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%s-%d-%d", prefix, w, i)
				sent.Add(1)
				switch post(client, addr, id) {
				case http.StatusOK:
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				case 0:
					return // the server died
				}
			}
		}()
	}
	wg.Wait()
	return acked
}

// killSoak runs steady signed load against mailroom on storage, SIGKILLs
// it every few seconds and restarts it on the same storage, for 15 s (a
// minute under -tags soak); then it lets the last instance drain and
// checks that every acknowledged event was delivered at least once.
func killSoak(t *testing.T, name, storage string) soakFigures {
	t.Helper()
	bin := binary(t)
	s := newSink(t)
	cfg := writeYAML(t, t.TempDir(), fmt.Sprintf(`
storage: %q
shutdown: {grace: 2s}
%s
destinations:
  - name: sink
    url: %s/hooks
    timeout: 2s
    max_concurrency: 16
    retry: {max_attempts: 100, initial: 50ms, max: 500ms}
connections:
  - {source: custom, destination: sink}
`, storage, hmacSource, s.srv.URL))
	total := soakOr(15*time.Second, time.Minute)
	var sent atomic.Int64
	var acked []string
	var f soakFigures
	t0 := time.Now()
	for time.Since(t0) < total {
		inst := start(t, bin, cfg)
		stop := make(chan struct{})
		res := make(chan []string, 1)
		go func() { res <- soakLoad(inst.addr, 8, fmt.Sprintf("%s%d", name, f.rounds), &sent, stop) }()
		// Every few seconds: 2 to 4, so kills land at varied points.
		time.Sleep(2*time.Second + rand.N(2*time.Second))
		if err := inst.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-inst.done
		close(stop)
		got := <-res
		acked = append(acked, got...)
		f.rounds++
		t.Logf("%s round %d: %d acknowledged before SIGKILL (%s)", name, f.rounds, len(got), time.Since(t0).Round(time.Millisecond))
	}
	if len(acked) < 100 {
		t.Fatalf("only %d acknowledged; the load did not run", len(acked))
	}
	// The last instance drains; attempts cut by a kill are claimed again
	// when their lease (timeout 2s + 30s) expires.
	start(t, bin, cfg)
	waitDelivered(t, s, acked, 120*time.Second)
	f.elapsed = time.Since(t0)
	f.sent, f.acked = int(sent.Load()), len(acked)
	isAcked := make(map[string]bool, len(acked))
	for _, id := range acked {
		isAcked[id] = true
	}
	s.mu.Lock()
	for id, n := range s.seen {
		if isAcked[id] {
			f.delivered++
		} else {
			f.unackedDelivered++
		}
		f.duplicates += n - 1
	}
	s.mu.Unlock()
	f.lost = s.count(acked)
	t.Logf("%s: %s", name, f)
	fmt.Fprintf(os.Stdout, "SOAK %s: %s\n", name, f)
	return f
}

// TestKillDuringLoadPostgres is the kill soak of TestKillDuringLoadLosesNothing
// on PostgreSQL.
func TestKillDuringLoadPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	killSoak(t, "postgres", schemaDSN(t, localPostgres(t)))
}

// faultSink serves one path per misbehaviour and records, per path, when
// each event id arrived.
type faultSink struct {
	mu   sync.Mutex
	hits map[string]map[string][]time.Time // path -> id -> arrivals answered 2xx or not
	ok   map[string]map[string]int         // path -> id -> 2xx answers
	srv  *httptest.Server
}

func newFaultSink(t *testing.T, behave func(path string, n int, w http.ResponseWriter, r *http.Request) bool) *faultSink {
	f := &faultSink{hits: map[string]map[string][]time.Time{}, ok: map[string]map[string]int{}}
	counts := map[string]int{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ ID string }
		raw, _ := io.ReadAll(r.Body)
		json.Unmarshal(raw, &body)
		f.mu.Lock()
		if f.hits[r.URL.Path] == nil {
			f.hits[r.URL.Path], f.ok[r.URL.Path] = map[string][]time.Time{}, map[string]int{}
		}
		f.hits[r.URL.Path][body.ID] = append(f.hits[r.URL.Path][body.ID], time.Now())
		counts[r.URL.Path]++
		n := counts[r.URL.Path]
		f.mu.Unlock()
		if behave(r.URL.Path, n, w, r) {
			f.mu.Lock()
			f.ok[r.URL.Path][body.ID]++
			f.mu.Unlock()
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// delivered counts the ids among ids that path answered with a 2xx.
func (f *faultSink) delivered(path string, ids []string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, id := range ids {
		if f.ok[path][id] > 0 {
			n++
		}
	}
	return n
}

func (f *faultSink) requests(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, ts := range f.hits[path] {
		n += len(ts)
	}
	return n
}

// apiAttempt is an attempt as the admin API shows it.
type apiAttempt struct {
	Number     int       `json:"number"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS float64   `json:"duration_ms"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error"`
	Success    bool      `json:"success"`
}

// attemptsOf returns the attempts of every delivery to dest, by delivery.
func attemptsOf(t *testing.T, addr, dest string) [][]apiAttempt {
	t.Helper()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	getJSON(t, "http://"+addr+"/api/v1/deliveries?limit=1000&destination="+dest, &list)
	out := make([][]apiAttempt, 0, len(list.Data))
	for _, d := range list.Data {
		var detail struct {
			Attempts []apiAttempt `json:"attempts"`
		}
		getJSON(t, "http://"+addr+"/api/v1/deliveries/"+d.ID, &detail)
		as := detail.Attempts
		slices.SortFunc(as, func(a, b apiAttempt) int { return a.Number - b.Number })
		out = append(out, as)
	}
	return out
}

// TestDestinationFaults runs one mailroom whose destinations misbehave in
// each way a receiver can: down for a while (15 s here, a minute under
// -tags soak), flapping (every other request fails), slow (answers after
// twice the timeout for a while), 429 with Retry-After, and 410. A healthy
// destination on the same connection set gets every event while the
// others fail; every event reaches every destination in the end; the
// attempts keep the configured backoff schedule (no hot loop), honour
// Retry-After, and stop at the 410 until the destination is resumed.
func TestDestinationFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const n = 20
	down := soakOr(15*time.Second, time.Minute)
	const (
		initial    = 200 * time.Millisecond
		maxBackoff = 2 * time.Second
		timeout    = 500 * time.Millisecond
		retryAfter = 2 // seconds
	)
	var recovered atomic.Bool // down and slow behave again
	var gone atomic.Bool
	gone.Store(true)
	f := newFaultSink(t, func(path string, k int, w http.ResponseWriter, r *http.Request) bool {
		switch path {
		case "/down":
			if !recovered.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return false
			}
		case "/flapping":
			if k%2 == 1 {
				http.Error(w, "flap", http.StatusInternalServerError)
				return false
			}
		case "/slow":
			if !recovered.Load() {
				select { // answer after the timeout, or never
				case <-time.After(4 * timeout):
				case <-r.Context().Done():
				}
				return false
			}
		case "/ratelimited":
			if f := r.Header.Get("X-Mailroom-Attempt"); f == "1" {
				w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return false
			}
		case "/gone":
			if gone.Load() {
				http.Error(w, "gone", http.StatusGone)
				return false
			}
		}
		return true
	})
	dests := []string{"healthy", "down", "flapping", "slow", "ratelimited", "gone"}
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "storage: sqlite://%s/m.db\n%s\ndestinations:\n", t.TempDir(), hmacSource)
	for _, d := range dests {
		fmt.Fprintf(&yaml, "  - {name: %s, url: %s/%s, timeout: %s, max_concurrency: 4, retry: {max_attempts: 1000, initial: %s, max: %s}}\n",
			d, f.srv.URL, d, timeout, initial, maxBackoff)
	}
	yaml.WriteString("connections:\n")
	for _, d := range dests {
		fmt.Fprintf(&yaml, "  - {source: custom, destination: %s}\n", d)
	}
	inst := start(t, binary(t), writeYAML(t, t.TempDir(), yaml.String()))
	t0 := time.Now()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("fault-%d", i)
		if code := post(http.DefaultClient, inst.addr, ids[i]); code != http.StatusOK {
			t.Fatalf("ingest %s: %d", ids[i], code)
		}
	}
	waitDest := func(path string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for f.delivered(path, ids) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d delivered within %s\n%s", path, f.delivered(path, ids), n, within, inst.logs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The healthy destination and the ones that recover by themselves
	// are served while down and slow are still failing.
	waitDest("/healthy", down)
	if time.Since(t0) >= down {
		t.Fatalf("the healthy destination took %s, longer than the outage", time.Since(t0))
	}
	t.Logf("healthy: all %d delivered in %s while the others fail", n, time.Since(t0).Round(time.Millisecond))
	waitDest("/flapping", down)
	waitDest("/ratelimited", down)

	// 410: the destination is paused after its first request and gets
	// nothing more until it is resumed.
	var dest struct {
		Paused      bool   `json:"paused"`
		PauseReason string `json:"pause_reason"`
	}
	getJSON(t, "http://"+inst.addr+"/api/v1/destinations/gone", &dest)
	if !dest.Paused || !strings.Contains(dest.PauseReason, "410") {
		t.Errorf("after a 410 the destination is %+v, want paused with the reason", dest)
	}

	// Attempts already in flight when the first 410 came back may also
	// have been answered 410 (max_concurrency 4); after that, nothing.
	pausedAt := f.requests("/gone")
	if pausedAt < 1 || pausedAt > 4 {
		t.Errorf("the destination got %d requests before it was paused, want 1 to max_concurrency (4)", pausedAt)
	}
	if wait := down - time.Since(t0); wait > 0 {
		time.Sleep(wait)
	}
	if got := f.requests("/gone"); got != pausedAt {
		t.Errorf("the paused destination got %d requests while paused", got-pausedAt)
	}
	recovered.Store(true)
	gone.Store(false)
	resp, err := http.Post("http://"+inst.addr+"/api/v1/destinations/gone/resume", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Logf("recovered after %s", time.Since(t0).Round(time.Millisecond))
	// After recovery everything arrives within the longest backoff plus
	// the poll interval, with room for a slow machine.
	waitDest("/down", maxBackoff+20*time.Second)
	waitDest("/slow", maxBackoff+20*time.Second)
	waitDest("/gone", 20*time.Second)
	t.Logf("all destinations have every event after %s", time.Since(t0).Round(time.Millisecond))

	// The schedule, from the attempts' own timestamps. Each gap is at
	// least the floor (initial/10) and at most its ceiling
	// (initial·2^(k-1), capped at max) plus slack for polling on a busy
	// machine; over many gaps at the cap the mean is near max/2, which a
	// hot loop would not be.
	for _, name := range []string{"down", "flapping", "slow"} {
		var atCap []time.Duration
		total := 0
		for _, as := range attemptsOf(t, inst.addr, name) {
			total += len(as)
			for k := 1; k < len(as); k++ {
				gap := as[k].StartedAt.Sub(as[k-1].StartedAt)
				ceiling := min(maxBackoff, initial<<min(k-1, 10))
				if name == "slow" {
					ceiling += timeout // the gap includes the timed-out attempt
				}
				if gap < initial/10-5*time.Millisecond || gap > ceiling+5*time.Second {
					t.Errorf("%s: attempt %d came %s after attempt %d, want between %s and %s (+ slack)", name, k+1, gap, k, initial/10, ceiling)
				}
				if initial<<min(k-1, 10) >= maxBackoff {
					atCap = append(atCap, gap)
				}
			}
			if name == "slow" {
				for _, a := range as {
					if !a.Success && (!strings.Contains(a.Error, "timeout") || a.DurationMS < float64(timeout/time.Millisecond)-1 || a.DurationMS > float64((timeout+3*time.Second)/time.Millisecond)) {
						t.Errorf("slow: failed attempt %+v, want a timeout after about %s", a, timeout)
					}
				}
			}
		}
		if len(atCap) >= 10 {
			var sum time.Duration
			for _, g := range atCap {
				sum += g
			}
			if mean := sum / time.Duration(len(atCap)); mean < maxBackoff/4 {
				t.Errorf("%s: mean gap at the backoff cap is %s over %d gaps, want about %s (a hot loop?)", name, mean, len(atCap), maxBackoff/2)
			}
		}
		t.Logf("%s: %d attempts for %d events, %d gaps at the cap", name, total, n, len(atCap))
	}
	for _, as := range attemptsOf(t, inst.addr, "ratelimited") {
		if len(as) != 2 || as[0].StatusCode != http.StatusTooManyRequests || !as[1].Success {
			t.Errorf("ratelimited: attempts %+v, want a 429 then a success", as)
			continue
		}
		if gap := as[1].StartedAt.Sub(as[0].StartedAt); gap < retryAfter*time.Second {
			t.Errorf("ratelimited: retried %s after a 429 with Retry-After: %d", gap, retryAfter)
		}
	}
	for _, as := range attemptsOf(t, inst.addr, "healthy") {
		if len(as) != 1 || !as[0].Success {
			t.Errorf("healthy: attempts %+v, want one success", as)
		}
	}
}

// TestDuplicateStorm sends each of a few provider event ids 100 times at
// once, spread over three instances sharing PostgreSQL: each id makes one
// event, and each of two destinations receives it exactly once.
func TestDuplicateStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dsn := schemaDSN(t, localPostgres(t))
	a, b := newStrictSink(t), newStrictSink(t)
	cfg := writeYAML(t, t.TempDir(), fmt.Sprintf(`
storage: %q
%s
destinations:
  - {name: a, url: %s/hooks}
  - {name: b, url: %s/hooks}
connections:
  - {source: custom, destination: a}
  - {source: custom, destination: b}
`, dsn, hmacSource, a.srv.URL, b.srv.URL))
	bin := binary(t)
	var insts [3]*instance
	for i := range insts {
		insts[i] = start(t, bin, cfg)
	}
	const ids, copies = 5, 100
	var wg sync.WaitGroup
	var okCount, other atomic.Int64
	gate := make(chan struct{})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: copies}}
	for i := range ids {
		for c := range copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				if code := post(client, insts[c%3].addr, fmt.Sprintf("storm-%d", i)); code == http.StatusOK {
					okCount.Add(1)
				} else {
					other.Add(1)
					t.Logf("copy %d of storm-%d to instance %d: %d", c, i, c%3, code)
				}
			}()
		}
	}
	close(gate)
	wg.Wait()
	if other.Load() != 0 {
		t.Fatalf("%d of %d copies not answered 200\n%s", other.Load(), ids*copies, insts[0].logs.String()+insts[1].logs.String()+insts[2].logs.String())
	}
	want := make([]string, ids)
	for i := range want {
		want[i] = fmt.Sprintf("storm-%d", i)
	}
	a.waitAll(t, want, 30*time.Second)
	b.waitAll(t, want, 30*time.Second)
	time.Sleep(2 * time.Second) // room for a second delivery to show up
	for name, s := range map[string]*strictSink{"a": a, "b": b} {
		s.mu.Lock()
		for _, id := range want {
			if s.hits[id] != 1 || len(s.events[id]) != 1 {
				t.Errorf("destination %s: %s delivered %d times as %d events, want once", name, id, s.hits[id], len(s.events[id]))
			}
		}
		s.mu.Unlock()
	}
	var events struct {
		Data []json.RawMessage `json:"data"`
	}
	getJSON(t, "http://"+insts[0].addr+"/api/v1/events?limit=1000", &events)
	if len(events.Data) != ids {
		t.Errorf("%d events stored, want %d", len(events.Data), ids)
	}
	t.Logf("%d copies of %d ids over 3 instances: all 200, %d events, one delivery per destination", ids*copies, ids, len(events.Data))
}

// TestClockSkew sends Stripe-signed webhooks whose timestamps are off by
// more and by less than the source's tolerance: outside it they are
// refused with a reason that says so, inside it they are accepted.
func TestClockSkew(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const secret = "whsec_skew_test_secret"
	cfg := writeYAML(t, t.TempDir(), fmt.Sprintf(`
storage: sqlite://%s/m.db
sources:
  - name: stripe
    verify: {type: stripe, secret: %s, tolerance: 5m}
`, t.TempDir(), secret))
	inst := start(t, binary(t), cfg)
	now := time.Now()
	for i, tc := range []struct {
		skew time.Duration
		want int
	}{
		{-10 * time.Minute, http.StatusUnauthorized},
		{10 * time.Minute, http.StatusUnauthorized},
		{-4 * time.Minute, http.StatusOK},
		{4 * time.Minute, http.StatusOK},
		{0, http.StatusOK},
	} {
		body := fmt.Sprintf(`{"id":"evt_skew_%d","type":"charge.succeeded"}`, i)
		code, out := postStripe(t, inst.addr, body, stripeSign(secret, now.Add(tc.skew).Unix(), body))
		if code != tc.want {
			t.Errorf("skew %s: %d %v, want %d", tc.skew, code, out, tc.want)
			continue
		}
		if code != http.StatusOK {
			msg, _ := out["error"].(string)
			if !strings.Contains(msg, "timestamp") || !strings.Contains(msg, "tolerance") {
				t.Errorf("skew %s: reason %q does not name the timestamp and the tolerance", tc.skew, msg)
			}
		}
	}
	var rejected struct {
		Data []struct {
			Reason string `json:"reason"`
		} `json:"data"`
	}
	getJSON(t, "http://"+inst.addr+"/api/v1/requests?status=rejected", &rejected)
	if len(rejected.Data) != 2 {
		t.Fatalf("%d rejected requests recorded, want 2", len(rejected.Data))
	}
	for _, r := range rejected.Data {
		if !strings.Contains(r.Reason, "tolerance") {
			t.Errorf("recorded reason %q does not name the tolerance", r.Reason)
		}
	}
}

// faultyStore fails a share of the writes that carry mailroom's
// promises: ingest, claims and attempt records. Every 7th such write
// fails before reaching storage (nothing written), every 11th after it
// (written, but the caller hears an error, as when the answer to a commit
// is lost).
type faultyStore struct {
	store.Store
	calls                     atomic.Int64
	ingestBefore, ingestAfter atomic.Int64
	otherBefore, otherAfter   atomic.Int64
}

var errInjected = errors.New("injected storage error")

// inject runs write unless this call fails before it, and reports an
// error for calls that fail before or after.
func (f *faultyStore) inject(before, after *atomic.Int64, write func() error) error {
	k := f.calls.Add(1)
	switch {
	case k%7 == 0:
		before.Add(1)
		return errInjected
	case k%11 == 0:
		if err := write(); err != nil {
			return err
		}
		after.Add(1)
		return errInjected
	}
	return write()
}

func (f *faultyStore) RequestIngest(ctx context.Context, p *store.RequestIngestParams) (*store.RequestIngestResult, error) {
	var res *store.RequestIngestResult
	err := f.inject(&f.ingestBefore, &f.ingestAfter, func() (err error) {
		res, err = f.Store.RequestIngest(ctx, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (f *faultyStore) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.Delivery, error) {
	var ds []*store.Delivery
	err := f.inject(&f.otherBefore, &f.otherAfter, func() (err error) {
		ds, err = f.Store.DeliveryClaimDue(ctx, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ds, nil
}

func (f *faultyStore) AttemptRecord(ctx context.Context, p *store.AttemptRecordParams) error {
	return f.inject(&f.otherBefore, &f.otherAfter, func() error { return f.Store.AttemptRecord(ctx, p) })
}

// AttemptRecordMany fails a batch of records as a whole, as a failed
// write does.
func (f *faultyStore) AttemptRecordMany(ctx context.Context, ps []*store.AttemptRecordParams) []error {
	var errs []error
	err := f.inject(&f.otherBefore, &f.otherAfter, func() error {
		errs = f.Store.AttemptRecordMany(ctx, ps)
		return nil
	})
	if err != nil {
		errs = make([]error, len(ps))
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// TestStorageErrors runs ingest and delivery in process over a SQLite
// store that fails a share of its writes, before or after writing: no
// request whose write failed is answered 200, every event that was
// answered 200 is delivered, and no delivery stays stuck (claims and
// attempt records that failed are taken over when their lease expires).
func TestStorageErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sq, err := sqlite.Open(ctx, t.TempDir()+"/m.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	s := newSink(t)
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`%s
destinations:
  - {name: sink, url: %s/hooks, timeout: 2s, retry: {max_attempts: 1000, initial: 20ms, max: 200ms}}
connections:
  - {source: custom, destination: sink}
`, hmacSource, s.srv.URL)), "test.yaml", &config.Options{CheckExpr: compiler.Check})
	if err != nil {
		t.Fatal(err)
	}
	fs := &faultyStore{Store: sq}
	cat := catalog.New(fs, compiler, nil)
	if _, err := reload.New(sq, cat, nil, cfg, nil).Apply(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ingest.New(fs, cat, nil).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	done := make(chan error, 1)
	go func() {
		done <- deliver.New(fs, &deliver.Options{Lease: 300 * time.Millisecond, PollInterval: 50 * time.Millisecond}).Run(ctx)
	}()

	addr := strings.TrimPrefix(srv.URL, "http://")
	var acked []string
	codes := map[int]int{}
	for i := range 400 {
		id := fmt.Sprintf("st-%d", i)
		code := post(srv.Client(), addr, id)
		codes[code]++
		if code == http.StatusOK {
			acked = append(acked, id)
		}
	}
	injected := int(fs.ingestBefore.Load() + fs.ingestAfter.Load())
	if codes[http.StatusOK]+codes[http.StatusServiceUnavailable] != 400 || codes[http.StatusServiceUnavailable] != injected {
		t.Fatalf("answers %v, want 200s and one 503 per failed ingest write (%d)", codes, injected)
	}
	waitDelivered(t, s, acked, 60*time.Second)
	// Events written but answered 503 are delivered too; nothing stays
	// pending.
	waitUntil(t, "no pending delivery", func() bool {
		ds, err := sq.DeliveryList(ctx, &store.DeliveryListParams{Status: store.DeliveryPending, Limit: 10})
		return err == nil && len(ds) == 0
	})
	evs, err := sq.EventList(ctx, &store.EventListParams{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(acked) + int(fs.ingestAfter.Load()); len(evs) != want {
		t.Errorf("%d events stored, want %d (acknowledged) + %d (written, answer lost)", len(evs), len(acked), fs.ingestAfter.Load())
	}
	cancel()
	<-done
	t.Logf("400 sent: %d acknowledged, %d answered 503 (%d not written, %d written); %d claims and attempt records failed; all acknowledged delivered, none pending",
		len(acked), injected, fs.ingestBefore.Load(), fs.ingestAfter.Load(), fs.otherBefore.Load()+fs.otherAfter.Load())
}
