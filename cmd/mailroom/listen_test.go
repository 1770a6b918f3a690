package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestListenForwardsAndResumes runs `mailroom listen` against the real
// server: events are forwarded in order to a local URL, the server is
// killed and restarted on the same port and database, events sent while
// listen reconnects arrive too, none twice, and every forward is recorded
// as a delivery to listen:<session>.
func TestListenForwardsAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	b := setupListen(t)
	srv := b.serve(t)
	b.listen(t, "--session", "t1", "--filter", `body.id != "skip"`)
	send := func(source, id string) { t.Helper(); b.send(t, source, id) }
	waitGot := func(n int) { t.Helper(); b.waitGot(t, n) }
	mu, got := &b.mu, &b.got
	addr, bin, cfg := b.addr, b.bin, b.cfg

	send("app", "a1")
	send("other", "o1") // another source: not forwarded
	send("app", "skip") // filtered out
	send("app", "a2")
	waitGot(2)

	srv.cmd.Process.Signal(syscall.SIGKILL)
	<-srv.done
	srv = startProcess(t, bin, []string{"serve", "--config", cfg}, nil)
	send("app", "a3") // lands while listen is still reconnecting
	send("app", "a4")
	waitGot(4)
	time.Sleep(500 * time.Millisecond) // a repeat would show up by now
	mu.Lock()
	if strings.Join(*got, ",") != "a1,a2,a3,a4" {
		t.Errorf("forwards: %v, want a1,a2,a3,a4 once each, in order", *got)
	}
	mu.Unlock()

	var events struct {
		Data []struct{ ID string } `json:"data"`
	}
	resp, err := http.Get("http://" + addr + "/api/v1/events?source=app&limit=1")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&events)
	resp.Body.Close()
	var detail struct {
		Deliveries []struct {
			Destination, Status string
		} `json:"deliveries"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err = http.Get("http://" + addr + "/api/v1/events/" + events.Data[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&detail)
		resp.Body.Close()
		if len(detail.Deliveries) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(detail.Deliveries) != 1 || detail.Deliveries[0].Destination != "listen:t1" || detail.Deliveries[0].Status != "succeeded" {
		t.Errorf("listen attempt not recorded: %+v", detail)
	}
}

// TestListenStartsFromNow runs `mailroom listen` without --after against
// the real server: an event received before it connected is not
// forwarded, and an event received while it reconnects, before it has seen
// any event, is. Forwards come in order, so a replayed old event would be
// the first one.
func TestListenStartsFromNow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	b := setupListen(t)
	srv := b.serve(t)
	b.send(t, "app", "before-listen")
	b.listen(t)

	srv.cmd.Process.Signal(syscall.SIGKILL)
	<-srv.done
	b.serve(t)
	b.send(t, "app", "while-reconnecting")
	b.waitGot(t, 1)
	b.send(t, "app", "after")
	b.waitGot(t, 2)
	b.mu.Lock()
	defer b.mu.Unlock()
	if got := strings.Join(b.got, ","); got != "while-reconnecting,after" {
		t.Errorf("forwards: %s, want while-reconnecting,after", got)
	}
}

// listenBundle is a mailroom config on a fixed port with sources app and
// other (no verification), and a local server that records the ids
// `mailroom listen` forwards to it.
type listenBundle struct {
	bin, addr, cfg string
	local          *httptest.Server
	mu             sync.Mutex
	got            []string
}

func setupListen(t *testing.T) *listenBundle {
	t.Helper()
	b := &listenBundle{bin: binary(t)}
	b.local = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body struct{ ID string }
		json.Unmarshal(raw, &body)
		b.mu.Lock()
		b.got = append(b.got, body.ID)
		b.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(b.local.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	b.cfg = filepath.Join(dir, "mailroom.yaml")
	os.WriteFile(b.cfg, []byte(fmt.Sprintf("listen: %s\nstorage: sqlite://%s/m.db\nsources:\n  - name: app\n    verify: {type: none}\n  - name: other\n    verify: {type: none}\n", b.addr, dir)), 0o600)
	return b
}

// serve starts `mailroom serve` on the bundle's port and database.
func (b *listenBundle) serve(t *testing.T) *instance {
	t.Helper()
	return startProcess(t, b.bin, []string{"serve", "--config", b.cfg}, nil)
}

// listen starts `mailroom listen --source app` forwarding to the local
// server and returns once it says it listens, which it does once its
// stream is open.
func (b *listenBundle) listen(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(b.bin, append([]string{"listen", "--server", "http://" + b.addr, "--source", "app", "--forward", b.local.URL + "/hooks"}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if l := <-lines; !strings.Contains(l, "listening on") {
		t.Fatalf("first line: %q", l)
	}
	go func() { // keep draining
		for range lines {
		}
	}()
}

// send posts {"id": id} to source and wants a 200.
func (b *listenBundle) send(t *testing.T, source, id string) {
	t.Helper()
	resp, err := http.Post("http://"+b.addr+"/e/"+source, "application/json", strings.NewReader(fmt.Sprintf(`{"id":%q}`, id)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("send %s: %d", id, resp.StatusCode)
	}
}

// waitGot waits until the local server has received n forwards.
func (b *listenBundle) waitGot(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b.mu.Lock()
		have := len(b.got)
		b.mu.Unlock()
		if have >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("local server got %d forwards, want %d", have, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
