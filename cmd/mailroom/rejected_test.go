package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dbBytes is the size of the SQLite database in dir, WAL included.
func dbBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, f := range []string{"mailroom.db", "mailroom.db-wal"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil {
			n += st.Size()
		}
	}
	return n
}

// TestRejectedBodiesBounded: sixteen 8 MiB bodies with a bad signature
// grow the database by what their headers and 4 KiB prefixes take, not
// by their 128 MiB; the API shows each one's prefix, size and SHA-256,
// and /metrics counts them for their source.
func TestRejectedBodiesBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inst := start(t, binary(t), writeConfig(t, dir, "http://127.0.0.1:9"))
	base := "http://" + inst.addr
	before := dbBytes(t, dir)
	body := bytes.Repeat([]byte(`{"id":"forged","pad":"0123456789abcdef"}`), 8<<20/40)
	sum := sha256.Sum256(body)
	var ids []string
	const n = 16
	for range n {
		req, _ := http.NewRequest("POST", base+"/e/custom", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Signature", strings.Repeat("0", 64))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			RequestID string `json:"request_id"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || out.RequestID == "" {
			t.Fatalf("forged request: %d %+v", resp.StatusCode, out)
		}
		ids = append(ids, out.RequestID)
	}
	grown := dbBytes(t, dir) - before
	t.Logf("%d rejected bodies of %d bytes grew the database by %d bytes", n, len(body), grown)
	if limit := int64(n * 64 << 10); grown > limit {
		t.Errorf("%d rejected %d-byte bodies grew the database by %d bytes, more than %d", n, len(body), grown, limit)
	}

	resp, err := http.Get(base + "/api/v1/requests/" + ids[0])
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Status     string `json:"status"`
		Reason     string `json:"reason"`
		Body       string `json:"body"`
		BodySize   int64  `json:"body_size"`
		BodySHA256 string `json:"body_sha256"`
		Headers    map[string][]string
	}
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got.Status != "rejected" || !strings.Contains(got.Reason, "verification failed") || got.Body != string(body[:4096]) ||
		got.BodySize != int64(len(body)) || got.BodySHA256 != hex.EncodeToString(sum[:]) || got.Headers["Content-Type"] == nil {
		t.Errorf("GET /api/v1/requests/%s: status %q reason %q, body of %d bytes, body_size %d, body_sha256 %q, headers %v",
			ids[0], got.Status, got.Reason, len(got.Body), got.BodySize, got.BodySHA256, got.Headers)
	}

	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `mailroom_ingest_requests_total{outcome="unauthorized",project="default",source="custom"} 16`; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %q", want)
	}
}
