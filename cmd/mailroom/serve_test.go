package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles mailroom once per test binary run.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mailroom-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "mailroom")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// sink is a destination that records the event ids it receives.
type sink struct {
	mu   sync.Mutex
	seen map[string]int
	fail atomic.Bool
	srv  *httptest.Server
}

func newSink(t *testing.T) *sink {
	s := &sink{seen: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var body struct{ ID string }
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.seen[body.ID]++
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) count(ids []string) (missing int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.seen[id] == 0 {
			missing++
		}
	}
	return missing
}

// instance is one running mailroom process.
type instance struct {
	cmd  *exec.Cmd
	addr string
	logs *logBuffer
	done chan struct{} // closed when the process has exited
	err  error         // the exit status, valid after done is closed
}

// logBuffer collects a process's stderr; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(line + "\n")
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// listenRE finds the "listening" line in text or JSON logs; the address
// is the last non-empty group.
var listenRE = regexp.MustCompile(`msg=listening addr=(\S+)|"msg":"listening","addr":"([^"]+)"`)

// start runs `mailroom serve` with the config and waits for its address.
func start(t *testing.T, bin, configPath string) *instance {
	t.Helper()
	return startProcess(t, bin, []string{"serve", "--config", configPath, "--listen", "127.0.0.1:0"}, nil)
}

// startProcess runs the binary with args and extra environment, and waits
// for its "listening" log line.
func startProcess(t *testing.T, bin string, args, env []string) *instance {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "MAILROOM_LOG_LEVEL=info"), env...)
	stderr, stderrW := io.Pipe()
	cmd.Stderr = stderrW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inst := &instance{cmd: cmd, logs: &logBuffer{}, done: make(chan struct{})}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			inst.logs.add(line)
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case addrCh <- m[1] + m[2]:
				default:
				}
			}
		}
	}()
	go func() {
		inst.err = cmd.Wait()
		stderrW.Close()
		close(inst.done)
	}()
	select {
	case inst.addr = <-addrCh:
	case <-inst.done:
		t.Fatalf("mailroom exited before listening: %v\n%s", inst.err, inst.logs)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("mailroom did not listen within 30s\n%s", inst.logs)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-inst.done
	})
	return inst
}

func writeConfig(t *testing.T, dir, sinkURL string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
storage: sqlite://%s/mailroom.db
shutdown: {grace: 5s}
sources:
  - name: custom
    verify: {type: hmac, header: X-Signature, algorithm: sha256, encoding: hex, secret: testsecret}
    dedup: {key: 'body.id'}
destinations:
  - name: sink
    url: %s/hooks
    timeout: 5s
    max_concurrency: 20
    retry: {max_attempts: 100, initial: 50ms, max: 500ms}
connections:
  - source: custom
    destination: sink
`, dir, sinkURL)
	path := filepath.Join(dir, "mailroom.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func sign(body []byte) string {
	m := hmac.New(sha256.New, []byte("testsecret"))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// load posts signed webhooks with unique ids from several connections until
// stop is closed or a request fails, and returns the ids that got a 200.
func load(addr string, workers int, prefix string, stop <-chan struct{}) []string {
	acks := &ackLog{}
	ingestUntil(addr, workers, prefix, acks, stop).Wait()
	return acks.snapshot()
}

// ackLog is the ids of webhooks answered 200, in order; safe for
// concurrent use.
type ackLog struct {
	mu  sync.Mutex
	ids []string
}

func (a *ackLog) add(id string) {
	a.mu.Lock()
	a.ids = append(a.ids, id)
	a.mu.Unlock()
}

func (a *ackLog) snapshot() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.ids...)
}

// ingestUntil posts signed webhooks with unique ids (prefix-worker-n) from
// several workers until stop is closed or a request fails, logging each
// acknowledged id as it comes; wait on the result for the workers to end.
func ingestUntil(addr string, workers int, prefix string, acks *ackLog, stop <-chan struct{}) *sync.WaitGroup {
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
				body := []byte(fmt.Sprintf(`{"id":%q,"type":"test"}`, id))
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/e/custom", bytes.NewReader(body))
				req.Header.Set("X-Signature", sign(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // the server died: stop this worker
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					acks.add(id)
				}
			}
		}()
	}
	return &wg
}

func waitDelivered(t *testing.T, s *sink, acked []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		missing := s.count(acked)
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events never delivered", missing, len(acked))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKillDuringLoadLosesNothing kills mailroom with SIGKILL every few
// seconds while signed webhooks pour in, restarts it on the same SQLite
// database each time, and checks that every event that got a 200 is
// delivered at least once (see killSoak; a minute under -tags soak).
func TestKillDuringLoadLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	killSoak(t, "sqlite", "sqlite://"+t.TempDir()+"/mailroom.db")
}

// TestGracefulShutdown sends SIGTERM under load: the process exits 0, and
// everything acknowledged is delivered once it runs again.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := binary(t)
	dir := t.TempDir()
	s := newSink(t)
	s.fail.Store(true) // the destination is down: deliveries queue and retry
	cfg := writeConfig(t, dir, s.srv.URL)
	inst := start(t, bin, cfg)
	stop := make(chan struct{})
	res := make(chan []string, 1)
	go func() { res <- load(inst.addr, 8, "g", stop) }()
	time.Sleep(500 * time.Millisecond)
	if err := inst.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inst.done:
		if inst.err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", inst.err, inst.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
	close(stop)
	acked := <-res
	if len(acked) == 0 {
		t.Fatal("nothing acknowledged")
	}
	if !strings.Contains(inst.logs.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", inst.logs)
	}
	s.fail.Store(false)
	start(t, bin, cfg)
	waitDelivered(t, s, acked, 60*time.Second)
	t.Logf("acknowledged %d before SIGTERM; all delivered after restart", len(acked))
}
