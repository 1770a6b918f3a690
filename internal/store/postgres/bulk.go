package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mailroomhq/mailroom/internal/store/sqlstore"
)

// Ingests in bulk. Every ingest that queued for a writer is written in the
// same transaction with the batch's other ingests, in one multi-row
// statement per table (unnest of one array per column), so that a batch
// of k ingests costs PostgreSQL a handful of statements and two or three
// round trips instead of 5k statements and 2k round trips:
//
//  1. BEGIN and the dedup claims of every keyed ingest
//     (INSERT ... ON CONFLICT DO NOTHING RETURNING), pipelined;
//  2. only when a key was already there: take over the expired ones and
//     read the event of the others (pipelined);
//  3. the request, event and delivery rows, pipelined with COMMIT when the
//     batch holds no other kind of write.
//
// The dedup rule is the core's (sqlstore): a key is inserted, or taken
// over only when the stored row expired at or before the request's
// received time; otherwise the request is a duplicate of the stored
// event. A key that appears more than once in the batch is claimed by the
// first and the others are its duplicates, as if run one after another.
// Keys are claimed in (source, key) order, so that two batches sharing
// keys lock them in the same order.

// errBegin and errCommit mark a failure of the transaction itself, which
// fails every op of the batch (after a failed commit the outcome is
// unknown).
var (
	errBegin  = errors.New("begin")
	errCommit = errors.New("commit")
)

// ingestOne is the store's [sqlstore.Engine.Ingest]: the row goes
// through the writers with the other writes.
func (s *Store) ingestOne(ctx context.Context, row *sqlstore.IngestRow) error {
	return s.enqueue(ctx, &writeOp{ingest: row, done: make(chan struct{})})
}

// attemptOne is the store's [sqlstore.Engine.Attempt].
func (s *Store) attemptOne(ctx context.Context, row *sqlstore.AttemptRow) error {
	return s.enqueue(ctx, &writeOp{attempt: row, done: make(chan struct{})})
}

const (
	sqlBulkDedupClaim = `INSERT INTO dedup (source, key, event_id, expires_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
		ON CONFLICT (source, key) DO NOTHING RETURNING event_id`
	// A stored key that expired at or before the request is taken over.
	sqlBulkDedupTakeOver = `UPDATE dedup d SET event_id = u.ev, expires_at = u.exp
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS u(source, key, ev, exp, at)
		WHERE d.source = u.source AND d.key = u.key AND d.expires_at <= u.at`
	sqlBulkDedupRead = `SELECT d.source, d.key, d.event_id FROM dedup d
		JOIN unnest($1::text[], $2::text[]) AS u(source, key) ON d.source = u.source AND d.key = u.key`
)

// dedupKey is one dedup row's key.
type dedupKey struct{ source, key string }

