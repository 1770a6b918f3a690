package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Statements of the delivery queue.
const (
	sqlEventRouted   = `UPDATE events SET status = 'routed', deliveries = deliveries + ? WHERE id = ?`
	sqlClaimOne      = `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ? WHERE id = ? RETURNING ` + DeliveryCols
	sqlInsertAttempt = `INSERT INTO attempts (` + attemptCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// Fenced: only the claim whose token is still current moves the
	// delivery.
	sqlFinishDelivery = `UPDATE deliveries SET status = ?, next_attempt_at = ?, last_error = ?, last_status = ?, retry = ?, updated_at = ?
		WHERE id = ? AND attempts = ? AND status = 'pending'`
	sqlInsertFinishedDelivery = `INSERT INTO deliveries (id, event_id, request_id, source, destination, connection_id, status, attempts,
		next_attempt_at, created_at, updated_at, last_error, last_status, project) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)`
)

// DeliveryInsertMany implements [store.Queue].
func (s *Store) DeliveryInsertMany(ctx context.Context, ds []*store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		perEvent := map[string]int{}
		stmts := make([]Stmt, 0, len(ds)+1)
		for _, d := range ds {
			now := s.now()
			due := d.NextAttemptAt
			if due.IsZero() {
				due = now
			}
			d.ID = s.ids.New("dlv", now)
			d.Status, d.Attempts, d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = store.DeliveryPending, 0, due, now, now
			d.Project = store.ProjectOf(d.Destination)
			stmts = append(stmts, Stmt{sqlInsertDelivery, []any{d.ID, d.EventID, d.RequestID, d.Source, d.Destination, d.ConnectionID,
				micros(due), micros(now), micros(now), d.Project}})
			perEvent[d.EventID]++
			tx.Notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: d.Destination, ID: d.ID})
		}
		for ev, n := range perEvent {
			stmts = append(stmts, Stmt{sqlEventRouted, []any{n, ev}})
		}
		_, err := tx.ExecBatch(ctx, stmts...)
		return err
	})
	if err != nil {
		return fmt.Errorf("insert deliveries: %w", err)
	}
	return nil
}

