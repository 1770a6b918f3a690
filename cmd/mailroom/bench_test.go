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

// TestBenchWaits runs a short embedded bench with open waits: every probe
// webhook completes its task, and the waits that never match stay open.
func TestBenchWaits(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := runBench(context.Background(), &out, benchFlags{
		embedded: true, duration: 500 * time.Millisecond, connections: 4, size: "1KB", provider: "hmac", source: "bench",
		destinations: 1, concurrency: 8, drainTimeout: 30 * time.Second, jsonOut: true, waits: 50, probeRate: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out.String())
	}
	w := rep.Waits
	if w == nil || w.Open != 60 || w.Probes != 10 || w.Completed != w.Probes || w.Completion.N != w.Probes || w.Completion.P50 <= 0 {
		t.Fatalf("waits %+v, want 60 open and all 10 probes completed", w)
	}
	if d := rep.Delivery; d == nil || d.Received < d.Expected || d.Expected != rep.Ingest.OK+w.Probes {
		t.Fatalf("delivery %+v, want the %d requests and %d probes delivered", d, rep.Ingest.OK, w.Probes)
	}
}

// TestBenchBacklog runs the backlog scenario small: the backlog is built,
// then drained whole, with its claims timed.
func TestBenchBacklog(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := runBench(context.Background(), &out, benchFlags{
		embedded: true, duration: 200 * time.Millisecond, connections: 4, size: "1KB", provider: "hmac", source: "bench",
		concurrency: 8, drainTimeout: time.Minute, jsonOut: true, backlog: 1500,
	})
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out.String())
	}
	b := rep.Backlog
	if b == nil || b.Build == nil || b.Pending < 1500 || b.EmptyIngest.OK == 0 || b.FullIngest.OK == 0 {
		t.Fatalf("backlog %+v, want at least 1500 pending after the three loads", b)
	}
	total := b.EmptyIngest.OK + b.Build.OK + b.FullIngest.OK + b.DrainingIngest.OK
	if d := rep.Delivery; d == nil || d.Expected != total || d.Received < total || b.DrainPerSecond <= 0 {
		t.Fatalf("delivery %+v, drain %.0f/s: want all %d delivered", d, b.DrainPerSecond, total)
	}
	if b.Claim.N == 0 || b.DatabaseBytes == 0 {
		t.Fatalf("claims %+v, database %d bytes: want them measured", b.Claim, b.DatabaseBytes)
	}
}

// TestBenchBacklogDrainTimeout: when --drain-timeout ends the wait before
// the backlog has drained, the report gives the rate so far and says the
// drain did not finish (it said 0 deliveries/s).
func TestBenchBacklogDrainTimeout(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := runBench(context.Background(), &out, benchFlags{
		embedded: true, duration: 200 * time.Millisecond, connections: 4, size: "1KB", provider: "hmac", source: "bench",
		concurrency: 1, drainTimeout: time.Nanosecond, jsonOut: true, backlog: 3000,
	})
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out.String())
	}
	b, d := rep.Backlog, rep.Delivery
	if b == nil || d == nil {
		t.Fatalf("report without backlog or delivery:\n%s", out.String())
	}
	if d.Received >= d.Expected {
		t.Fatalf("all %d delivered within the 200 ms draining load at max_concurrency 1: nothing left for the timeout to cut", d.Expected)
	}
	if !b.DrainUnfinished || b.DrainPerSecond <= 0 || b.DrainTime <= 0 {
		t.Fatalf("backlog %+v: want the drain marked unfinished with its rate so far (%d of %d delivered)", b, d.Received, d.Expected)
	}
}
