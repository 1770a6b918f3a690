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
