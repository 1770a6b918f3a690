package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

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

// ingestUntil posts signed webhooks from several workers until stop is
// closed, logging each acknowledged id.
func ingestUntil(addr string, workers int, acks *ackLog, stop <-chan struct{}) *sync.WaitGroup {
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
				id := fmt.Sprintf("bk-%d-%d", w, i)
				body := []byte(fmt.Sprintf(`{"id":%q,"type":"test"}`, id))
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/e/custom", bytes.NewReader(body))
				req.Header.Set("X-Signature", sign(body))
				resp, err := client.Do(req)
				if err != nil {
					return
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

// eventKeys pages through /api/v1/events and returns every event's dedup
// key (the webhook's id).
func eventKeys(t *testing.T, addr string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	cursor := ""
	for {
		var page struct {
			Data []struct {
				DedupKey string `json:"dedup_key"`
			}
			NextCursor string `json:"next_cursor"`
		}
		getJSON(t, "http://"+addr+"/api/v1/events?limit=1000&cursor="+url.QueryEscape(cursor), &page)
		for _, e := range page.Data {
			keys[e.DedupKey] = true
		}
		if page.NextCursor == "" {
			return keys
		}
		cursor = page.NextCursor
	}
}

// TestBackupDuringIngest runs `mailroom backup` against the SQLite
// database of a running `mailroom serve` while webhooks pour in, then
// starts serve on the copy and checks every webhook acknowledged before
// the backup started is in it.
func TestBackupDuringIngest(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	s := newSink(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, s.srv.URL)
	inst := start(t, bin, cfg)

	acks := &ackLog{}
	stop := make(chan struct{})
	wg := ingestUntil(inst.addr, 8, acks, stop)
	defer func() { close(stop); wg.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); len(acks.snapshot()) < 500; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d webhooks acknowledged in 30s\n%s", len(acks.snapshot()), inst.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := acks.snapshot() // every one of these was answered 200 before the backup starts
	backup := filepath.Join(dir, "backup.db")
	out, err := exec.Command(bin, "backup", "--config", cfg, backup).CombinedOutput()
	if err != nil {
		t.Fatalf("mailroom backup: %v\n%s", err, out)
	}
	during := len(acks.snapshot()) - len(before)
	t.Logf("%s; %d acknowledged before it started, %d while it ran", bytes.TrimSpace(out), len(before), during)

	restored := startProcess(t, bin, []string{"serve", "--config", cfg, "--db", "sqlite://" + backup, "--listen", "127.0.0.1:0"}, nil)
	keys := eventKeys(t, restored.addr)
	missing := 0
	for _, id := range before {
		if !keys[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d webhooks acknowledged before the backup started are not in it", missing, len(before))
	}
	if len(keys) < len(before) {
		t.Fatalf("backup has %d events, fewer than the %d acknowledged before it", len(keys), len(before))
	}
}
