// Package metrics owns mailroom's Prometheus metrics: the counters and
// histograms that ingest, delivery and the MCP server feed through hooks,
// the queue gauges read from the store at scrape time, and the Go runtime
// and process collectors, all in one registry that this package creates
// (never the default, global one).
//
// The package only observes: it is fed through [Metrics.ObserveIngest],
// [Metrics.ObserveAttempt] and [Metrics.ObserveTaskCompletion], whose
// signatures match the hooks of ingest.Options and deliver.Options, and it
// reads the store only when scraped. It does not decide who may scrape;
// cmd/mailroom does.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/buildinfo"
	"github.com/mailroomhq/mailroom/internal/store"
)

// DefaultScrapeTimeout bounds the store reads of one scrape when
// [Options.ScrapeTimeout] is zero.
const DefaultScrapeTimeout = 2 * time.Second

// Ingest outcomes counted by mailroom_ingest_requests_total, as reported
// by the ingest handler. Any other outcome is counted as given.
const (
	OutcomeAccepted = "accepted"
	// OutcomeDuplicate also increments mailroom_dedup_hits_total.
	OutcomeDuplicate     = "duplicate"
	OutcomeUnknownSource = "unknown_source"
)

// Options tunes [New]. The zero value is ready to use.
type Options struct {
	// ScrapeTimeout bounds the store reads made when /metrics is scraped.
	// If zero, [DefaultScrapeTimeout].
	ScrapeTimeout time.Duration
	// Logger receives store errors met while scraping. If nil, they are
	// discarded (the scrape still reports them as a collection error).
	Logger *slog.Logger
	// Now is the clock used for queue ages. If nil, time.Now.
	Now func() time.Time
	// NoRuntimeCollectors leaves out the Go runtime and process
	// collectors, for tests that compare whole outputs.
	NoRuntimeCollectors bool
}

// Metrics holds mailroom's metrics in its own registry. Build it with
// [New]; it is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	ingestRequests  *prometheus.CounterVec
	ingestDuration  prometheus.Histogram
	dedupHits       *prometheus.CounterVec
	dedupErrors     *prometheus.CounterVec
	deliveries      *prometheus.CounterVec
	attemptDuration *prometheus.HistogramVec
	taskCompletion  prometheus.Histogram
	configReloads   *prometheus.CounterVec
	configApplied   prometheus.Gauge
	circuit         *prometheus.CounterVec
}

// New returns Metrics registered in a fresh registry. When s is non-nil
// the queue and task gauges are read from it at every scrape; with a nil s
// they are left out.
func New(s store.Store, opts *Options) *Metrics {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ScrapeTimeout <= 0 {
		o.ScrapeTimeout = DefaultScrapeTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		log: o.Logger,
		ingestRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailroom_ingest_requests_total",
			Help: "Webhook requests received on /e/{source}, by source and outcome (accepted, duplicate, unauthorized, too_large, unknown_source, bad_request, storage_error, handshake, method_not_allowed, rate_limited). Unknown sources are counted with an empty source label. project is the source's project; source its full name (project/name outside the default project).",
		}, []string{"project", "source", "outcome"}),
		ingestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mailroom_ingest_duration_seconds",
			Help:    "Time from receiving a webhook request to answering it, including the durable write.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		dedupHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailroom_dedup_hits_total",
			Help: "Verified requests dropped as duplicates of an earlier event, by project and source.",
		}, []string{"project", "source"}),
		dedupErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailroom_dedup_errors_total",
			Help: "Accepted requests whose source has a dedup key that could not be computed on them (so they were not deduplicated), by project and source; each event says why in dedup_error.",
		}, []string{"project", "source"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailroom_deliveries_total",
			Help: "Delivery attempts by destination and what each did to its delivery: succeeded, retry (scheduled again), dead (out of attempts), paused (410 Gone), canceled (shutdown); project is the destination's.",
		}, []string{"project", "destination", "outcome"}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mailroom_attempt_duration_seconds",
			Help:    "Duration of one HTTP delivery attempt, by project and destination.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"project", "destination"}),
		taskCompletion: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mailroom_task_completion_seconds",
			Help:    "Time from creating an MCP task to its completion by a correlated event.",
			Buckets: []float64{1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 7 * 24 * 3600},
		}),
		configReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailroom_config_reload_total",
			Help: "Config reloads (SIGHUP or POST /api/v1/reload) by outcome: success (applied whole) or error (refused, nothing changed).",
		}, []string{"outcome"}),
		configApplied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailroom_config_last_reload_success_timestamp_seconds",
			Help: "Unix time when the config in force was applied: at start, then at each successful reload.",
		}),
		circuit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailroom_circuit_transitions_total",
			Help: "Circuit breaker transitions made by this instance, by project, destination and transition (opened, probing, reopened, closed).",
		}, []string{"project", "destination", "transition"}),
	}
	m.reg.MustRegister(m.ingestRequests, m.ingestDuration, m.dedupHits, m.dedupErrors, m.deliveries, m.attemptDuration, m.taskCompletion,
		m.configReloads, m.configApplied, m.circuit)
	m.reg.MustRegister(buildInfoGauge(buildinfo.Read()))
	if s != nil {
		m.reg.MustRegister(newStoreCollector(s, o.ScrapeTimeout, o.Now, o.Logger))
	}
	if !o.NoRuntimeCollectors {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// buildInfoGauge is mailroom_build_info: always 1, with the build's
// version, commit and Go version as labels, so a dashboard can show which
// build each instance runs (and join it onto other series).
func buildInfoGauge(b buildinfo.Info) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mailroom_build_info",
		Help:        "Always 1; the labels say which build of mailroom is running.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}

// Registry returns the registry the metrics live in, for tests and for
// registering further collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns the HTTP handler of /metrics. A collector that fails
// (the store being unreachable) does not fail the scrape: the other
// metrics are still served and the error is logged.
//
// A request whose principal ([access.From]) acts in one project gets only
// the series labelled with that project: what is per source, destination
// or task, and nothing process-wide. Without a principal, or for an
// admin of every project, it gets everything.
func (m *Metrics) Handler() http.Handler {
	opts := promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}
	scoped := opts
	opts.Registry = m.reg
	all := promhttp.HandlerFor(m.reg, opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := access.From(r.Context())
		if !ok || p.AllProjects() {
			all.ServeHTTP(w, r)
			return
		}
		promhttp.HandlerFor(projectGatherer{m.reg, store.ProjectOrDefault(p.Project)}, scoped).ServeHTTP(w, r)
	})
}