// writeBulk begins a transaction on conn and writes ops' ingests and
// attempts in it, setting each ingest's Duplicate and First and each
// attempt's Lost; if commit is true it also commits, and reports whether
// it did. An error wrapping errBegin or errCommit is the transaction's; any
// other is the statements' (the caller rolls back).
func (s *Store) writeBulk(ctx context.Context, conn *pgxpool.Conn, ops []*writeOp, commit bool) (bool, error) {
	var ingests []*sqlstore.IngestRow
	var attempts []*sqlstore.AttemptRow
	for _, op := range ops {
		if op.ingest != nil {
			ingests = append(ingests, op.ingest)
		} else {
			attempts = append(attempts, op.attempt)
		}
	}
	// The claimants: the first ingest of each key, in key order.
	first := make(map[dedupKey]*sqlstore.IngestRow)
	var claim []*sqlstore.IngestRow
	for _, r := range ingests {
		if r.DedupKey == "" {
			continue
		}
		k := dedupKey{r.Source, r.DedupKey}
		if _, ok := first[k]; !ok {
			first[k] = r
			claim = append(claim, r)
		}
	}
	slices.SortFunc(claim, func(a, b *sqlstore.IngestRow) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.DedupKey, b.DedupKey))
	})

	// 1. BEGIN, the claims and the attempts; without claims, the ingests'
	// rows too.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if len(claim) > 0 {
		src, key, ev, exp := make([]string, len(claim)), make([]string, len(claim)), make([]string, len(claim)), make([]int64, len(claim))
		for i, r := range claim {
			src[i], key[i], ev[i], exp[i] = r.Source, r.DedupKey, r.EventID, r.DedupExpires
		}
		b.Queue(sqlBulkDedupClaim, src, key, ev, exp)
	}
	if len(attempts) > 0 {
		if err := queueAttempts(b, attempts); err != nil {
			return false, err
		}
	}
	var inserts int
	done := false
	if len(claim) == 0 {
		n, err := queueIngestRows(b, ingests)
		if err != nil {
			return false, err
		}
		inserts = n
		if commit {
			b.Queue("COMMIT")
			done = true
		}
	}
	br := conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return false, fmt.Errorf("%w: %w", errBegin, interpretError(err))
	}
	claimed := make(map[string]bool, len(claim)) // by event id
	if len(claim) > 0 {
		err := collectRows(br, func(rows pgx.Rows) error {
			var ev string
			err := rows.Scan(&ev)
			claimed[ev] = true
			return err
		})
		if err != nil {
			br.Close()
			return false, fmt.Errorf("claim %d dedup keys: %w", len(claim), err)
		}
	}
	if len(attempts) > 0 {
		if err := readAttempts(br, attempts); err != nil {
			br.Close()
			return false, err
		}
	}
	if err := finishBatch(br, inserts, done); err != nil {
		return false, err
	}
	if len(claim) == 0 {
		return done, nil
	}

	// 2. Keys already stored: take over the expired, read the others.
	var taken []*sqlstore.IngestRow
	for _, r := range claim {
		if !claimed[r.EventID] {
			taken = append(taken, r)
		}
	}
	if len(taken) > 0 {
		src, key, ev, exp, at := make([]string, len(taken)), make([]string, len(taken)), make([]string, len(taken)), make([]int64, len(taken)), make([]int64, len(taken))
		for i, r := range taken {
			src[i], key[i], ev[i], exp[i], at[i] = r.Source, r.DedupKey, r.EventID, r.DedupExpires, r.At
		}
		b := &pgx.Batch{}
		b.Queue(sqlBulkDedupTakeOver, src, key, ev, exp, at)
		b.Queue(sqlBulkDedupRead, src, key)
		br := conn.SendBatch(ctx, b)
		stored := make(map[dedupKey]string, len(taken))
		_, err := br.Exec()
		if err == nil {
			err = collectRows(br, func(rows pgx.Rows) error {
				var k dedupKey
				var ev string
				err := rows.Scan(&k.source, &k.key, &ev)
				stored[k] = ev
				return err
			})
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return false, fmt.Errorf("read %d stored dedup keys: %w", len(taken), err)
		}
		for _, r := range taken {
			ev, ok := stored[dedupKey{r.Source, r.DedupKey}]
			if !ok {
				// Pruned between the claim and the read: run again.
				return false, fmt.Errorf("dedup key %q of %s vanished while claimed", r.DedupKey, r.Source)
			}
			if ev != r.EventID {
				r.Duplicate, r.First = true, ev
			}
		}
	}
	// The batch's later copies of a key follow its first.
	for _, r := range ingests {
		if r.DedupKey == "" {
			continue
		}
		if f := first[dedupKey{r.Source, r.DedupKey}]; f != r {
			r.Duplicate, r.First = true, cmp.Or(f.First, f.EventID)
		}
	}

	// 3. The rows.
	b = &pgx.Batch{}
	n, err := queueIngestRows(b, ingests)
	if err != nil {
		return false, err
	}
	if commit {
		b.Queue("COMMIT")
	}
	if err := finishBatch(conn.SendBatch(ctx, b), n, commit); err != nil {
		return false, err
	}
	return commit, nil
}

// queueIngestRows queues the inserts of the rows of ingests (a duplicate's
// request only) and returns how many statements it queued.
func queueIngestRows(b *pgx.Batch, ingests []*sqlstore.IngestRow) (int, error) {
	var requests, events, deliveries [][]any
	for _, r := range ingests {
		if r.Duplicate {
			requests = append(requests, r.DuplicateRequest(r.First))
			continue
		}
		requests = append(requests, r.Request)
		events = append(events, r.Event)
		deliveries = append(deliveries, r.Deliveries...)
	}
	n := 0
	for _, t := range []struct {
		table, cols string
		rows        [][]any
	}{
		{"requests", sqlstore.RequestInsertCols, requests},
		{"events", sqlstore.EventInsertCols, events},
		{"deliveries", sqlstore.DeliveryInsertCols, deliveries},
	} {
		if len(t.rows) == 0 {
			continue
		}
		q, args, err := bulkInsert(t.table, t.cols, t.rows)
		if err != nil {
			return 0, err
		}
		b.Queue(q, args...)
		n++
	}
	return n, nil
}

// sqlBulkFinish moves the deliveries of recorded attempts, each fenced on
// its claim's token as sqlstore's single-row update is.
const sqlBulkFinish = `UPDATE deliveries d SET status = u.status, next_attempt_at = u.next, last_error = u.err,
		last_status = u.code, retry = u.retry, updated_at = u.now
	FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::bigint[])
		AS u(id, number, status, next, err, code, retry, now)
	WHERE d.id = u.id AND d.attempts = u.number AND d.status = 'pending'
	RETURNING u.id, u.number`

