package web

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// rateWindow is how far back the overview's rates look; rateBuckets is how
// many bars it splits that into.
const (
	rateWindow  = 10 * time.Minute
	rateBuckets = 10
	// maxRateRows caps the rows read for the rates, so that a flood does
	// not make the overview slow; the page says when it was reached.
	maxRateRows = 20000
	// maxOpenTasks caps the open tasks counted.
	maxOpenTasks = 999 // so that the probe row fits in one store page of 1000
)

// bucket is one bar of the rate chart.
type bucket struct {
	Start                        time.Time
	Requests, Rejected           int
	Deliveries, DeliveriesFailed int
}

// queueRow is one destination's queue on the overview.
type queueRow struct {
	Name    string
	Paused  bool
	Missing bool // deliveries left for a destination since deleted
	// Circuit is the destination's circuit breaker state; empty when closed.
	Circuit       string
	Pending, Dead int
	OldestPending time.Time
}

type overviewData struct {
	Window   time.Duration
	Buckets  []*bucket
	MaxBar   int
	Truncate bool

	Requests, Accepted, Rejected, Duplicates int
	IngestPerMin, RejectRate                 float64

	Deliveries, Succeeded, Dead, Pending int
	Attempts, FailedAttempts             int
	DeliveryPerMin, ErrorRate            float64

	Queues                  []*queueRow
	TotalPending, TotalDead int

	OpenTasks     int
	OpenTasksMore bool
}

// listSince reads every row of a newest-first list since t, up to max.
func listSince[T any](ctx context.Context, since time.Time, max int, fetch func(context.Context, listParams) ([]*T, error), id func(*T) string) ([]*T, bool, error) {
	var out []*T
	p := listParams{Since: since, Limit: 1000}
	for {
		rows, err := fetch(ctx, p)
		if err != nil {
			return nil, false, err
		}
		out = append(out, rows...)
		if len(out) >= max {
			return out[:max], true, nil
		}
		if len(rows) < p.Limit {
			return out, false, nil
		}
		p.Cursor = id(rows[len(rows)-1])
	}
}

// overview shows the last minutes of ingest and delivery and the state of
// every queue. Rates are counted from the requests received and the
// deliveries created in the window; a delivery's failed attempts are its
// attempts less the one that succeeded.
func (w *Server) overview(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := w.now()
	since := now.Add(-rateWindow)
	d := &overviewData{Window: rateWindow}
	step := rateWindow / rateBuckets
	for i := range rateBuckets {
		d.Buckets = append(d.Buckets, &bucket{Start: since.Add(time.Duration(i) * step)})
	}
	at := func(t time.Time) *bucket {
		i := int(t.Sub(since) / step)
		return d.Buckets[min(max(i, 0), rateBuckets-1)]
	}

	reqs, cut1, err := listSince(ctx, since, maxRateRows, w.listRequests, func(r *store.Request) string { return r.ID })
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	for _, q := range reqs {
		d.Requests++
		b := at(q.ReceivedAt)
		b.Requests++
		switch q.Status {
		case store.RequestRejected:
			d.Rejected++
			b.Rejected++
		case store.RequestDuplicate:
			d.Duplicates++
		default:
			d.Accepted++
		}
	}
	dls, cut2, err := listSince(ctx, since, maxRateRows, w.listDeliveries, func(d *store.Delivery) string { return d.ID })
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	for _, dl := range dls {
		d.Deliveries++
		b := at(dl.CreatedAt)
		b.Deliveries++
		d.Attempts += dl.Attempts
		failed := dl.Attempts
		switch dl.Status {
		case store.DeliverySucceeded:
			d.Succeeded++
			failed--
		case store.DeliveryDead:
			d.Dead++
			b.DeliveriesFailed++
		default:
			d.Pending++
			if dl.Attempts > 0 {
				b.DeliveriesFailed++
			}
		}
		d.FailedAttempts += max(failed, 0)
	}
	d.Truncate = cut1 || cut2
	minutes := rateWindow.Minutes()
	d.IngestPerMin = float64(d.Requests) / minutes
	d.DeliveryPerMin = float64(d.Deliveries) / minutes
	if d.Requests > 0 {
		d.RejectRate = float64(d.Rejected) / float64(d.Requests)
	}
	if d.Attempts > 0 {
		d.ErrorRate = float64(d.FailedAttempts) / float64(d.Attempts)
	}
	for _, b := range d.Buckets {
		d.MaxBar = max(d.MaxBar, b.Requests, b.Deliveries)
	}

	dests, err := w.store.DestinationList(ctx)
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	stats, err := w.store.DeliveryStats(ctx)
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	rows := map[string]*queueRow{}
	for _, dst := range dests {
		if !sees(ctx, dst.Project) {
			continue
		}
		rows[dst.Name] = &queueRow{Name: dst.Name, Paused: dst.Paused, Circuit: dst.Circuit.State}
	}
	for _, s := range stats {
		if !sees(ctx, store.ProjectOf(s.Destination)) {
			continue
		}
		q := rows[s.Destination]
		if q == nil {
			q = &queueRow{Name: s.Destination, Missing: true}
			rows[s.Destination] = q
		}
		q.Pending, q.Dead, q.OldestPending = s.Pending, s.Dead, s.OldestPending
		d.TotalPending += s.Pending
		d.TotalDead += s.Dead
	}
	for _, q := range rows {
		d.Queues = append(d.Queues, q)
	}
	sort.Slice(d.Queues, func(i, j int) bool { return d.Queues[i].Name < d.Queues[j].Name })

	tasks, err := w.store.TaskList(ctx, &store.TaskListParams{Project: scopeOf(ctx), Open: true, Limit: maxOpenTasks + 1, Now: now})
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	d.OpenTasks, d.OpenTasksMore = min(len(tasks), maxOpenTasks), len(tasks) > maxOpenTasks
	w.render(rw, r, http.StatusOK, "overview", "Overview", d)
}
