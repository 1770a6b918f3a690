package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/store/storetest"
)

func benchStore(b *testing.B) *sqlite.Store {
	b.Helper()
	s, _ := benchStorePath(b)
	return s
}

// benchStorePath is benchStore that also returns the database file's path.
func benchStorePath(b *testing.B) (*sqlite.Store, string) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "mailroom.db")
	s, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, path
}

// written is how many bytes the process has passed to write calls so far
// (wchar of /proc/self/io: the WAL's frames and the checkpoints' pages), or
// -1 where that file does not exist.
func written(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	return -1
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchBody = []byte(`{"id":"evt","type":"bench.event","pad":"` + strings.Repeat("x", 980) + `"}`)

func ingestParams(key string, dests int) *store.RequestIngestParams {
	p := &store.RequestIngestParams{
		Request: &store.Request{
			Source: "bench", ReceivedAt: time.Now(), Method: "POST", Path: "",
			Headers: map[string][]string{"Content-Type": {"application/json"}, "X-Signature": {strings.Repeat("a", 64)}, "User-Agent": {"bench"}},
			Body:    benchBody,
		},
		Event: &store.Event{Type: "bench.event", DedupKey: key},
	}
	for i := range dests {
		d := fmt.Sprintf("d%d", i)
		p.Deliveries = append(p.Deliveries, &store.Delivery{Destination: d, ConnectionID: store.ConnectionID("bench", d)})
	}
	return p
}

// BenchmarkRequestIngest measures durable ingest (synchronous=FULL) of a
// 1 KiB request with 50 concurrent callers, so that the writer batches
// them into group commits as under load; deliveries=1 adds one delivery
// row per request. Besides req/s it reports the process's CPU time per
// request (callers included; steadier than req/s on a shared box), the
// bytes written per request (WAL frames and checkpoints, until Close) and
// the database file's size per request once the WAL is checkpointed on
// Close.
//
//	go test -run '^$' -bench 'RequestIngest|ClaimDue' ./internal/store/sqlite
func BenchmarkRequestIngest(b *testing.B) {
	for _, dests := range []int{0, 1} {
		b.Run(fmt.Sprintf("deliveries=%d", dests), func(b *testing.B) {
			s, path := benchStorePath(b)
			var seq atomic.Int64
			b.SetParallelism(25) // 25 × GOMAXPROCS(2) = 50 callers
			b.ReportAllocs()
			cpu0, w0 := cpuTime(b), written(b)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := s.RequestIngest(ctx, ingestParams(fmt.Sprint("k", seq.Add(1)), dests)); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			if w0 >= 0 {
				b.ReportMetric(float64(written(b)-w0)/float64(b.N), "written-B/req")
			}
			fi, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(fi.Size())/float64(b.N), "disk-B/req")
		})
	}
}

// BenchmarkDeliveryClaimDue measures one claim of up to 64 due deliveries
// from a backlog of 20,000 (the lease ends at once, so every claim finds
// a full batch).
func BenchmarkDeliveryClaimDue(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	const backlog = 20_000
	ingestConcurrently(b, s, backlog)
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		ds, err := s.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Destination: "d0", Now: now, LeaseUntil: now, Limit: 64})
		if err != nil || len(ds) != 64 {
			b.Fatalf("claimed %d: %v", len(ds), err)
		}
	}
}

// BenchmarkEventSearch: one search call over a full window (see
// [storetest.BenchmarkSearch]).
func BenchmarkEventSearch(b *testing.B) {
	storetest.BenchmarkSearch(b, benchStore(b))
}

// BenchmarkAttemptRecord measures recording b.N successful attempts of
// claimed deliveries: one AttemptRecord per attempt from 64 concurrent
// callers (the writer batches their operations into group commits), or
// AttemptRecordMany with 16 or 64 attempts per call. It reports the
// process's CPU time per attempt.
//
//	go test -run '^$' -bench AttemptRecord -benchtime 20000x ./internal/store/sqlite
func BenchmarkAttemptRecord(b *testing.B) {
	for _, per := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("per-call=%d", per), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			ingestConcurrently(b, s, b.N)
			now := time.Now()
			var ps []*store.AttemptRecordParams
			for len(ps) < b.N {
				ds, err := s.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Destination: "d0", Now: now, LeaseUntil: now.Add(time.Hour), Limit: 256})
				if err != nil || len(ds) == 0 {
					b.Fatalf("claimed %d: %v", len(ds), err)
				}
				for _, d := range ds {
					ps = append(ps, &store.AttemptRecordParams{Status: store.DeliverySucceeded, Now: now, Attempt: &store.Attempt{
						DeliveryID: d.ID, EventID: d.EventID, Destination: d.Destination, Number: d.Attempts, StartedAt: now,
						DurationMS: 1.5, StatusCode: 204, Success: true, ResponseHeaders: map[string][]string{"Date": {now.Format(time.RFC1123)}}}})
				}
			}
			b.ResetTimer()
			cpu0 := cpuTime(b)
			var next atomic.Int64
			callers := 64
			if per > 1 {
				callers = 1
			}
			errs := make(chan error, callers)
			for range callers {
				go func() {
					for {
						i := int(next.Add(int64(per))) - per
						if i >= len(ps) {
							errs <- nil
							return
						}
						for _, err := range s.AttemptRecordMany(ctx, ps[i:min(i+per, len(ps))]) {
							if err != nil {
								errs <- err
								return
							}
						}
					}
				}()
			}
			for range callers {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/attempt")
		})
	}
}

// ingestConcurrently ingests n requests with one delivery each from 50
// concurrent callers.
func ingestConcurrently(b *testing.B, s store.Store, n int) {
	b.Helper()
	ctx := context.Background()
	done := make(chan error, 50)
	for w := range 50 {
		go func() {
			for i := w; i < n; i += 50 {
				if _, err := s.RequestIngest(ctx, ingestParams(fmt.Sprint("k", i), 1)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 50 {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
