package api

import (
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailroomhq/mailroom/internal/search"
	"github.com/mailroomhq/mailroom/internal/store"
)

// DefaultLimit is the page size of a list that sets no limit: the
// store's, [store.DefaultPageLimit].
const DefaultLimit = store.DefaultPageLimit

// MaxLimit is the largest page size a list accepts: the largest page the
// store returns, [store.MaxPageLimit], which [page] relies on.
const MaxLimit = store.MaxPageLimit

// parseLimit reads the limit parameter v into *limit: a whole number from
// 1 to [MaxLimit]. Empty leaves *limit as it is (the default).
func parseLimit(v string, limit *int) error {
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		return badf("parameter limit: %q is not a whole number from 1 to %d", v, MaxLimit)
	}
	*limit = n
	return nil
}

// listKind says which filters and statuses a list accepts.
type listKind struct {
	name     string   // "requests", "events", "deliveries"
	filters  []string // accepted filter parameters besides since, until, cursor, limit
	statuses []string
	paged    bool // cursor and limit allowed (not for bulk retry)
}

var (
	requestsKind = listKind{name: "requests", filters: []string{"source", "status", "event_id"},
		statuses: []string{store.RequestAccepted, store.RequestRejected, store.RequestDuplicate, store.RequestHandshake}, paged: true}
	eventsKind = listKind{name: "events", filters: []string{"source", "status", "type", "q", "where"},
		statuses: []string{store.EventRouted, store.EventIgnored}, paged: true}
	deliveriesKind = listKind{name: "deliveries", filters: []string{"source", "destination", "status", "event_id"},
		statuses: []string{store.DeliveryPending, store.DeliverySucceeded, store.DeliveryDead}, paged: true}
	retryKind = listKind{name: "bulk retry", filters: []string{"source", "destination", "status", "event_id"},
		statuses: []string{store.DeliveryPending, store.DeliverySucceeded, store.DeliveryDead}}
)

// listParams is what a list's query string says: the union of the
// filters of every list (each [listKind] accepts only its own) and the
// page. Its methods give each store list its own parameters.
type listParams struct {
	// Project is set from the request's scope ([Server.scopeList]), not
	// from the parameter, which a principal of one project may not widen.
	Project                                    string
	Source, Destination, Status, Type, EventID string
	// Query is the text the body must contain (q), and Where the body
	// conditions (where, which may repeat): the event search.
	Query        string
	Where        search.Filter
	Since, Until time.Time
	Cursor       string
	Limit        int
}

func (p listParams) requests() *store.RequestListParams {
	return &store.RequestListParams{Project: p.Project, Source: p.Source, Status: p.Status, Type: p.Type, EventID: p.EventID,
		Since: p.Since, Until: p.Until, Cursor: p.Cursor, Limit: p.Limit}
}

func (p listParams) events() *store.EventListParams {
	return &store.EventListParams{Project: p.Project, Source: p.Source, Status: p.Status, Type: p.Type,
		Since: p.Since, Until: p.Until, Cursor: p.Cursor, Limit: p.Limit}
}

// searching reports whether the list is a search (q or where), which
// pages by [store.History.EventSearch].
func (p listParams) searching() bool { return p.Query != "" || len(p.Where) > 0 }

func (p listParams) search() *store.EventSearchParams {
	sp := &store.EventSearchParams{EventListParams: *p.events()}
	sp.Query = p.Query
	if len(p.Where) > 0 {
		sp.Body = p.Where
	}
	return sp
}

func (p listParams) deliveries() *store.DeliveryListParams {
	return &store.DeliveryListParams{Project: p.Project, Source: p.Source, Destination: p.Destination, Status: p.Status, Type: p.Type, EventID: p.EventID,
		Since: p.Since, Until: p.Until, Cursor: p.Cursor, Limit: p.Limit}
}

