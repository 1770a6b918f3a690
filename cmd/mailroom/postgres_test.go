package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// skipOrFail skips the test, or fails it when CI=true: in CI, PostgreSQL
// is part of the environment and a missing one is a broken build.
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// localPostgres returns the DSN of the local test server (or of
// MAILROOM_TEST_POSTGRES), skipping when it does not answer.
func localPostgres(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("MAILROOM_TEST_POSTGRES")
	if dsn == "" {
		name := "postgres"
		if u, err := user.Current(); err == nil && u.Username == "root" {
			name = "root"
		}
		dsn = "postgres://" + name + "@127.0.0.1:5432/test?sslmode=disable&connect_timeout=5"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		skipOrFail(t, "PostgreSQL not reachable (set MAILROOM_TEST_POSTGRES): "+err.Error())
	}
	conn.Close(ctx)
	return dsn
}

// schemaDSN returns dsn with a fresh search_path schema (which mailroom
// creates) that is dropped when t ends.
func schemaDSN(t *testing.T, dsn string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "mailroom_cmdtest_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(ctx)
		}
	})
	return dsn + "&search_path=" + schema
}

// pgConfig writes a config for storage dsn. The destination's timeout is
// short so that the leases of a killed instance (timeout + 30s) expire
// within the test.
func pgConfig(t *testing.T, dir, dsn, sinkURL string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
storage: %q
shutdown: {grace: 2s}
sources:
  - name: custom
    verify: {type: hmac, header: X-Signature, algorithm: sha256, encoding: hex, secret: testsecret}
    dedup: {key: 'body.id'}
destinations:
  - name: sink
    url: %s/hooks
    timeout: 1s
    max_concurrency: 16
    retry: {max_attempts: 100, initial: 50ms, max: 500ms}
connections:
  - source: custom
    destination: sink
`, dsn, sinkURL)
	path := filepath.Join(dir, "mailroom.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// strictSink is a destination that records, per provider id, the events
// that carried it, and counts a violation whenever one delivery is in
// flight twice at the same time. Each request takes 30ms, so that
// overlapping attempts would show and an instance killed under load dies
// with attempts in flight.
type strictSink struct {
	mu         sync.Mutex
	events     map[string]map[string]bool // provider id -> event ids
	hits       map[string]int             // provider id -> deliveries received
	inflight   map[string]int             // delivery id -> attempts in flight
	violations []string
	abandoned  int // attempts whose sender died while in flight
	// cut holds the deliveries whose attempt was cut by a sender's death,
	// and retaken when another attempt of each first arrived.
	cut     map[string]bool
	retaken map[string]time.Time
	srv     *httptest.Server
}

func newStrictSink(t *testing.T) *strictSink {
	s := &strictSink{events: map[string]map[string]bool{}, hits: map[string]int{}, inflight: map[string]int{},
		cut: map[string]bool{}, retaken: map[string]time.Time{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ ID string }
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		dlv, ev := r.Header.Get("X-Mailroom-Delivery-Id"), r.Header.Get("X-Mailroom-Event-Id")
		s.mu.Lock()
		if s.cut[dlv] && s.retaken[dlv].IsZero() {
			s.retaken[dlv] = time.Now()
		}
		s.inflight[dlv]++
		if s.inflight[dlv] > 1 {
			s.violations = append(s.violations, dlv)
		}
		s.mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		s.mu.Lock()
		s.inflight[dlv]--
		if r.Context().Err() != nil {
			// The sender died mid-attempt (SIGKILL): it never learned
			// the outcome, so this does not count as delivered.
			s.abandoned++
			s.cut[dlv] = true
			s.mu.Unlock()
			return
		}
		if s.events[body.ID] == nil {
			s.events[body.ID] = map[string]bool{}
		}
		s.events[body.ID][ev] = true
		s.hits[body.ID]++
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// missing counts the ids never received.
func (s *strictSink) missing(ids []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if s.hits[id] == 0 {
			n++
		}
	}
	return n
}

func (s *strictSink) waitAll(t *testing.T, ids []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := s.missing(ids)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events never delivered", n, len(ids))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post sends one signed webhook with provider id to addr and returns the
// status (0 when the request failed).
func post(client *http.Client, addr, id string) int {
	body := []byte(fmt.Sprintf(`{"id":%q,"type":"test"}`, id))
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/e/custom", bytes.NewReader(body))
	req.Header.Set("X-Signature", sign(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestMultiInstance runs three mailroom processes on one PostgreSQL schema
// behind a client-side "load balancer", sends a few thousand webhooks
// spread over them (one in ten also sent to a second instance, as a
// provider retry would be), SIGKILLs one mid-load, and checks that every
// acknowledged event is delivered, that no delivery is ever attempted
// twice at once, and that duplicates made one event.
func TestMultiInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dsn := schemaDSN(t, localPostgres(t))
	bin := binary(t)
	s := newStrictSink(t)
	cfg := pgConfig(t, t.TempDir(), dsn, s.srv.URL)
	var insts [3]*instance
	for i := range insts {
		insts[i] = start(t, bin, cfg)
	}
	var dead atomic.Int32 // index+1 of the killed instance
	const total, workers = 3000, 12
	var mu sync.Mutex
	acked := map[string]bool{}
	var dupsSent atomic.Int32
	var next atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second}
	t0 := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				id := fmt.Sprintf("mi-%d", i)
				targets := []int{i % 3}
				if i%10 == 0 {
					targets = append(targets, (i+1)%3)
					dupsSent.Add(1)
				}
				for _, tgt := range targets {
					// Like a load balancer: an instance that does not
					// answer is skipped for the next one.
					for try := range 3 {
						inst := insts[(tgt+try)%3]
						if int(dead.Load()) == (tgt+try)%3+1 {
							continue
						}
						if code := post(client, inst.addr, id); code == http.StatusOK {
							mu.Lock()
							acked[id] = true
							mu.Unlock()
							break
						}
					}
				}
			}
		}()
	}
	// Kill one instance a third of the way in.
	for next.Load() < total/3 {
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	inflight := 0
	for _, n := range s.inflight {
		inflight += n
	}
	s.mu.Unlock()
	killedAt := time.Now()
	if err := insts[1].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-insts[1].done
	dead.Store(2)
	t.Logf("killed instance 1 after %d webhooks, %d attempts in flight on all three (%s)", next.Load(), inflight, time.Since(t0).Round(time.Millisecond))
	wg.Wait()
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	t.Logf("%d acknowledged of %d sent (%d also sent to a second instance) in %s", len(ids), total, dupsSent.Load(), time.Since(t0).Round(time.Millisecond))
	if len(ids) < total*9/10 {
		t.Fatalf("only %d of %d acknowledged", len(ids), total)
	}
	// The killed instance stops renewing its leases: they lapse within one
	// lease (15s) and the survivors take its deliveries over.
	s.waitAll(t, ids, 60*time.Second)

	s.mu.Lock()
	defer s.mu.Unlock()
	// Failover: from the SIGKILL to the arrival of the next attempt of each
	// delivery the kill cut short.
	var first, last time.Duration
	for dlv := range s.cut {
		at, ok := s.retaken[dlv]
		if !ok {
			continue // retried already before it was cut, or delivered via a duplicate
		}
		d := at.Sub(killedAt)
		if first == 0 || d < first {
			first = d
		}
		last = max(last, d)
	}
	if len(s.cut) > 0 && last == 0 {
		t.Errorf("%d attempts cut by the kill, none taken over", len(s.cut))
	}
	// One lease (15s) plus a poll (1s) plus the load on a shared box;
	// before lease renewal this was the destination timeout + 30s.
	if last > 25*time.Second {
		t.Errorf("failover took %s for the last cut delivery, want within a lease (15s) and a poll", last)
	}
	t.Logf("failover: %d deliveries cut by the SIGKILL, first taken over by a survivor %s after it, last %s",
		len(s.cut), first.Round(time.Millisecond), last.Round(time.Millisecond))
	if len(s.violations) > 0 {
		t.Errorf("%d deliveries attempted twice at the same time, e.g. %s", len(s.violations), s.violations[0])
	}
	redelivered := 0
	for id, evs := range s.events {
		if len(evs) != 1 {
			t.Errorf("provider id %s made %d events, want 1", id, len(evs))
		}
		redelivered += s.hits[id] - 1
	}
	t.Logf("all delivered in %s; %d attempts cut by the kill and taken over after their lease expired; %d redeliveries",
		time.Since(t0).Round(time.Millisecond), s.abandoned, redelivered)
}

// cluster is a throwaway PostgreSQL cluster that a test can stop and start.
type cluster struct {
	dir, data, port string
	asPostgres      bool
	bin             string
}

// newCluster initdb's a cluster in a temp directory on a free port and
// starts it. It skips (fails when CI=true) when the binaries are missing
// or initdb cannot run.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	initdbs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(initdbs) == 0 {
		skipOrFail(t, "no initdb under /usr/lib/postgresql/*/bin")
	}
	c := &cluster{bin: filepath.Dir(initdbs[len(initdbs)-1])}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root.
		if _, err := exec.LookPath("runuser"); err != nil {
			skipOrFail(t, "running as root without runuser: cannot run initdb as postgres")
		}
		if _, err := user.Lookup("postgres"); err != nil {
			skipOrFail(t, "running as root and there is no postgres user to run initdb as")
		}
		c.asPostgres = true
	}
	dir, err := os.MkdirTemp("", "mailroom-pg-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, c.port, _ = net.SplitHostPort(ln.Addr().String())
	ln.Close()
	c.dir, c.data = dir, filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", c.data, "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		skipOrFail(t, fmt.Sprintf("initdb: %v\n%s", err, out))
	}
	if out, err := c.pgctl("start"); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
	t.Cleanup(func() { c.pgctl("stop") })
	return c
}

func (c *cluster) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	if c.asPostgres {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(c.bin, name)}, args...)...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// pgctl runs pg_ctl start or stop (immediate: a crash, as far as mailroom
// can tell) and waits for it.
func (c *cluster) pgctl(action string) ([]byte, error) {
	args := []string{action, "-D", c.data, "-w", "-t", "30"}
	if action == "start" {
		args = append(args, "-l", filepath.Join(c.dir, "log"),
			"-o", fmt.Sprintf("-p %s -k %s -c listen_addresses=127.0.0.1", c.port, c.dir))
	} else {
		args = append(args, "-m", "immediate")
	}
	return c.run("pg_ctl", args...)
}

func (c *cluster) dsn() string {
	return "postgres://postgres@127.0.0.1:" + c.port + "/postgres?sslmode=disable&connect_timeout=2"
}

// TestPostgresOutage stops PostgreSQL under load (immediate shutdown) and
// starts it again, without touching mailroom: while it is down ingestion
// answers 503 and /readyz fails; afterwards ingestion answers 200 again,
// and every acknowledged event is delivered.
func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	c := newCluster(t)
	bin := binary(t)
	s := newStrictSink(t)
	inst := start(t, bin, pgConfig(t, t.TempDir(), c.dsn(), s.srv.URL))
	t0 := time.Now()

	var mu sync.Mutex
	var acked []string
	var ok, unavailable, other atomic.Int64
	var phase atomic.Int32 // 0 before, 1 during, 2 after the outage
	var okAfter atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("out-%d-%d", w, i)
				switch code := post(client, inst.addr, id); code {
				case http.StatusOK:
					ok.Add(1)
					if phase.Load() == 2 {
						okAfter.Add(1)
					}
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				case http.StatusServiceUnavailable:
					unavailable.Add(1)
					time.Sleep(5 * time.Millisecond)
				default:
					other.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	readyz := func() int {
		resp, err := client.Get("http://" + inst.addr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: not within %s\n%s", what, within, inst.logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("first acknowledgements", 10*time.Second, func() bool { return ok.Load() > 300 })

	if out, err := c.pgctl("stop"); err != nil {
		t.Fatalf("stop postgres: %v\n%s", err, out)
	}
	phase.Store(1)
	t.Logf("postgres stopped after %d acknowledged (%s)", ok.Load(), time.Since(t0).Round(time.Millisecond))
	before503 := unavailable.Load()
	waitFor("503 while postgres is down", 10*time.Second, func() bool { return unavailable.Load() > before503+50 })
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage = %d, want 503", code)
	}
	time.Sleep(2 * time.Second)

	if out, err := c.pgctl("start"); err != nil {
		t.Fatalf("start postgres: %v\n%s", err, out)
	}
	phase.Store(2)
	t.Logf("postgres started again (%s); %d answered 503 meanwhile", time.Since(t0).Round(time.Millisecond), unavailable.Load())
	waitFor("/readyz after the outage", 20*time.Second, func() bool { return readyz() == http.StatusOK })
	waitFor("acknowledgements after the outage", 20*time.Second, func() bool { return okAfter.Load() > 300 })
	close(stop)
	wg.Wait()
	if other.Load() > 0 {
		t.Errorf("%d answers were neither 200 nor 503", other.Load())
	}
	t.Logf("%d acknowledged (%d after the restart), %d answered 503 (%s)", len(acked), okAfter.Load(), unavailable.Load(), time.Since(t0).Round(time.Millisecond))

	// Attempts whose outcome could not be recorded during the outage are
	// sent again when their lease (timeout 1s + 30s) expires.
	s.waitAll(t, acked, 45*time.Second)
	select {
	case <-inst.done:
		t.Fatalf("mailroom exited during the outage: %v\n%s", inst.err, inst.logs)
	default:
	}
	if !strings.Contains(inst.logs.String(), "postgres listener: reconnected") {
		t.Errorf("the listener did not report reconnecting:\n%s", inst.logs)
	}
	t.Logf("all delivered after %s", time.Since(t0).Round(time.Millisecond))
}
