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
	waits        int
	probeRate    float64
	backlog      int
	instances    int
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
the ceiling of this machine. --bare runs only that handler.

--waits N opens N waits (tasks through the admin API) on the source that
no webhook matches, plus probe waits that each match one webhook sent
during the load (--probe-rate per second), and reports webhook → task
completion for the probes.

--backlog N builds a backlog of N pending deliveries: ingest alone on the
empty database for --duration, then ingest with the destinations paused
until N deliveries are pending, ingest alone again for --duration (the
slowdown the backlog causes), then resume and ingest for --duration while
it drains; it reports the drain rate, the claims' time and the database
size.`,
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
	fl.IntVar(&f.waits, "waits", 0, "open this many waits that never match while loading, and measure webhook → task completion with probes (embedded only)")
	fl.Float64Var(&f.probeRate, "probe-rate", 20, "probe webhooks per second with --waits")
	fl.IntVar(&f.instances, "instances", 1, "embedded instances sharing the --db PostgreSQL database; the connections are spread over them")
	fl.IntVar(&f.backlog, "backlog", 0, "build this many pending deliveries (destinations paused), then resume and measure the drain (embedded only)")
	return cmd
}

// benchReport is the output of `mailroom bench`.
type benchReport struct {
	Target       string            `json:"target"`
	Instances    int               `json:"instances"`
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
	Waits        *waitsReport      `json:"waits,omitempty"`
	Backlog      *backlogReport    `json:"backlog,omitempty"`
}

// deliveryReport is what the sink saw.
type deliveryReport struct {
	// DuringLoad counts deliveries received while requests were sent.
	DuringLoad int `json:"during_load"`
	// PerSecond is DuringLoad over the load's duration (or, with paused
	// destinations, Expected over DrainTime).
	PerSecond float64 `json:"per_second"`
	// Expected is acknowledged requests (probes of --waits included) ×
	// destinations.
	Expected int `json:"expected"`
	// Received is the total at the end.
	Received int `json:"received"`
	// DrainTime is from the end of the load (or the resume) until
	// Received reached Expected; zero if it never did.
	DrainTime time.Duration     `json:"drain_time"`
	Lag       bench.Percentiles `json:"lag"`
	// Claims is the time of each claim of due deliveries by the embedded
	// dispatchers, from the start of the load to the end of the drain;
	// Claims.N over Received is claims per delivery.
	Claims bench.Percentiles `json:"claims"`
}

// processReport is this process's CPU and memory over the measured load.
type processReport struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"`
	// CPUPerRequest is CPU microseconds per acknowledged request: steadier
	// than throughput on a shared machine.
	CPUPerRequest float64 `json:"cpu_us_per_request"`
	PeakRSSMB     float64 `json:"peak_rss_mb"`
	// PostgresCPUSeconds is the CPU time of every postgres process on the
	// machine over the load (with --db postgres://... on this machine;
	// other clients of the server included), and PostgresCPUPerRequest
	// the same per acknowledged request, in microseconds.
	PostgresCPUSeconds    float64 `json:"postgres_cpu_seconds,omitempty"`
	PostgresCPUPerRequest float64 `json:"postgres_cpu_us_per_request,omitempty"`
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
	if f.waits < 0 || f.backlog < 0 || (f.waits > 0 && f.probeRate <= 0) {
		return usageErrorf("--waits, --backlog and --probe-rate must be positive")
	}
	if f.backlog > 0 && (f.ceiling || f.bare || f.paused || f.waits > 0) {
		return usageErrorf("--backlog excludes --ceiling, --bare, --paused and --waits")
	}
	if f.instances > 1 && (f.server != "" || !strings.HasPrefix(f.db, "postgres")) {
		return usageErrorf("--instances needs --embedded with --db postgres://...: instances must not share a SQLite file")
	}
	if (f.waits > 0 || f.backlog > 0) && f.server != "" {
		return usageErrorf("--waits and --backlog work with --embedded only")
	}
	prov, err := bench.NewProvider(f.provider, f.secret)
	if err != nil {
		return usageErrorf("--provider: %v", err)
	}
	opts := bench.Options{
		Source: f.source, Provider: prov, Connections: f.connections, Duration: f.duration,
		Rate: f.rate, Size: size,
	}
	rep := &benchReport{Instances: max(1, f.instances), Provider: f.provider, Connections: opts.Connections, Rate: f.rate, Size: size,
		Destinations: f.destinations, Paused: f.paused}
	logf := func(format string, args ...any) {
		if !f.jsonOut {
			fmt.Fprintf(out, format, args...)
		}
	}

	if f.backlog > 0 {
		if f.drainTimeout == 2*time.Minute {
			f.drainTimeout = time.Hour
		}
		return runBacklog(ctx, out, f, prov, opts, rep, logf)
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

	sink, sinkURL, stopSink, err := startSink(f.sink)
	if err != nil {
		return err
	}
	defer stopSink()

	var st store.Store
	claims := &bench.Timer{}
	target := f.server
	if target == "" {
		e, err := startEmbedded(ctx, f, prov, sinkURL, func(st store.Store) store.Store { return &claimTimer{Store: st, t: claims} })
		if err != nil {
			return err
		}
		defer e.stop()
		target, st = "http://"+e.addr, e.st
		rep.Target = "embedded " + describeDB(f.db)
		if len(e.addrs) > 1 {
			rep.Target += fmt.Sprintf(", %d instances", len(e.addrs))
			for _, a := range e.addrs {
				opts.Targets = append(opts.Targets, "http://"+a)
			}
		}
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

	var ws *waitSet
	if f.waits > 0 {
		probes := max(1, int(f.probeRate*f.duration.Seconds()))
		runID := strconv.FormatInt(time.Now().UnixNano(), 36)
		if ws, err = openWaits(ctx, target, f.source, runID, f.waits, probes, f.duration+f.drainTimeout+time.Minute); err != nil {
			return err
		}
		rep.Waits = ws.rep
		logf("%d waits open (%d of them probes), created at %.0f/s\n", ws.rep.Open, probes, ws.rep.CreatePerSecond)
	}

	logf("mailroom (%s), provider %s, %d connections, %s, %d B bodies, %d destinations%s:\n",
		rep.Target, f.provider, opts.Connections, f.duration, size, f.destinations, map[bool]string{true: " (paused)"}[f.paused])
	claims.Take()
	stopProfile, err := startCPUProfile(f.cpuProfile)
	if err != nil {
		return err
	}
	pg := strings.HasPrefix(f.db, "postgres") && f.server == ""
	var pg0 time.Duration
	if pg {
		pg0 = bench.CommandCPU("postgres")
	}
	u0 := bench.ProcessUsage()
	type probed struct {
		sent []time.Time
		err  error
	}
	probec := make(chan probed, 1)
	if ws != nil {
		go func() {
			sent, err := bench.Probe(ctx, &opts, ws.probeIDs, time.Duration(float64(time.Second)/f.probeRate))
			probec <- probed{sent, err}
		}()
	}
	res, err := bench.Load(ctx, &opts)
	var pr probed
	if ws != nil {
		pr = <-probec
	}
	u1 := bench.ProcessUsage()
	var pg1 time.Duration
	if pg {
		pg1 = bench.CommandCPU("postgres")
	}
	stopProfile()
	if err != nil {
		return err
	}
	if pr.err != nil {
		return pr.err
	}
	if ws != nil {
		if err := ws.measure(ctx, st, pr.sent, 30*time.Second); err != nil {
			return err
		}
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
		if pg1 > pg0 {
			rep.Process.PostgresCPUSeconds = (pg1 - pg0).Seconds()
			if res.OK > 0 {
				rep.Process.PostgresCPUPerRequest = 1e6 * rep.Process.PostgresCPUSeconds / float64(res.OK)
			}
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
		acked := res.OK
		if ws != nil {
			acked += ws.rep.Probes
		}
		dr := &deliveryReport{DuringLoad: during, Expected: acked * f.destinations}
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
		dr.Received, dr.Lag, dr.Claims = ss.Received, ss.Lag, claims.Take()
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

// startSink serves a [bench.Sink] on addr (a free loopback port if
// empty) and returns it, its URL and a function that stops it.
func startSink(addr string) (*bench.Sink, string, func(), error) {
	sink := &bench.Sink{}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", nil, fmt.Errorf("sink: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: sink}
	go srv.Serve(ln)
	return sink, "http://" + ln.Addr().String(), func() { srv.Close() }, nil
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

// embedded is a mailroom started in this process by the bench.
type embedded struct {
	addr  string      // the first instance's
	addrs []string    // every instance's (--instances)
	st    store.Store // the first instance's
	dsn   string      // its storage
	stop  func()
}

// startEmbedded writes a config with one source and the destinations,
// starts `mailroom serve` on it in this process (its store wrapped by
// wrap, if non-nil), and returns it.
func startEmbedded(ctx context.Context, f benchFlags, prov *bench.Provider, sinkURL string, wrap func(store.Store) store.Store) (*embedded, error) {
	dir, err := os.MkdirTemp("", "mailroom-bench-")
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
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
		return nil, fmt.Errorf("embedded: encode config: %w", err)
	}
	path := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	type started struct {
		addr string
		st   store.Store
	}
	n := max(1, f.instances)
	ready := make(chan started, n)
	sctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, n)
	stop := func(running int) {
		cancel()
		for range running {
			<-errc
		}
		os.RemoveAll(dir)
	}
	e := &embedded{dsn: db}
	for i := range n {
		go func() {
			errc <- runServe(sctx, serveFlags{configPath: path, wrapStore: wrap, started: func(addr string, st store.Store) {
				ready <- started{addr, st}
			}})
		}()
		// One at a time: each applies the config at start.
		select {
		case s := <-ready:
			e.addrs = append(e.addrs, s.addr)
			if e.st == nil {
				e.addr, e.st = s.addr, s.st
			}
		case err := <-errc:
			stop(i)
			if err == nil {
				err = errors.New("stopped before listening")
			}
			return nil, fmt.Errorf("embedded mailroom: %w", err)
		}
	}
	e.stop = func() { stop(n) }
	return e, nil
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
		per := "request"
		if rep.Backlog != nil {
			per = "request or delivery"
		}
		fmt.Fprintf(out, "  process       %.1f CPU s (%.0f%%, %.0f µs per %s), peak RSS %.0f MB (generator and sink included)\n",
			p.CPUSeconds, p.CPUPercent, p.CPUPerRequest, per, p.PeakRSSMB)
		if p.PostgresCPUSeconds > 0 {
			fmt.Fprintf(out, "  postgres      %.1f CPU s (%.0f µs per request; every postgres process on this machine)\n",
				p.PostgresCPUSeconds, p.PostgresCPUPerRequest)
		}
	}
	if d := rep.Delivery; d != nil {
		fmt.Fprintf(out, "delivery: %d of %d received", d.Received, d.Expected)
		if d.DrainTime > 0 {
			fmt.Fprintf(out, ", drained %.2fs after the %s", d.DrainTime.Seconds(), map[bool]string{true: "resume", false: "load ended"}[rep.Paused])
		}
		fmt.Fprintf(out, "\n  delivered/s   %.0f %s\n", d.PerSecond, map[bool]string{true: "(backlog drain after resume)", false: "(during the load)"}[rep.Paused])
		fmt.Fprintf(out, "  lag           %s (send to sink)\n", d.Lag)
		if d.Claims.N > 0 && d.Received > 0 {
			fmt.Fprintf(out, "  claims        %d (%.2f per delivery), %s\n", d.Claims.N, float64(d.Claims.N)/float64(d.Received), d.Claims)
		}
	}
	if w := rep.Waits; w != nil {
		fmt.Fprintf(out, "waits: %d open; %d of %d probes completed\n  completion    %s (webhook sent to task completed)\n",
			w.Open, w.Completed, w.Probes, w.Completion)
	}
	if b := rep.Backlog; b != nil {
		fmt.Fprintf(out, "backlog: %d deliveries pending, database %s (%s after the drain)\n", b.Pending, mb(b.DatabaseBytes), mb(b.DatabaseBytesAfter))
		if b.Build != nil {
			fmt.Fprintf(out, "  built at      %.0f req/s\n", b.Build.PerSecond)
		}
		fmt.Fprintf(out, "  ingest alone  %.0f req/s on the empty database, %.0f with the backlog pending (slowdown %.1f%%)\n",
			b.EmptyIngest.PerSecond, b.FullIngest.PerSecond, 100*b.Slowdown)
		fmt.Fprintf(out, "  draining      %.0f req/s ingested and %d delivered in the first %.1fs after the resume\n",
			b.DrainingIngest.PerSecond, b.DeliveredDuring, b.DrainingIngest.Elapsed.Seconds())
		if b.DrainUnfinished {
			fmt.Fprintf(out, "  drain         %.0f deliveries/s (not finished: %d of %d delivered in the %.1fs after the resume that --drain-timeout allowed)\n",
				b.DrainPerSecond, rep.Delivery.Received, rep.Delivery.Expected, b.DrainTime.Seconds())
		} else {
			fmt.Fprintf(out, "  drain         %.0f deliveries/s (%.1fs from the resume to the last)\n", b.DrainPerSecond, b.DrainTime.Seconds())
		}
		fmt.Fprintf(out, "  claim time    %s (%d claims)\n", b.Claim, b.Claim.N)
	}
	return nil
}
