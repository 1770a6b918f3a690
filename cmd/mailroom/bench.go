package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/mailroomhq/mailroom/internal/bench"
	"github.com/mailroomhq/mailroom/internal/store"
)

// benchFlags are the options of `mailroom bench`.
type benchFlags struct {
	server       string
	embedded     bool
	bare         bool
	ceiling      bool
	db           string
	duration     time.Duration
	connections  int
	rate         float64
	size         string
	provider     string
	source       string
	secret       string
	destinations int
	paused       bool
	concurrency  int
	sink         string
	drainTimeout time.Duration
	jsonOut      bool
	cpuProfile   string
	memProfile   string
}

func newBenchCommand() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test ingest and delivery with signed webhooks",
		Long: `Send correctly signed webhooks as fast as they are answered (closed loop,
one request in flight per connection) or at --rate per second (open loop:
latency counts from each request's intended send time), and report
acknowledged requests/s, ingest latency, errors by status and, with
destinations, delivered/s, delivery lag and time to drain the backlog.

--embedded (the default) starts a mailroom in this process on a fresh SQLite
file (or --db) with one source and --destinations destinations, all
pointing at a built-in sink that answers 204. CPU seconds and peak RSS are
this process's, load generator and sink included. --server URL loads a
running mailroom instead: give it a source that verifies --provider with
--secret, and point its destinations at --sink.

--ceiling first runs the same load against a bare net/http handler that
reads the body and answers 202, and reports mailroom as a fraction of it:
the ceiling of this machine. --bare runs only that handler.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "base URL of a running mailroom, e.g. http://127.0.0.1:8080")
	fl.BoolVar(&f.embedded, "embedded", false, "start a mailroom in this process (the default without --server)")
	fl.BoolVar(&f.bare, "bare", false, "load only a bare net/http handler that answers 202 (the machine's ceiling)")
	fl.BoolVar(&f.ceiling, "ceiling", false, "measure the bare handler first and report the ratio to it")
	fl.StringVar(&f.db, "db", "", "storage DSN of the embedded mailroom (default: a SQLite file in a temporary directory)")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to send")
	fl.IntVar(&f.connections, "connections", bench.DefaultConnections, "keep-alive connections (one request in flight each)")
	fl.Float64Var(&f.rate, "rate", 0, "requests per second in total (open loop); 0 sends as fast as answered")
	fl.StringVar(&f.size, "size", "1KB", "body size (B, KB, MB; powers of 1024)")
	fl.StringVar(&f.provider, "provider", "hmac", "signature scheme: "+strings.Join(bench.Providers(), ", "))
	fl.StringVar(&f.source, "source", "bench", "source name (the path is /e/<source>)")
	fl.StringVar(&f.secret, "secret", bench.DefaultSecret, "signing secret")
	fl.IntVar(&f.destinations, "destinations", 0, "destinations each event is delivered to (0: ingest only)")
	fl.BoolVar(&f.paused, "paused", false, "pause the destinations while loading (ingest alone), then resume them and time the drain")
	fl.IntVar(&f.concurrency, "max-concurrency", 64, "max_concurrency of each embedded destination")
	fl.StringVar(&f.sink, "sink", "", "listen address of the sink (default: a free loopback port)")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 2*time.Minute, "how long to wait for the backlog to drain after the load")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured load to this file")
	fl.StringVar(&f.memProfile, "memprofile", "", "write an allocation profile after the load to this file")
	return cmd
}

// benchReport is the output of `mailroom bench`.
type benchReport struct {
	Target       string            `json:"target"`
	Provider     string            `json:"provider"`
	Connections  int               `json:"connections"`
	Rate         float64           `json:"rate,omitempty"`
	Size         int               `json:"size"`
	Destinations int               `json:"destinations"`
	Paused       bool              `json:"paused,omitempty"`
	Ceiling      *bench.LoadResult `json:"ceiling,omitempty"`
	Ingest       *bench.LoadResult `json:"ingest"`
	Ratio        float64           `json:"ratio_to_ceiling,omitempty"`
	Delivery     *deliveryReport   `json:"delivery,omitempty"`
	Process      *processReport    `json:"process,omitempty"`
}

// deliveryReport is what the sink saw.
type deliveryReport struct {
	// DuringLoad counts deliveries received while requests were sent.
	DuringLoad int `json:"during_load"`
	// PerSecond is DuringLoad over the load's duration (or, with paused
	// destinations, Expected over DrainTime).
	PerSecond float64 `json:"per_second"`
	// Expected is acknowledged requests × destinations.
	Expected int `json:"expected"`
	// Received is the total at the end.
	Received int `json:"received"`
	// DrainTime is from the end of the load (or the resume) until
	// Received reached Expected; zero if it never did.
	DrainTime time.Duration     `json:"drain_time"`
	Lag       bench.Percentiles `json:"lag"`
}

// processReport is this process's CPU and memory over the measured load.
type processReport struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"`
	// CPUPerRequest is CPU microseconds per acknowledged request: steadier
	// than throughput on a shared machine.
	CPUPerRequest float64 `json:"cpu_us_per_request"`
	PeakRSSMB     float64 `json:"peak_rss_mb"`
}