// projectGatherer gathers the series of one project: those whose project
// label is it.
type projectGatherer struct {
	g       prometheus.Gatherer
	project string
}

// Gather implements [prometheus.Gatherer].
func (pg projectGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := pg.g.Gather()
	out := mfs[:0]
	for _, mf := range mfs {
		kept := mf.Metric[:0]
		for _, m := range mf.Metric {
			for _, l := range m.GetLabel() {
				if l.GetName() == "project" && l.GetValue() == pg.project {
					kept = append(kept, m)
					break
				}
			}
		}
		if len(kept) > 0 {
			mf.Metric = kept
			out = append(out, mf)
		}
	}
	return out, err
}

// ObserveIngest counts one ingest request. Its signature matches
// ingest.Options.OnRequest. An unknown source is counted with an empty
// source label, so that requests to made-up names cannot grow the number
// of series.
func (m *Metrics) ObserveIngest(source, outcome string, elapsed time.Duration) {
	project := store.ProjectOf(source)
	if outcome == OutcomeUnknownSource {
		source = ""
	}
	m.ingestRequests.WithLabelValues(project, source, outcome).Inc()
	m.ingestDuration.Observe(elapsed.Seconds())
	if outcome == OutcomeDuplicate {
		m.dedupHits.WithLabelValues(project, source).Inc()
	}
}

// ObserveDedupError counts one accepted request whose dedup key could not
// be computed. Its signature matches ingest.Options.OnDedupError.
func (m *Metrics) ObserveDedupError(source string) {
	m.dedupErrors.WithLabelValues(store.ProjectOf(source), source).Inc()
}

// ObserveAttempt counts one delivery attempt and its duration. Its
// signature matches deliver.Options.OnAttempt.
func (m *Metrics) ObserveAttempt(a store.Attempt, outcome string) {
	project := store.ProjectOf(a.Destination)
	m.deliveries.WithLabelValues(project, a.Destination, outcome).Inc()
	m.attemptDuration.WithLabelValues(project, a.Destination).Observe(a.DurationMS / 1000)
}

// ObserveCircuit counts one circuit breaker transition of destination;
// with a state argument it matches deliver.Options.OnCircuit.
func (m *Metrics) ObserveCircuit(destination, transition string, _ store.CircuitState) {
	m.circuit.WithLabelValues(store.ProjectOf(destination), destination, transition).Inc()
}

// ObserveTaskCompletion records how long an MCP task took from creation
// to completion. The MCP server calls it when a task completes.
func (m *Metrics) ObserveTaskCompletion(d time.Duration) {
	m.taskCompletion.Observe(d.Seconds())
}

// ObserveConfigReload counts one config reload by outcome ("success" or
// "error") and records applied, when the config in force was applied. Its
// signature matches reload.Options.OnReload.
func (m *Metrics) ObserveConfigReload(outcome string, applied time.Time) {
	m.configReloads.WithLabelValues(outcome).Inc()
	m.SetConfigApplied(applied)
}

