package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// BenchmarkHandler measures the ingest request path as `mailroom bench`
// loads it (hmac provider, dedup key body.id, the generic event type, a
// 1 KiB JSON body, the generator's headers), from the router to the
// answer, without the network: the request is handed to the ServeMux as
// net/http's server would hand it. Building that request is part of
// each iteration (about 10 allocations).
//
// store=sqlite is the whole path with a real SQLite store in a temporary
// directory, 50 concurrent callers (the store group-commits them),
// deliveries=0 or 1; it reports CPU µs per request (the process's user
// and system time, the writer's included). store=none answers every
// write at once, so what is left is the handler's own CPU and
// allocations.
func BenchmarkHandler(b *testing.B) {
	b.Run("store=none", func(b *testing.B) {
		benchHandler(b, discardStore{}, sqlitetest.Open(b, nil), 0)
	})
	for _, dests := range []int{0, 1} {
		b.Run(fmt.Sprintf("store=sqlite/deliveries=%d", dests), func(b *testing.B) {
			s := sqlitetest.Open(b, nil)
			benchHandler(b, s, s, dests)
		})
	}
}

const benchSecret = "mailroom-bench-secret"

// benchHandler loads ingest requests into a handler writing to ing, with
// the source and dests destinations configured in cat.
func benchHandler(b *testing.B, ing store.Ingester, cat *sqlite.Store, dests int) {
	ctx := context.Background()
	if err := cat.SourceUpsert(ctx, &store.Source{Name: "bench", Verify: verify.Config{Type: verify.TypeHMAC, Secret: benchSecret,
		Header: "X-Signature", Algorithm: "sha256", Encoding: "hex"},
		Dedup: store.DedupConfig{Key: "body.id"}}); err != nil {
		b.Fatal(err)
	}
	for i := range dests {
		d := fmt.Sprintf("d%d", i)
		if err := cat.DestinationUpsert(ctx, &store.Destination{Name: d, URL: "http://127.0.0.1:1/" + d}); err != nil {
			b.Fatal(err)
		}
		if err := cat.ConnectionUpsert(ctx, &store.Connection{Source: "bench", Destination: d}); err != nil {
			b.Fatal(err)
		}
	}
	compiler, err := route.NewCompiler()
	if err != nil {
		b.Fatal(err)
	}
	c := catalog.New(cat, compiler, nil)
	if err := c.Load(ctx); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	ingest.New(ing, c, nil).Register(mux)

	var seq atomic.Int64
	var failed atomic.Value
	b.SetParallelism(25) // 25 × GOMAXPROCS(2) = 50 callers
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		var body []byte
		w := &discardWriter{h: http.Header{}}
		u := &url.URL{Path: "/e/bench"}
		for pb.Next() {
			id := "evt_" + strconv.FormatInt(seq.Add(1), 10)
			body = benchBody(body[:0], id)
			r := &http.Request{Method: http.MethodPost, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{
					"User-Agent":     {"mailroom-bench"},
					"Content-Type":   {"application/json"},
					"Content-Length": {strconv.Itoa(len(body))},
					"X-Signature":    {hmacHex(benchSecret, body)},
				},
				Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
				Host: "127.0.0.1:8080", RemoteAddr: "127.0.0.1:40000", RequestURI: "/e/bench"}
			r = r.WithContext(ctx)
			clear(w.h)
			w.status = 0
			mux.ServeHTTP(w, r)
			if w.status != http.StatusOK {
				failed.CompareAndSwap(nil, fmt.Sprintf("status %d", w.status))
			}
		}
	})
	if f := failed.Load(); f != nil {
		b.Fatal(f)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
}

// benchBody is the generator's body (internal/bench): about 1 KiB of JSON
// with an id, a type and a padding string.
func benchBody(b []byte, id string) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","type":"bench.event","sent":`...)
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, `,"data":{"object":{"amount":4200,"currency":"eur"}},"pad":"`...)
	for len(b) < 1024-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// discardWriter is an http.ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}

// discardStore acknowledges every write at once and keeps nothing.
type discardStore struct{}

func (discardStore) RequestIngest(_ context.Context, p *store.RequestIngestParams) (*store.RequestIngestResult, error) {
	return &store.RequestIngestResult{RequestID: "req_01KBENCH0000000000000000000", EventID: "evt_01KBENCH0000000000000000000"}, nil
}

func (discardStore) RequestInsert(context.Context, *store.Request) (string, error) {
	return "req_01KBENCH0000000000000000000", nil
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