// DeliveryClaimDue implements [store.Queue]. It never returns a delivery
// whose lease another caller, on this instance or another, holds.
func (s *Store) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.Delivery, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	var out []*store.Delivery
	err := s.claim(ctx, func(ctx context.Context, tx Tx) error {
		out = nil
		now, lease := micros(p.Now), micros(p.LeaseUntil)
		if p.Ordered {
			var id string
			var next int64
			err := tx.QueryRow(ctx, s.d.OrderedHead, p.Destination).Scan(&id, &next)
			if errors.Is(err, store.ErrNotFound) || (err == nil && next > now) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read ordered head: %w", err)
			}
			d, err := scanDelivery(tx.QueryRow(ctx, sqlClaimOne, lease, now, id))
			if err != nil {
				return err
			}
			out = append(out, d)
			return nil
		}
		rows, err := tx.Query(ctx, s.d.ClaimDue, lease, now, p.Destination, now, p.Limit)
		out, err = collect(rows, err, scanDelivery)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries for %s: %w", p.Destination, err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NextAttemptAt.Equal(out[j].NextAttemptAt) {
			return out[i].NextAttemptAt.Before(out[j].NextAttemptAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// sqlExtendLease renews one lease, fenced by the claim's token and by the
// expiry it set: an attempt recorded meanwhile, or a lease that lapsed and
// was claimed again, no longer matches.
const sqlExtendLease = `UPDATE deliveries SET next_attempt_at = ?, updated_at = ?
	WHERE id = ? AND attempts = ? AND status = 'pending' AND next_attempt_at = ?`

// DeliveryExtendLeases implements [store.Queue].
func (s *Store) DeliveryExtendLeases(ctx context.Context, p *store.DeliveryExtendLeasesParams) (int, error) {
	if len(p.Leases) == 0 {
		return 0, nil
	}
	var renewed int
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		stmts := make([]Stmt, len(p.Leases))
		until, now := micros(p.Until), micros(p.Now)
		for i, l := range p.Leases {
			stmts[i] = Stmt{sqlExtendLease, []any{until, now, l.ID, l.Attempt, micros(l.Until)}}
		}
		counts, err := tx.ExecBatch(ctx, stmts...)
		renewed = 0
		for _, n := range counts {
			renewed += int(n)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("extend %d delivery leases: %w", len(p.Leases), err)
	}
	return renewed, nil
}

// sqlReleaseLease gives one lease back, fenced as sqlExtendLease is.
const sqlReleaseLease = `UPDATE deliveries SET attempts = attempts - 1, next_attempt_at = ?, updated_at = ?
	WHERE id = ? AND attempts = ? AND status = 'pending' AND next_attempt_at = ?
	RETURNING destination`

// DeliveryReleaseLeases implements [store.Queue].
func (s *Store) DeliveryReleaseLeases(ctx context.Context, p *store.DeliveryReleaseLeasesParams) (int, error) {
	if len(p.Leases) == 0 {
		return 0, nil
	}
	var released int
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		released = 0
		now := micros(p.Now)
		seen := map[string]bool{}
		for _, l := range p.Leases {
			var dest string
			err := tx.QueryRow(ctx, sqlReleaseLease, now, now, l.ID, l.Attempt, micros(l.Until)).Scan(&dest)
			if errors.Is(err, store.ErrNotFound) {
				continue // no longer this caller's lease
			}
			if err != nil {
				return err
			}
			released++
			if !seen[dest] {
				seen[dest] = true
				tx.Notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: dest})
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("release %d delivery leases: %w", len(p.Leases), err)
	}
	return released, nil
}

// DeliveryRetry implements [store.Queue].
func (s *Store) DeliveryRetry(ctx context.Context, id string, now time.Time) (*store.Delivery, error) {
	var d *store.Delivery
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		d, err = scanDelivery(tx.QueryRow(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ? RETURNING `+DeliveryCols,
			micros(now), micros(now), id))
		if err != nil {
			return err
		}
		tx.Notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: d.Destination, ID: d.ID})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retry delivery %s: %w", id, err)
	}
	return d, nil
}

// DeliveryRetryMany implements [store.Queue].
func (s *Store) DeliveryRetryMany(ctx context.Context, p *store.DeliveryRetryManyParams) (int, error) {
	if p == nil {
		p = &store.DeliveryRetryManyParams{}
	}
	status := p.Status
	if status == "" {
		status = store.DeliveryDead
	}
	w := s.deliveryWhere(deliveryFilter{project: p.Project, source: p.Source, destination: p.Destination, status: status, typ: p.Type,
		eventID: p.EventID, query: p.Query, since: p.Since, until: p.Until})
	now := micros(s.orNow(p.Now))
	var n int
	err := s.write(ctx, func(ctx context.Context, tx Tx) error {
		rows, err := tx.Query(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?`+w.sql()+` RETURNING destination`,
			append([]any{now, now}, w.args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		n = 0
		seen := map[string]bool{}
		for rows.Next() {
			var dest string
			if err := rows.Scan(&dest); err != nil {
				return err
			}
			n++
			if !seen[dest] {
				seen[dest] = true
				tx.Notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: dest})
			}
		}
		return rows.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("retry deliveries: %w", err)
	}
	return n, nil
}

// DeliveryStats implements [store.Queue].
func (s *Store) DeliveryStats(ctx context.Context) ([]store.DestinationStats, error) {
	rows, err := s.read.Query(ctx, s.d.Stats)
	if err != nil {
		return nil, fmt.Errorf("delivery stats: %w", err)
	}
	defer rows.Close()
	var out []store.DestinationStats
	for rows.Next() {
		var st store.DestinationStats
		var oldest int64
		if err := rows.Scan(&st.Destination, &st.Pending, &oldest, &st.Dead); err != nil {
			return nil, fmt.Errorf("delivery stats: %w", err)
		}
		st.OldestPending = fromMicros(oldest)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delivery stats: %w", err)
	}
	return out, nil
}

// AttemptRecord implements [store.Queue].
func (s *Store) AttemptRecord(ctx context.Context, p *store.AttemptRecordParams) error {
	return s.AttemptRecordMany(ctx, []*store.AttemptRecordParams{p})[0]
}

// attemptChunks are the row counts of the multi-row statements of
// [Store.AttemptRecordMany], largest first: a batch is cut into chunks of
// these sizes (and single rows, which run sqlInsertAttempt and
// sqlFinishDelivery), so that a handful of statements stay prepared
// whatever the batches' sizes.
var attemptChunks = []int{64, 32, 16, 8, 4, 2}

// sqlInsertAttempts and sqlFinishDeliveries hold the statements of
// attemptChunks by row count. A finish moves, fenced as sqlFinishDelivery
// does, every delivery of its rows (id, attempt number, status, next
// attempt, last error, last status, retry, updated at) and returns the id
// and attempt number of those that moved. The CASTs type the VALUES
// columns for PostgreSQL; SQLite takes them as affinities.
var sqlInsertAttempts, sqlFinishDeliveries = func() (map[int]string, map[int]string) {
	ins, fin := map[int]string{}, map[int]string{}
	for _, n := range attemptChunks {
		ins[n] = `INSERT INTO attempts (` + attemptCols + `) VALUES ` +
			strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, n-1) + `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
		row := `(CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT))`
		fin[n] = `WITH v (v_id, v_number, v_status, v_next, v_error, v_code, v_retry, v_now) AS (VALUES ` +
			strings.Repeat(row+`, `, n-1) + row + `)
		UPDATE deliveries SET status = v_status, next_attempt_at = v_next, last_error = v_error, last_status = v_code, retry = v_retry, updated_at = v_now
		FROM v WHERE id = v_id AND attempts = v_number AND status = 'pending'
		RETURNING id, attempts`
	}
	return ins, fin
}()

// attemptRow is one attempt of [Store.AttemptRecordMany], encoded.
type attemptRow struct {
	p       *store.AttemptRecordParams
	headers []byte
	retry   string
	now     int64
	moved   bool
	// err is the driver's answer for this row alone ([Engine.Attempt]).
	err error
}

// AttemptRecordMany implements [store.Queue]: the attempts are inserted
// and their deliveries moved by multi-row statements, a few per batch, in
// one write; or, with a driver that writes attempts in bulk itself
// ([Engine.Attempt]), handed to it all at once.
func (s *Store) AttemptRecordMany(ctx context.Context, ps []*store.AttemptRecordParams) []error {
	errs := make([]error, len(ps))
	rows := make([]attemptRow, 0, len(ps))
	for i, p := range ps {
		a := p.Attempt
		headers, err := encodeHeaders(a.ResponseHeaders)
		if err != nil {
			errs[i] = fmt.Errorf("record attempt: encode headers: %w", err)
			continue
		}
		retry, err := encodeJSON(p.Retry, p.Retry == nil)
		if err != nil {
			errs[i] = fmt.Errorf("record attempt: encode retry: %w", err)
			continue
		}
		rows = append(rows, attemptRow{p: p, headers: headers, retry: retry, now: micros(s.orNow(p.Now))})
	}
	if len(rows) == 0 {
		return errs
	}
	var err error
	if s.attempt != nil {
		s.attemptEach(ctx, rows)
	} else {
		err = s.recordRows(ctx, rows)
	}
	j := 0
	for i, p := range ps {
		if errs[i] != nil {
			continue
		}
		a := p.Attempt
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("record attempt %d of %s: %w", a.Number, a.DeliveryID, err)
		case rows[j].err != nil:
			errs[i] = fmt.Errorf("record attempt %d of %s: %w", a.Number, a.DeliveryID, rows[j].err)
		case !rows[j].moved:
			errs[i] = fmt.Errorf("record attempt %d of %s: %w", a.Number, a.DeliveryID, store.ErrLeaseLost)
		}
		j++
	}
	return errs
}

// attemptEach hands each of rows to the driver's [Engine.Attempt] (which
// writes the attempts of a batch together), all at once, and waits for
// them.
func (s *Store) attemptEach(ctx context.Context, rows []attemptRow) {
	var wg sync.WaitGroup
	for i := range rows {
		r := &rows[i]
		a := r.p.Attempt
		a.ID = s.ids.New("att", a.StartedAt)
		row := &AttemptRow{
			Attempt: []any{a.ID, a.DeliveryID, a.EventID, a.Destination, a.Number, micros(a.StartedAt), a.DurationMS,
				a.StatusCode, r.headers, a.ResponseBody, a.Error, a.Success, store.ProjectOf(a.Destination)},
			DeliveryID: a.DeliveryID, Number: a.Number, Status: r.p.Status, NextAttemptAt: micros(r.p.NextAttemptAt),
			Error: a.Error, StatusCode: a.StatusCode, Retry: r.retry, Now: r.now,
		}
		if r.p.Status == store.DeliveryPending {
			row.Notes = []store.Notification{{Kind: store.NotifyDeliveryDue, Destination: a.Destination, ID: a.DeliveryID}}
		}
		wg.Go(func() {
			r.err = s.attempt(ctx, row)
			r.moved = r.err == nil && !row.Lost
		})
	}
	wg.Wait()
}

// recordRows writes rows through the write path, in one operation.
func (s *Store) recordRows(ctx context.Context, rows []attemptRow) error {
	return s.write(ctx, func(ctx context.Context, tx Tx) error {
		for i := range rows {
			r := &rows[i]
			r.moved = false
			r.p.Attempt.ID = s.ids.New("att", r.p.Attempt.StartedAt)
		}
		for rest := rows; len(rest) > 0; {
			n := 1
			for _, c := range attemptChunks {
				if c <= len(rest) {
					n = c
					break
				}
			}
			if err := s.recordChunk(ctx, tx, rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		for _, r := range rows {
			if r.moved && r.p.Status == store.DeliveryPending {
				tx.Notify(store.Notification{Kind: store.NotifyDeliveryDue, Destination: r.p.Attempt.Destination, ID: r.p.Attempt.DeliveryID})
			}
		}
		return nil
	})
}

// recordChunk inserts the attempts of rows and moves their deliveries,
// setting moved on the rows whose delivery moved: with the single-row
// statements for one row, the multi-row ones of attemptChunks otherwise.
func (s *Store) recordChunk(ctx context.Context, tx Tx, rows []attemptRow) error {
	attemptArgs := func(args []any, r *attemptRow) []any {
		a := r.p.Attempt
		return append(args, a.ID, a.DeliveryID, a.EventID, a.Destination, a.Number, micros(a.StartedAt), a.DurationMS,
			a.StatusCode, r.headers, a.ResponseBody, a.Error, a.Success, store.ProjectOf(a.Destination))
	}
	if len(rows) == 1 {
		r := &rows[0]
		a := r.p.Attempt
		n, err := tx.ExecBatch(ctx,
			Stmt{sqlInsertAttempt, attemptArgs(make([]any, 0, 13), r)},
			Stmt{sqlFinishDelivery, []any{r.p.Status, micros(r.p.NextAttemptAt), a.Error, a.StatusCode, r.retry, r.now, a.DeliveryID, a.Number}})
		if err != nil {
			return fmt.Errorf("insert attempt and update delivery: %w", err)
		}
		r.moved = n[1] > 0
		return nil
	}
	ins := make([]any, 0, 13*len(rows))
	fin := make([]any, 0, 8*len(rows))
	for i := range rows {
		r := &rows[i]
		a := r.p.Attempt
		ins = attemptArgs(ins, r)
		fin = append(fin, a.DeliveryID, a.Number, r.p.Status, micros(r.p.NextAttemptAt), a.Error, a.StatusCode, r.retry, r.now)
	}
	if _, err := tx.ExecBatch(ctx, Stmt{sqlInsertAttempts[len(rows)], ins}); err != nil {
		return fmt.Errorf("insert %d attempts: %w", len(rows), err)
	}
	res, err := tx.Query(ctx, sqlFinishDeliveries[len(rows)], fin...)
	if err != nil {
		return fmt.Errorf("update %d deliveries: %w", len(rows), err)
	}
	defer res.Close()
	for res.Next() {
		var id string
		var number int
		if err := res.Scan(&id, &number); err != nil {
			return fmt.Errorf("update %d deliveries: %w", len(rows), err)
		}
		for i := range rows {
			if a := rows[i].p.Attempt; a.DeliveryID == id && a.Number == number {
				rows[i].moved = true
			}
		}
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("update %d deliveries: %w", len(rows), err)
	}
	return nil
}

// DeliveryInsertFinished implements [store.Queue].
func (s *Store) DeliveryInsertFinished(ctx context.Context, p *store.DeliveryInsertFinishedParams) error {
	if p.Status != store.DeliverySucceeded && p.Status != store.DeliveryDead {
		return fmt.Errorf("insert finished delivery: status %q is not succeeded or dead", p.Status)
	}
	d, a := p.Delivery, p.Attempt
	headers, err := encodeHeaders(a.ResponseHeaders)
	if err != nil {
		return fmt.Errorf("insert finished delivery: encode headers: %w", err)
	}
	now := s.orNow(p.Now)
	err = s.write(ctx, func(ctx context.Context, tx Tx) error {
		d.ID = s.ids.New("dlv", now)
		d.Status, d.Attempts, d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = p.Status, 1, time.Time{}, now, now
		d.LastError, d.LastStatus = a.Error, a.StatusCode
		a.ID = s.ids.New("att", a.StartedAt)
		a.DeliveryID, a.EventID, a.Destination, a.Number = d.ID, d.EventID, d.Destination, 1
		d.Project, a.Project = store.ProjectOf(d.Destination), store.ProjectOf(d.Destination)
		_, err := tx.ExecBatch(ctx,
			Stmt{sqlInsertFinishedDelivery, []any{d.ID, d.EventID, d.RequestID, d.Source, d.Destination, d.ConnectionID, d.Status,
				micros(d.NextAttemptAt), micros(now), micros(now), d.LastError, d.LastStatus, d.Project}},
			Stmt{sqlInsertAttempt, []any{a.ID, a.DeliveryID, a.EventID, a.Destination, a.Number, micros(a.StartedAt), a.DurationMS,
				a.StatusCode, headers, a.ResponseBody, a.Error, a.Success, a.Project}},
			Stmt{sqlEventRouted, []any{1, d.EventID}})
		return err
	})
	if err != nil {
		return fmt.Errorf("insert finished delivery to %s for %s: %w", d.Destination, d.EventID, err)
	}
	return nil
}

// AttemptInsertCols are the columns of [AttemptRow.Attempt].
const AttemptInsertCols = attemptCols

// AttemptRow is one attempt's record with its rows ready to write, handed
// to an [Engine.Attempt]. The driver inserts Attempt and moves the
// delivery as the core's statements do: only while it is pending with
// attempts = Number (the claim's fencing token); when it does not, Lost
// is set. Notes are sent when the delivery moved.
type AttemptRow struct {
	// Attempt is the attempt row's arguments, in [AttemptInsertCols] order.
	Attempt []any
	// DeliveryID and Number fence the delivery's update.
	DeliveryID string
	Number     int
	// Status, NextAttemptAt, Error, StatusCode, Retry and Now are the
	// delivery's new status, next_attempt_at, last_error, last_status,
	// retry and updated_at (times in Unix microseconds).
	Status        string
	NextAttemptAt int64
	Error         string
	StatusCode    int
	Retry         string
	Now           int64
	// Notes are sent when the delivery moved.
	Notes []store.Notification

	// Lost is the driver's answer: the delivery was not moved (its lease
	// had lapsed and it was claimed again, or it was finished).
	Lost bool
}
