package sqlstore

import (
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// where collects the conditions and arguments of a statement being built.
type where struct {
	conds []string
	args  []any
}

// add appends cond (with its ? placeholders) and its arguments.
func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// eq adds col = v unless v is empty.
func (w *where) eq(col, v string) {
	if v != "" {
		w.add(col+" = ?", v)
	}
}

// between adds Since <= col < Until for the bounds that are set.
func (w *where) between(col string, since, until time.Time) {
	if !since.IsZero() {
		w.add(col+" >= ?", micros(since))
	}
	if !until.IsZero() {
		w.add(col+" < ?", micros(until))
	}
}

// sql returns " WHERE c1 AND c2 ..." or "" when there is no condition.
func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// page adds the cursor, newest-first order and limit of a list whose ids
// sort in creation order, and returns the statement's tail.
func (w *where) page(cursor string, limit int) string {
	if cursor != "" {
		w.add("id < ?", cursor)
	}
	tail := w.sql() + " ORDER BY id DESC LIMIT ?"
	w.args = append(w.args, store.PageLimit(limit))
	return tail
}

// received is a list of table (requests or events, whose ids have prefix)
// by receipt time: the statement reading cols of the rows that match w's
// conditions and were received in [since, until) (each bound if set),
// newest first after cursor, at most limit of them, and its arguments.
// Where the engine indexes only the late rows by receipt time
// ([Dialect.LateRows]) it reads an id range, plus the late rows when until
// is set; else received_at's index.
func (s *Store) received(cols, table, prefix string, w *where, since, until time.Time, cursor string, limit int) (string, []any) {
	if s.d.LateRows == nil {
		w.between("received_at", since, until)
		if cursor != "" {
			w.add("id < ?", cursor)
		}
		return `SELECT ` + cols + ` FROM ` + table + w.sql() + ` ORDER BY id DESC LIMIT ?`, append(w.args, limit)
	}
	if !since.IsZero() {
		// Stamped at or after the receipt: the id range finds them all.
		w.add("received_at >= ?", micros(since))
		w.add("id >= ?", idSince(prefix, since))
	}
	if cursor != "" {
		w.add("id < ?", cursor)
	}
	if until.IsZero() {
		return `SELECT ` + cols + ` FROM ` + table + w.sql() + ` ORDER BY id DESC LIMIT ?`, append(w.args, limit)
	}
	w.add("received_at < ?", micros(until))
	// The rows stamped at most LateAfter after their receipt are below
	// bound; the late ones above it are read from the late index.
	bound := idBefore(prefix, until)
	cond := w.sql()
	args := append(append(append(append([]any{}, w.args...), bound), w.args...), bound, limit)
	return `SELECT ` + cols + ` FROM ` + table + cond + ` AND id < ?
		UNION ALL SELECT ` + cols + ` FROM ` + s.d.LateRows(table, "") + cond + ` AND late = 1 AND id >= ?
		ORDER BY id DESC LIMIT ?`, args
}

// eventType keeps rows of table (which has an event_id column) whose
// event has type typ. It reads the event by its primary key per row, so it
// needs no index of its own.
func (w *where) eventType(table, typ string) {
	if typ != "" {
		w.add("EXISTS (SELECT 1 FROM events e WHERE e.id = "+table+".event_id AND e.type = ?)", typ)
	}
}

// bodyQuery keeps rows whose request body contains text: on requests
// themselves when direct, else through the row's request_id.
func (s *Store) bodyQuery(w *where, text string, direct bool) {
	if text == "" {
		return
	}
	if direct {
		w.add(s.d.BodyHas, s.d.BodyArg(text))
		return
	}
	w.add("request_id IN (SELECT id FROM requests WHERE "+s.d.BodyHas+")", s.d.BodyArg(text))
}

// deliveryFilter is what a delivery list and a bulk retry select by.
type deliveryFilter struct {
	project, source, destination, status, typ, eventID, query string
	since, until                                              time.Time
}

// where builds the conditions of f.
func (s *Store) deliveryWhere(f deliveryFilter) *where {
	w := &where{}
	w.eq("project", f.project)
	w.eq("source", f.source)
	w.eq("destination", f.destination)
	w.eq("status", f.status)
	w.eq("event_id", f.eventID)
	w.eventType("deliveries", f.typ)
	s.bodyQuery(w, f.query, false)
	w.between("created_at", f.since, f.until)
	return w
}