func runBench(ctx context.Context, out io.Writer, f benchFlags) error {
	size, err := parseSize(f.size)
	if err != nil {
		return usageErrorf("--size: %v", err)
	}
	if f.server != "" && (f.embedded || f.bare) {
		return usageErrorf("--server excludes --embedded and --bare")
	}
	if f.paused && f.destinations == 0 {
		return usageErrorf("--paused needs --destinations")
	}
	prov, err := bench.NewProvider(f.provider, f.secret)
	if err != nil {
		return usageErrorf("--provider: %v", err)
	}
	opts := bench.Options{
		Source: f.source, Provider: prov, Connections: f.connections, Duration: f.duration,
		Rate: f.rate, Size: size,
	}
	rep := &benchReport{Provider: f.provider, Connections: opts.Connections, Rate: f.rate, Size: size,
		Destinations: f.destinations, Paused: f.paused}
	logf := func(format string, args ...any) {
		if !f.jsonOut {
			fmt.Fprintf(out, format, args...)
		}
	}

	if f.ceiling || f.bare {
		logf("bare net/http handler (reads the body, answers 202), %d connections, %s:\n", opts.Connections, f.duration)
		stopProfile := func() {}
		if f.bare {
			if stopProfile, err = startCPUProfile(f.cpuProfile); err != nil {
				return err
			}
		}
		res, err := loadBare(ctx, opts)
		stopProfile()
		if err != nil {
			return err
		}
		rep.Ceiling = res
		logf("%s", res.Summary())
		if f.bare {
			rep.Target, rep.Ingest, rep.Ceiling = "bare", res, nil
			return printReport(out, rep, f.jsonOut)
		}
	}

	sink := &bench.Sink{}
	sinkAddr := f.sink
	if sinkAddr == "" {
		sinkAddr = "127.0.0.1:0"
	}
	sinkLn, err := net.Listen("tcp", sinkAddr)
	if err != nil {
		return fmt.Errorf("sink: listen on %s: %w", sinkAddr, err)
	}
	sinkSrv := &http.Server{Handler: sink}
	go sinkSrv.Serve(sinkLn)
	defer sinkSrv.Close()
	sinkURL := "http://" + sinkLn.Addr().String()

	var st store.Store
	target := f.server
	if target == "" {
		addr, s, stop, err := startEmbedded(ctx, f, prov, sinkURL)
		if err != nil {
			return err
		}
		defer stop()
		target, st = "http://"+addr, s
		rep.Target = "embedded " + describeDB(f.db)
	} else {
		rep.Target = target
	}
	opts.Target = target
	dests := make([]string, f.destinations)
	for i := range dests {
		dests[i] = fmt.Sprintf("sink%d", i+1)
	}
	if f.paused {
		if st == nil {
			return usageErrorf("--paused works with --embedded only (pause the destinations of a server with `mailroom destinations pause`)")
		}
		for _, d := range dests {
			if err := st.DestinationSetPaused(ctx, d, true, "mailroom bench"); err != nil {
				return fmt.Errorf("pause %s: %w", d, err)
			}
		}
	}

	logf("mailroom (%s), provider %s, %d connections, %s, %d B bodies, %d destinations%s:\n",
		rep.Target, f.provider, opts.Connections, f.duration, size, f.destinations, map[bool]string{true: " (paused)"}[f.paused])
	stopProfile, err := startCPUProfile(f.cpuProfile)
	if err != nil {
		return err
	}
	u0 := bench.ProcessUsage()
	res, err := bench.Load(ctx, &opts)
	u1 := bench.ProcessUsage()
	stopProfile()
	if err != nil {
		return err
	}
	during := sink.Count()
	rep.Ingest = res
	if st != nil {
		cpu := (u1.CPU - u0.CPU).Seconds()
		rep.Process = &processReport{CPUSeconds: cpu, CPUPercent: 100 * cpu / res.Elapsed.Seconds(),
			PeakRSSMB: float64(u1.PeakRSS) / (1 << 20)}
		if res.OK > 0 {
			rep.Process.CPUPerRequest = 1e6 * cpu / float64(res.OK)
		}
	}
	if rep.Ceiling != nil && rep.Ceiling.PerSecond > 0 {
		rep.Ratio = res.PerSecond / rep.Ceiling.PerSecond
	}
	logf("%s", res.Summary())
	if f.memProfile != "" {
		if err := writeHeapProfile(f.memProfile); err != nil {
			return err
		}
	}

	if f.destinations > 0 {
		dr := &deliveryReport{DuringLoad: during, Expected: res.OK * f.destinations}
		from := time.Now()
		if f.paused {
			for _, d := range dests {
				if err := st.DestinationSetPaused(ctx, d, false, ""); err != nil {
					return fmt.Errorf("resume %s: %w", d, err)
				}
			}
			from = time.Now()
		} else {
			dr.PerSecond = float64(during) / res.Elapsed.Seconds()
		}
		logf("  waiting for %d deliveries to drain...\n", dr.Expected-sink.Count())
		deadline := time.Now().Add(f.drainTimeout)
		for sink.Count() < dr.Expected && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		ss := sink.Stats()
		dr.Received, dr.Lag = ss.Received, ss.Lag
		if ss.Received >= dr.Expected {
			dr.DrainTime = max(0, ss.Last.Sub(from))
			if f.paused && dr.DrainTime > 0 {
				dr.PerSecond = float64(dr.Expected) / dr.DrainTime.Seconds()
			}
		}
		rep.Delivery = dr
	}
	if f.memProfile != "" || f.cpuProfile != "" {
		logf("  profiles: %s %s\n", f.cpuProfile, f.memProfile)
	}
	return printReport(out, rep, f.jsonOut)
}