// parseListParams reads a list's query parameters. Unknown, repeated or
// malformed parameters are errors naming the parameter, so that a typo does
// not silently widen a list (or a bulk retry).
func parseListParams(q url.Values, kind listKind) (listParams, error) {
	p := listParams{Limit: DefaultLimit}
	if q == nil {
		return p, nil
	}
	// In key order, so that a request with several bad parameters is
	// always told about the same one.
	for _, key := range slices.Sorted(maps.Keys(q)) {
		vals := q[key]
		if key == "where" && slices.Contains(kind.filters, key) {
			f, err := search.ParseFilter(vals)
			if err != nil {
				return p, badf("parameter where: %v", err)
			}
			p.Where = f
			continue
		}
		if len(vals) > 1 {
			return p, badf("parameter %s is given %d times; give it once", key, len(vals))
		}
		v := vals[0]
		switch {
		case slices.Contains(kind.filters, key):
			if err := checkText(key, v); err != nil {
				return p, err
			}
			switch key {
			case "source":
				p.Source = v
			case "destination":
				p.Destination = v
			case "status":
				if v != "" && !slices.Contains(kind.statuses, v) {
					return p, badf("parameter status: %q is not a %s status (want one of %s)", v, singular(kind.name), strings.Join(kind.statuses, ", "))
				}
				p.Status = v
			case "type":
				p.Type = v
			case "event_id":
				p.EventID = v
			case "q":
				p.Query = v
			}
		case key == "project":
			// Read by the request's scope (scopeOf), which checks it.
		case key == "since" || key == "until":
			if v == "" {
				continue
			}
			t, err := parseTime(v)
			if err != nil {
				return p, badf("parameter %s: %v", key, err)
			}
			if key == "since" {
				p.Since = t
			} else {
				p.Until = t
			}
		case key == "cursor" && kind.paged:
			if err := checkCursor(v); err != nil {
				return p, err
			}
			p.Cursor = v
		case key == "limit" && kind.paged:
			if err := parseLimit(v, &p.Limit); err != nil {
				return p, err
			}
		default:
			return p, badf("unknown parameter %q for %s (accepted: %s)", key, kind.name, strings.Join(kind.accepted(), ", "))
		}
	}
	if !p.Since.IsZero() && !p.Until.IsZero() && !p.Since.Before(p.Until) {
		return p, badf("parameter since (%s) must be before until (%s)", p.Since.Format(time.RFC3339Nano), p.Until.Format(time.RFC3339Nano))
	}
	return p, nil
}

func (k listKind) accepted() []string {
	out := append(slices.Clone(k.filters), "project", "since", "until")
	if k.paged {
		out = append(out, "cursor", "limit")
	}
	return out
}

func singular(name string) string {
	switch name {
	case "deliveries", "bulk retry":
		return "delivery"
	}
	return strings.TrimSuffix(name, "s")
}

// maxUnix bounds unix seconds to years 0001 to 9999, which RFC 3339 can
// write and the drivers can store.
const (
	minUnix = -62135596800
	maxUnix = 253402300799
)

// parseTime reads RFC 3339 (with or without fractional seconds) or unix
// seconds (possibly fractional).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if t.Year() < 1 || t.Year() > 9999 {
			return time.Time{}, fmt.Errorf("%q is out of range", s)
		}
		return t, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(s, "xXpP_") {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2025-01-02T15:04:05Z) nor unix seconds", s)
	}
	if f < minUnix || f > maxUnix {
		return time.Time{}, fmt.Errorf("%q is out of range", s)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// checkText refuses values that cannot be a name, type or id: too long, or
// holding control characters or invalid UTF-8.
func checkText(key, v string) error {
	if len(v) > 512 {
		return badf("parameter %s is longer than 512 bytes", key)
	}
	if !validText(v) {
		return badf("parameter %s holds control characters or invalid UTF-8", key)
	}
	return nil
}

// checkCursor accepts what [Server] hands out as next_cursor: a row id.
func checkCursor(v string) error {
	if len(v) > 128 {
		return badf("parameter cursor is not a cursor from next_cursor")
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return badf("parameter cursor is not a cursor from next_cursor")
		}
	}
	return nil
}

// parseQuery parses a raw query string, refusing what [url.URL.Query]
// would silently drop (bad escapes, semicolons), since a dropped filter
// widens a list or a bulk retry.
func parseQuery(raw string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badf("invalid query string: %v", err)
	}
	return q, nil
}

// validText reports whether s is valid UTF-8 without control characters.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}
