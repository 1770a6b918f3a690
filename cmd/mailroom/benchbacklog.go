package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/bench"
	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/store"
)

// backlogReport is what `mailroom bench --backlog N` measured.
type backlogReport struct {
	// EmptyIngest is ingest alone (destinations paused) on the empty
	// database, for --duration.
	EmptyIngest *bench.LoadResult `json:"empty_ingest"`
	// Build is the ingest that built the backlog, destinations paused.
	Build *bench.LoadResult `json:"build"`
	// FullIngest is ingest alone with the backlog pending, for --duration;
	// Slowdown is 1 - its rate / EmptyIngest's.
	FullIngest *bench.LoadResult `json:"full_ingest"`
	Slowdown   float64           `json:"slowdown"`
	// Pending is the deliveries pending when the destinations resumed.
	Pending int `json:"pending"`
	// DrainingIngest is ingest for --duration right after the resume,
	// while the backlog drains; DeliveredDuring is what the sink received
	// in that window.
	DrainingIngest  *bench.LoadResult `json:"draining_ingest"`
	DeliveredDuring int               `json:"delivered_during"`
	// DrainTime is from the resume to the last delivery; DrainPerSecond is
	// every delivery expected by then over it.
	DrainTime      time.Duration `json:"drain_time"`
	DrainPerSecond float64       `json:"drain_per_second"`
	// DrainUnfinished says --drain-timeout ended the wait first:
	// DrainTime is then that wait, and DrainPerSecond what was delivered
	// in it.
	DrainUnfinished bool `json:"drain_unfinished,omitempty"`
	// Claim is the time of each claim of due deliveries from the resume to
	// the end of the drain.
	Claim bench.Percentiles `json:"claim"`
	// DatabaseBytes is the SQLite file and its WAL with the backlog
	// pending, and after the drain; zero for PostgreSQL.
	DatabaseBytes      int64 `json:"database_bytes"`
	DatabaseBytesAfter int64 `json:"database_bytes_after"`
}

// claimTimer is a store whose dispatcher claims are timed.
type claimTimer struct {
	store.Store
	t *bench.Timer
}

// DeliveryClaimDue implements [store.Store], timing the call.
func (c *claimTimer) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.Delivery, error) {
	start := time.Now()
	ds, err := c.Store.DeliveryClaimDue(ctx, p)
	c.t.Observe(time.Since(start))
	return ds, err
}