// queueAttempts queues the attempts' rows and their deliveries' updates,
// in delivery order (so that batches lock deliveries in one order).
func queueAttempts(b *pgx.Batch, attempts []*sqlstore.AttemptRow) error {
	rows := make([][]any, len(attempts))
	for i, a := range attempts {
		rows[i] = a.Attempt
	}
	q, args, err := bulkInsert("attempts", sqlstore.AttemptInsertCols, rows)
	if err != nil {
		return err
	}
	b.Queue(q, args...)
	sorted := slices.Clone(attempts)
	slices.SortFunc(sorted, func(a, b *sqlstore.AttemptRow) int {
		return cmp.Or(strings.Compare(a.DeliveryID, b.DeliveryID), cmp.Compare(a.Number, b.Number))
	})
	n := len(sorted)
	id, number, status, next, errs, code, retry, now := make([]string, n), make([]int64, n), make([]string, n), make([]int64, n),
		make([]string, n), make([]int64, n), make([]string, n), make([]int64, n)
	for i, a := range sorted {
		id[i], number[i], status[i], next[i], errs[i], code[i], retry[i], now[i] = a.DeliveryID, int64(a.Number), a.Status, a.NextAttemptAt,
			a.Error, int64(a.StatusCode), a.Retry, a.Now
	}
	b.Queue(sqlBulkFinish, id, number, status, next, errs, code, retry, now)
	return nil
}

// readAttempts reads the results of queueAttempts' statements and sets
// each attempt's Lost.
func readAttempts(br pgx.BatchResults, attempts []*sqlstore.AttemptRow) error {
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("insert %d attempts: %w", len(attempts), err)
	}
	type fence struct {
		id     string
		number int64
	}
	moved := make(map[fence]bool, len(attempts))
	err := collectRows(br, func(rows pgx.Rows) error {
		var f fence
		err := rows.Scan(&f.id, &f.number)
		moved[f] = true
		return err
	})
	if err != nil {
		return fmt.Errorf("update %d deliveries: %w", len(attempts), err)
	}
	for _, a := range attempts {
		a.Lost = !moved[fence{a.DeliveryID, int64(a.Number)}]
	}
	return nil
}

// collectRows reads the next result of br, a query, calling scan on each
// row.
func collectRows(br pgx.BatchResults, scan func(pgx.Rows) error) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	for rows.Next() {
		if err = scan(rows); err != nil {
			break
		}
	}
	rows.Close()
	return cmp.Or(err, rows.Err())
}

// finishBatch reads the results of n inserts and, if commit, of a COMMIT,
// and closes br.
func finishBatch(br pgx.BatchResults, n int, commit bool) error {
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("insert rows: %w", err)
		}
	}
	if commit {
		tag, err := br.Exec()
		if err == nil && tag.String() != "COMMIT" {
			err = fmt.Errorf("transaction rolled back (%s)", tag)
		}
		if err != nil {
			br.Close()
			return fmt.Errorf("%w: %w", errCommit, err)
		}
	}
	if err := br.Close(); err != nil {
		if commit {
			return fmt.Errorf("%w: %w", errCommit, err)
		}
		return fmt.Errorf("insert rows: %w", err)
	}
	return nil
}

// bulkInsert returns the statement and arguments that insert rows (each
// in cols order) into table in one statement: one array per column,
// unnested. A column's array type follows its values' Go type.
func bulkInsert(table, cols string, rows [][]any) (string, []any, error) {
	width := len(rows[0])
	args := make([]any, width)
	var q strings.Builder
	q.WriteString("INSERT INTO " + table + " (" + cols + ") SELECT * FROM unnest(")
	for j := range width {
		col, typ, err := column(rows, j)
		if err != nil {
			return "", nil, fmt.Errorf("insert into %s: column %d: %w", table, j+1, err)
		}
		args[j] = col
		if j > 0 {
			q.WriteString(", ")
		}
		q.WriteString("$" + strconv.Itoa(j+1) + "::" + typ + "[]")
	}
	q.WriteString(")")
	return q.String(), args, nil
}

// column returns column j of rows as a slice pgx encodes as an array, and
// the array's element type. A nil []byte is NULL.
func column(rows [][]any, j int) (any, string, error) {
	switch rows[0][j].(type) {
	case string:
		out := make([]string, len(rows))
		for i, r := range rows {
			v, ok := r[j].(string)
			if !ok {
				return nil, "", fmt.Errorf("mixed types %T and string", r[j])
			}
			out[i] = v
		}
		return out, "text", nil
	case int64, int:
		out := make([]int64, len(rows))
		for i, r := range rows {
			switch v := r[j].(type) {
			case int64:
				out[i] = v
			case int:
				out[i] = int64(v)
			default:
				return nil, "", fmt.Errorf("mixed types %T and int64", r[j])
			}
		}
		return out, "bigint", nil
	case []byte:
		out := make([][]byte, len(rows))
		for i, r := range rows {
			v, ok := r[j].([]byte)
			if !ok {
				return nil, "", fmt.Errorf("mixed types %T and []byte", r[j])
			}
			out[i] = v
		}
		return out, "bytea", nil
	case float64:
		out := make([]float64, len(rows))
		for i, r := range rows {
			v, ok := r[j].(float64)
			if !ok {
				return nil, "", fmt.Errorf("mixed types %T and float64", r[j])
			}
			out[i] = v
		}
		return out, "double precision", nil
	case bool:
		out := make([]bool, len(rows))
		for i, r := range rows {
			v, ok := r[j].(bool)
			if !ok {
				return nil, "", fmt.Errorf("mixed types %T and bool", r[j])
			}
			out[i] = v
		}
		return out, "boolean", nil
	}
	return nil, "", fmt.Errorf("no bulk encoding for %T", rows[0][j])
}
