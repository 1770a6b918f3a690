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
	var mu sync.Mutex
	var got []string
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct{ ID string }
		json.Unmarshal(b, &body)
		mu.Lock()
		got = append(got, body.ID)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer local.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mailroom.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %s\nstorage: sqlite://%s/m.db\nsources:\n  - name: app\n    verify: {type: none}\n  - name: other\n    verify: {type: none}\n", addr, dir)), 0o600)
	bin := binary(t)
	srv := startProcess(t, bin, []string{"serve", "--config", cfg}, nil)

	cmd := exec.Command(bin, "listen", "--server", "http://"+addr, "--source", "app", "--forward", local.URL+"/hooks", "--session", "t1", "--filter", `body.id != "skip"`)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
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
	time.Sleep(300 * time.Millisecond) // the stream connects

	send := func(source, id string) {
		resp, err := http.Post("http://"+addr+"/e/"+source, "application/json", strings.NewReader(fmt.Sprintf(`{"id":%q}`, id)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("send %s: %d", id, resp.StatusCode)
		}
	}
	waitGot := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			have := len(got)
			mu.Unlock()
			if have >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("local server got %d forwards, want %d", have, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
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
	if strings.Join(got, ",") != "a1,a2,a3,a4" {
		t.Errorf("forwards: %v, want a1,a2,a3,a4 once each, in order", got)
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