// SetConfigApplied records when the config in force was applied (at start,
// before any reload). A zero time is ignored.
func (m *Metrics) SetConfigApplied(applied time.Time) {
	if !applied.IsZero() {
		m.configApplied.Set(float64(applied.UnixMilli()) / 1000)
	}
}

// storeCollector reads queue and task gauges from the store at scrape
// time, so that they are right on every instance sharing the database and
// need no bookkeeping in the pipeline.
type storeCollector struct {
	store   store.Store
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger

	queueDepth *prometheus.Desc
	oldestAge  *prometheus.Desc
	dead       *prometheus.Desc
	tasksOpen  *prometheus.Desc
}

func newStoreCollector(s store.Store, timeout time.Duration, now func() time.Time, log *slog.Logger) *storeCollector {
	return &storeCollector{
		store:   s,
		timeout: timeout,
		now:     now,
		log:     log,
		queueDepth: prometheus.NewDesc("mailroom_queue_depth",
			"Pending deliveries (waiting or in flight), by project and destination.", []string{"project", "destination"}, nil),
		oldestAge: prometheus.NewDesc("mailroom_queue_oldest_pending_age_seconds",
			"Age of the oldest pending delivery, by project and destination; 0 when none is pending.", []string{"project", "destination"}, nil),
		dead: prometheus.NewDesc("mailroom_dead_deliveries",
			"Dead deliveries (out of attempts, retryable by hand), by project and destination.", []string{"project", "destination"}, nil),
		tasksOpen: prometheus.NewDesc("mailroom_tasks_open",
			"MCP tasks that are not terminal and not expired, by project.", []string{"project"}, nil),
	}
}

// Describe implements [prometheus.Collector].
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queueDepth
	ch <- c.oldestAge
	ch <- c.dead
	ch <- c.tasksOpen
}

// Collect implements [prometheus.Collector]. Every configured destination
// gets a series, zero when idle, so that alert rules see it before its
// first failure.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	now := c.now()

	stats, err := c.store.DeliveryStats(ctx)
	if err != nil {
		c.log.Warn("metrics: read delivery stats", "err", err)
		ch <- prometheus.NewInvalidMetric(c.queueDepth, err)
	} else {
		seen := make(map[string]bool, len(stats))
		for _, st := range stats {
			seen[st.Destination] = true
			age := 0.0
			if st.Pending > 0 && !st.OldestPending.IsZero() {
				age = max(0, now.Sub(st.OldestPending).Seconds())
			}
			p := store.ProjectOf(st.Destination)
			ch <- prometheus.MustNewConstMetric(c.queueDepth, prometheus.GaugeValue, float64(st.Pending), p, st.Destination)
			ch <- prometheus.MustNewConstMetric(c.oldestAge, prometheus.GaugeValue, age, p, st.Destination)
			ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(st.Dead), p, st.Destination)
		}
		if dests, err := c.store.DestinationList(ctx); err != nil {
			c.log.Warn("metrics: list destinations", "err", err)
		} else {
			for _, d := range dests {
				if seen[d.Name] {
					continue
				}
				p := store.ProjectOf(d.Name)
				ch <- prometheus.MustNewConstMetric(c.queueDepth, prometheus.GaugeValue, 0, p, d.Name)
				ch <- prometheus.MustNewConstMetric(c.oldestAge, prometheus.GaugeValue, 0, p, d.Name)
				ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, 0, p, d.Name)
			}
		}
	}

	open, err := countOpenTasks(ctx, c.store, now)
	if err != nil {
		c.log.Warn("metrics: count open tasks", "err", err)
		ch <- prometheus.NewInvalidMetric(c.tasksOpen, err)
		return
	}
	if _, ok := open[store.DefaultProject]; !ok {
		open[store.DefaultProject] = 0 // the series is there before the first task
	}
	for p, n := range open {
		ch <- prometheus.MustNewConstMetric(c.tasksOpen, prometheus.GaugeValue, float64(n), p)
	}
}

// taskPage is the page size used to count open tasks.
const taskPage = 1000

// countOpenTasks pages through the open tasks. Open tasks are few (each
// is an agent waiting), so paging is cheaper than widening the Store
// interface with a count.
func countOpenTasks(ctx context.Context, s store.Store, now time.Time) (map[string]int, error) {
	n, cursor := map[string]int{}, ""
	for {
		ts, err := s.TaskList(ctx, &store.TaskListParams{Open: true, Cursor: cursor, Limit: taskPage, Now: now})
		if err != nil {
			return n, fmt.Errorf("list open tasks: %w", err)
		}
		for _, t := range ts {
			n[store.ProjectOrDefault(t.Project)]++
		}
		if len(ts) < taskPage {
			return n, nil
		}
		cursor = ts[len(ts)-1].ID
	}
}
