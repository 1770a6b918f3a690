package main

import (
	"bytes"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

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
	wg := ingestUntil(inst.addr, 8, "bk", acks, stop)
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