// loadBare runs opts against a bare handler on a free loopback port.
func loadBare(ctx context.Context, opts bench.Options) (*bench.LoadResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bare handler: listen: %w", err)
	}
	srv := &http.Server{Handler: bench.BareHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	opts.Target = "http://" + ln.Addr().String()
	res, err := bench.Load(ctx, &opts)
	if err != nil {
		return nil, fmt.Errorf("bare handler: %w", err)
	}
	return res, nil
}

// startEmbedded writes a config with one source and the destinations,
// starts `mailroom serve` on it in this process, and returns its address
// and store, and a function that stops it.
func startEmbedded(ctx context.Context, f benchFlags, prov *bench.Provider, sinkURL string) (string, store.Store, func(), error) {
	dir, err := os.MkdirTemp("", "mailroom-bench-")
	if err != nil {
		return "", nil, nil, fmt.Errorf("embedded: %w", err)
	}
	db := f.db
	if db == "" {
		db = "sqlite://" + filepath.Join(dir, "bench.db")
	}
	cfg := map[string]any{
		"listen":  "127.0.0.1:0",
		"storage": db,
		"log":     map[string]any{"level": "warn"},
		"sources": []any{map[string]any{"name": f.source, "verify": prov.Verify, "dedup": store.DedupConfig{Key: prov.DedupKey}}},
	}
	var dests, conns []any
	for i := range f.destinations {
		name := fmt.Sprintf("sink%d", i+1)
		dests = append(dests, map[string]any{"name": name, "url": sinkURL + "/" + name, "max_concurrency": f.concurrency})
		conns = append(conns, map[string]any{"source": f.source, "destination": name})
	}
	if len(dests) > 0 {
		cfg["destinations"], cfg["connections"] = dests, conns
	}
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		return "", nil, nil, fmt.Errorf("embedded: encode config: %w", err)
	}
	path := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return "", nil, nil, fmt.Errorf("embedded: %w", err)
	}
	type started struct {
		addr string
		st   store.Store
	}
	ready := make(chan started, 1)
	sctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- runServe(sctx, serveFlags{configPath: path, started: func(addr string, st store.Store) {
			ready <- started{addr, st}
		}})
	}()
	stop := func() {
		cancel()
		<-errc
		os.RemoveAll(dir)
	}
	select {
	case s := <-ready:
		return s.addr, s.st, stop, nil
	case err := <-errc:
		cancel()
		os.RemoveAll(dir)
		if err == nil {
			err = errors.New("stopped before listening")
		}
		return "", nil, nil, fmt.Errorf("embedded mailroom: %w", err)
	}
}

