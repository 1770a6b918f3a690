package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
	}{{"1KB", 1024}, {"512", 512}, {"4KiB", 4096}, {"1mb", 1 << 20}, {"100B", 100}}
	for _, tt := range tests {
		if got, err := parseSize(tt.in); err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "x", "-1KB", "10"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) succeeded", bad)
		}
	}
}

// TestBenchEmbedded runs a short embedded bench with the ceiling and one
// destination and checks that every acknowledged request was delivered.
func TestBenchEmbedded(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := runBench(context.Background(), &out, benchFlags{
		embedded: true, ceiling: true, duration: 300 * time.Millisecond, connections: 4, size: "1KB",
		provider: "stripe", source: "bench", destinations: 1, concurrency: 8, drainTimeout: 30 * time.Second, jsonOut: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out.String())
	}
	if rep.Ceiling == nil || rep.Ceiling.OK == 0 || rep.Ratio <= 0 {
		t.Errorf("no ceiling measured: %+v", rep.Ceiling)
	}
	if rep.Ingest.OK == 0 || rep.Ingest.OK != rep.Ingest.Sent {
		t.Fatalf("%d of %d requests acknowledged: %v %s", rep.Ingest.OK, rep.Ingest.Sent, rep.Ingest.Statuses, rep.Ingest.FirstError)
	}
	if d := rep.Delivery; d == nil || d.Received < d.Expected || d.Expected != rep.Ingest.OK {
		t.Fatalf("delivery %+v, want all %d delivered", d, rep.Ingest.OK)
	}
}
