package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mailroomhq/mailroom/internal/store"
)

// searchChunk is how many requests one statement of a search reads.
const searchChunk = 64

// EventSearch implements [store.History]. It reads the window first: the
// events the list's filters keep after the cursor, newest first, at most
// ScanRows of them (an index range, as the event list reads). Then it
// reads their requests searchChunk at a time and keeps, in order, the
// events whose body holds the text query (the dialect's BodyHas, the
// rule of every list's query, evaluated by the engine, which returns the
// body only when it matched) and that the body filter accepts. It stops
// at the first match past the page, at the end of the window, or once
// p.ScanBytes of bodies were read (checked after each chunk), and says where the next
// call goes on. Every statement runs on the read path, under
// [store.SearchTimeout].
func (s *Store) EventSearch(ctx context.Context, p *store.EventSearchParams) (*store.EventPage, error) {
	if p == nil {
		p = &store.EventSearchParams{}
	}
	ctx, cancel := context.WithTimeout(ctx, store.SearchTimeout)
	defer cancel()
	limit := store.PageLimit(p.Limit)
	scan := p.ScanRows
	if scan <= 0 {
		scan = store.DefaultSearchScanRows
	}
	scan = min(scan, store.MaxSearchScanRows)
	maxBytes := p.ScanBytes
	if maxBytes <= 0 || maxBytes > store.SearchScanBytes {
		maxBytes = store.SearchScanBytes
	}

	w := eventFilter(&p.EventListParams)
	q, args := s.received(eventCols, "events", "evt", w, p.Since, p.Until, p.Cursor, scan)
	rows, err := s.read.Query(ctx, q, args...)
	window, err := collect(rows, err, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("search events: %w", err)
	}

	page := &store.EventPage{Events: []*store.Event{}}
	read := 0
	for start := 0; start < len(window); start += searchChunk {
		part := window[start:min(start+searchChunk, len(window))]
		bodies, err := s.searchBodies(ctx, part, p)
		if err != nil {
			return nil, fmt.Errorf("search events: %w", err)
		}
		for _, ev := range part {
			b, ok := bodies[ev.RequestID]
			if bodies == nil {
				ok = true // no text query or body filter: every event matches
			}
			page.Scanned++
			if ok && (p.Body == nil || p.Body.MatchBody(b.contentType, b.body)) {
				if len(page.Events) == limit {
					page.Scanned--
					page.Next = page.Events[limit-1].ID
					return page, nil
				}
				page.Events = append(page.Events, ev)
			}
			read += len(b.body)
		}
		if read >= maxBytes && start+len(part) < len(window) {
			page.Next = part[len(part)-1].ID
			return page, nil
		}
	}
	if len(window) == scan {
		page.Next = window[len(window)-1].ID
	}
	return page, nil
}

// searchBody is what a search reads of one request.
type searchBody struct {
	contentType string
	body        []byte
}

// searchBodies reads the requests of evs that hold p's text query, by
// request id: with their Content-Type and body when p has a body filter.
// It returns nil when p has neither (nothing to read).
func (s *Store) searchBodies(ctx context.Context, evs []*store.Event, p *store.EventSearchParams) (map[string]searchBody, error) {
	if p.Query == "" && p.Body == nil {
		return nil, nil
	}
	var args []any
	hit := "1"
	if p.Query != "" {
		hit = "CASE WHEN " + s.d.BodyHas + " THEN 1 ELSE 0 END"
		args = append(args, s.d.BodyArg(p.Query))
	}
	for _, ev := range evs {
		args = append(args, ev.RequestID)
	}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(evs)), ", ")
	inner := `SELECT id, headers, body, ` + hit + ` AS hit FROM requests WHERE id IN (` + in + `)`
	cols := `id, hit, NULL, NULL`
	if p.Body != nil {
		// The body only of a request that holds the text.
		cols = `id, hit, headers, CASE WHEN hit = 1 THEN body END`
	}
	rows, err := s.read.Query(ctx, `SELECT `+cols+` FROM (`+inner+`) r`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]searchBody, len(evs))
	for rows.Next() {
		var id string
		var matched int
		var headers, body []byte
		if err := rows.Scan(&id, &matched, &headers, &body); err != nil {
			return nil, err
		}
		if matched != 1 {
			continue
		}
		b := searchBody{body: body}
		if len(headers) > 0 {
			var h map[string][]string
			if err := json.Unmarshal(headers, &h); err != nil {
				return nil, fmt.Errorf("decode headers of %s: %w", id, err)
			}
			for k, vs := range h {
				if strings.EqualFold(k, "Content-Type") && len(vs) > 0 {
					b.contentType = vs[0]
				}
			}
		}
		out[id] = b
	}
	return out, rows.Err()
}
