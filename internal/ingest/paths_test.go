package ingest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/postgres/pgtest"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

// TestPathsEveryDriverStores: the path after /e/{source} and a source
// name are taken from the URL, percent-decoded, so they may hold bytes
// that are not UTF-8, or NUL, which PostgreSQL's text refuses: a verified
// request to /e/open/%ff got 503 "storage unavailable" there, every time
// (a sender retries it for ever), as one with a raw byte in its query,
// and a refused one to /e/%ff was not recorded. Each is kept, the bytes
// that are not UTF-8 percent-encoded, on both drivers.
func TestPathsEveryDriverStores(t *testing.T) {
	t.Parallel()
	for _, drv := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"SQLite", func(t *testing.T) store.Store { return sqlitetest.Open(t, nil) }},
		{"PostgreSQL", func(t *testing.T) store.Store { return pgtest.Open(t, nil) }},
	} {
		t.Run(drv.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := drv.open(t)
			for _, src := range []*store.Source{{Name: "open"}, {Name: "keyed", Dedup: store.DedupConfig{Key: "body.id"}},
				{Name: "headed", Dedup: store.DedupConfig{Key: `headers["x-id"]`}}} {
				if err := s.SourceUpsert(ctx, src); err != nil {
					t.Fatal(err)
				}
			}
			url := serveIngest(t, s, nil)
			for _, tt := range []struct{ path, want string }{
				{"/e/open/%ff%fe", "/%FF%FE"},
				{"/e/open/a%00b/c", "/a%00b/c"},
				{"/e/open/caf%C3%A9%20x", "/café x"}, // valid: kept as it is
			} {
				code, res := post(t, url+tt.path, []byte(`{}`), http.Header{"Content-Type": {"application/json"}})
				if code != http.StatusOK {
					t.Errorf("POST %s: %d %v, want 200", tt.path, code, res)
					continue
				}
				req, err := s.RequestGetByID(ctx, res["request_id"].(string))
				if err != nil || req.Path != tt.want {
					t.Errorf("POST %s: stored path %q (%v), want %q", tt.path, req.Path, err, tt.want)
				}
			}
			// Dedup keys with NUL or bytes that are not UTF-8 (a JSON
			// \u0000, a header): deduplicated, and kept apart.
			for _, tt := range []struct {
				path, body, header string
				dup                bool
			}{
				{"/e/keyed", `{"id":"a\u0000b"}`, "", false},
				{"/e/keyed", `{"id":"a\u0000c"}`, "", false},
				{"/e/keyed", `{"id":"a\u0000b"}`, "", true},
				{"/e/headed", `{}`, "\xff\xfe", false},
				{"/e/headed", `{}`, "\xff\xfe", true},
			} {
				h := http.Header{"Content-Type": {"application/json"}}
				if tt.header != "" {
					h.Set("X-Id", tt.header)
				}
				code, res := post(t, url+tt.path, []byte(tt.body), h)
				if code != http.StatusOK || res["duplicate"] != tt.dup {
					t.Errorf("POST %s %s (x-id %q): %d %v, want 200 with duplicate %v", tt.path, tt.body, tt.header, code, res, tt.dup)
				}
			}

			// A raw byte in the query, which no Go client sends.
			conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /e/open?x=\xff&y=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			var raw struct {
				RequestID string `json:"request_id"`
			}
			json.NewDecoder(resp.Body).Decode(&raw)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("POST /e/open?x=\\xff: %d, want 200", resp.StatusCode)
			} else if req, err := s.RequestGetByID(ctx, raw.RequestID); err != nil || req.Query != "x=%FF&y=1" {
				t.Errorf("POST /e/open?x=\\xff: stored query %q (%v), want x=%%FF&y=1", req.Query, err)
			}

			code, res := post(t, url+"/e/%ff", []byte(`{}`), nil)
			id, _ := res["request_id"].(string)
			if code != http.StatusNotFound || id == "" {
				t.Fatalf("POST /e/%%ff: %d %v, want 404 with the request recorded", code, res)
			}
			if req, err := s.RequestGetByID(ctx, id); err != nil || req.Source != "%FF" || !utf8.ValidString(req.Reason) {
				t.Errorf("refused request to /e/%%ff: %+v %v, want source %%FF", req, err)
			}
		})
	}
}