func describeDB(dsn string) string {
	if dsn == "" {
		return "SQLite in a temporary directory"
	}
	if strings.HasPrefix(dsn, "postgres") {
		return "PostgreSQL"
	}
	return dsn
}

func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	fh, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(fh); err != nil {
		fh.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		fh.Close()
	}, nil
}

func writeHeapProfile(path string) error {
	fh, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("alloc profile: %w", err)
	}
	defer fh.Close()
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(fh, 0); err != nil {
		return fmt.Errorf("alloc profile: %w", err)
	}
	return nil
}

// parseSize parses "1KB", "512", "4KiB", "1MB" (powers of 1024).
func parseSize(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size like 1KB", s)
	}
	if n*mult < 64 {
		return 0, fmt.Errorf("%q is too small (at least 64 bytes)", s)
	}
	return n * mult, nil
}

func printReport(out io.Writer, rep *benchReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if rep.Ratio > 0 {
		fmt.Fprintf(out, "  ratio to the bare handler: %.3f\n", rep.Ratio)
	}
	if p := rep.Process; p != nil {
		fmt.Fprintf(out, "  process       %.1f CPU s (%.0f%%, %.0f µs per request), peak RSS %.0f MB (generator and sink included)\n",
			p.CPUSeconds, p.CPUPercent, p.CPUPerRequest, p.PeakRSSMB)
	}
	if d := rep.Delivery; d != nil {
		fmt.Fprintf(out, "delivery: %d of %d received", d.Received, d.Expected)
		if d.DrainTime > 0 {
			fmt.Fprintf(out, ", drained %.2fs after the %s", d.DrainTime.Seconds(), map[bool]string{true: "resume", false: "load ended"}[rep.Paused])
		}
		fmt.Fprintf(out, "\n  delivered/s   %.0f %s\n", d.PerSecond, map[bool]string{true: "(backlog drain after resume)", false: "(during the load)"}[rep.Paused])
		fmt.Fprintf(out, "  lag           %s (send to sink)\n", d.Lag)
	}
	return nil
}