// runBacklog runs the backlog scenario: ingest on the empty database,
// build a backlog of f.backlog pending deliveries through ingest with the
// destinations paused, ingest again with it pending, then resume and
// ingest while it drains, and time the drain and its claims.
func runBacklog(ctx context.Context, out io.Writer, f benchFlags, prov *bench.Provider, opts bench.Options, rep *benchReport, logf func(string, ...any)) error {
	if f.server != "" {
		return usageErrorf("--backlog works with --embedded only")
	}
	if f.destinations == 0 {
		f.destinations = 1
	}
	rep.Destinations, rep.Paused = f.destinations, true
	sink, sinkURL, stopSink, err := startSink(f.sink)
	if err != nil {
		return err
	}
	defer stopSink()
	claims := &bench.Timer{}
	e, err := startEmbedded(ctx, f, prov, sinkURL, func(st store.Store) store.Store { return &claimTimer{Store: st, t: claims} })
	if err != nil {
		return err
	}
	defer e.stop()
	rep.Target = "embedded " + describeDB(f.db)
	opts.Target = "http://" + e.addr
	if len(e.addrs) > 1 {
		rep.Target += fmt.Sprintf(", %d instances", len(e.addrs))
		for _, a := range e.addrs {
			opts.Targets = append(opts.Targets, "http://"+a)
		}
	}
	dests := make([]string, f.destinations)
	for i := range dests {
		dests[i] = fmt.Sprintf("sink%d", i+1)
	}
	setPaused := func(p bool) error {
		for _, d := range dests {
			if err := e.st.DestinationSetPaused(ctx, d, p, "mailroom bench --backlog"); err != nil {
				return fmt.Errorf("pause %s: %w", d, err)
			}
		}
		return nil
	}
	if err := setPaused(true); err != nil {
		return err
	}
	br := &backlogReport{}
	rep.Backlog = br
	acked := 0
	load := func(what string, o bench.Options) (*bench.LoadResult, error) {
		logf("%s:\n", what)
		res, err := bench.Load(ctx, &o)
		if err != nil {
			return nil, err
		}
		acked += res.OK
		logf("%s", res.Summary())
		return res, nil
	}

	if br.EmptyIngest, err = load(fmt.Sprintf("ingest alone on the empty database, %s", f.duration), opts); err != nil {
		return err
	}
	build := opts
	build.Duration = 24 * time.Hour
	build.Requests = max(0, (f.backlog-acked*f.destinations+f.destinations-1)/f.destinations)
	if build.Requests > 0 {
		if br.Build, err = load(fmt.Sprintf("building the backlog: %d more requests × %d destinations", build.Requests, f.destinations), build); err != nil {
			return err
		}
	}
	br.DatabaseBytes = databaseBytes(e.dsn)
	if br.FullIngest, err = load(fmt.Sprintf("ingest alone with the backlog pending, %s", f.duration), opts); err != nil {
		return err
	}
	if br.EmptyIngest.PerSecond > 0 {
		br.Slowdown = 1 - br.FullIngest.PerSecond/br.EmptyIngest.PerSecond
	}
	br.Pending = acked * f.destinations
	logf("  %d deliveries pending, database %s; resuming\n", br.Pending, mb(br.DatabaseBytes))

	claims.Take()
	if err := setPaused(false); err != nil {
		return err
	}
	resumed := time.Now()
	u0 := bench.ProcessUsage()
	if br.DrainingIngest, err = load(fmt.Sprintf("ingest while the backlog drains, %s", f.duration), opts); err != nil {
		return err
	}
	u1 := bench.ProcessUsage()
	br.DeliveredDuring = sink.Count()
	rep.Ingest = br.DrainingIngest
	cpu := (u1.CPU - u0.CPU).Seconds()
	rep.Process = &processReport{CPUSeconds: cpu, CPUPercent: 100 * cpu / br.DrainingIngest.Elapsed.Seconds(),
		PeakRSSMB: float64(u1.PeakRSS) / (1 << 20)}
	if n := br.DrainingIngest.OK + br.DeliveredDuring; n > 0 {
		rep.Process.CPUPerRequest = 1e6 * cpu / float64(n)
	}
	expected := acked * f.destinations
	logf("  waiting for %d deliveries to drain...\n", expected-sink.Count())
	deadline := time.Now().Add(f.drainTimeout)
	for sink.Count() < expected && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	br.Claim = claims.Take()
	ss := sink.Stats()
	rep.Delivery = &deliveryReport{DuringLoad: br.DeliveredDuring, Expected: expected, Received: ss.Received, Lag: ss.Lag}
	if ss.Received >= expected {
		br.DrainTime = ss.Last.Sub(resumed)
		br.DrainPerSecond = float64(expected) / br.DrainTime.Seconds()
		rep.Delivery.DrainTime, rep.Delivery.PerSecond = br.DrainTime, br.DrainPerSecond
	} else if waited := time.Since(resumed); ss.Received > 0 && waited > 0 {
		// --drain-timeout ended the wait: the rate so far, marked as such.
		br.DrainUnfinished = true
		br.DrainTime = waited
		br.DrainPerSecond = float64(ss.Received) / waited.Seconds()
		rep.Delivery.PerSecond = br.DrainPerSecond
	}
	br.DatabaseBytesAfter = databaseBytes(e.dsn)
	return printReport(out, rep, f.jsonOut)
}

// databaseBytes is the size of a SQLite database file and its WAL, or
// zero for other storage.
func databaseBytes(dsn string) int64 {
	driver, path, err := config.ParseStorage(dsn)
	if err != nil || driver != "sqlite" {
		return 0
	}
	path, _, _ = strings.Cut(path, "?")
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func mb(n int64) string {
	if n == 0 {
		return "size n/a"
	}
	return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
}
