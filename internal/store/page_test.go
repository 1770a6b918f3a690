package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
)

// TestFetchPage: a cursor exactly when rows remain, also at the largest
// page, where the list will not return the extra row.
func TestFetchPage(t *testing.T) {
	t.Parallel()
	list := func(n int) func(context.Context, string, int) ([]*string, error) {
		rows := make([]*string, n)
		for i := range rows {
			id := fmt.Sprintf("r%05d", n-i) // newest first
			rows[i] = &id
		}
		return func(_ context.Context, cursor string, limit int) ([]*string, error) {
			limit = store.PageLimit(limit)
			from := 0
			if cursor != "" {
				from = slices.IndexFunc(rows, func(r *string) bool { return *r == cursor }) + 1
			}
			return rows[from:min(from+limit, len(rows))], nil
		}
	}
	id := func(s *string) string { return *s }
	for _, tt := range []struct {
		name         string
		rows, limit  int
		wantRows     int
		wantNextPage bool
	}{
		{name: "Empty", rows: 0, limit: 10, wantRows: 0},
		{name: "Short", rows: 5, limit: 10, wantRows: 5},
		{name: "Exact", rows: 10, limit: 10, wantRows: 10},
		{name: "More", rows: 11, limit: 10, wantRows: 10, wantNextPage: true},
		{name: "ExactAtMax", rows: store.MaxPageLimit, limit: store.MaxPageLimit, wantRows: store.MaxPageLimit},
		{name: "MoreAtMax", rows: store.MaxPageLimit + 1, limit: store.MaxPageLimit, wantRows: store.MaxPageLimit, wantNextPage: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fetch := list(tt.rows)
			rows, next, err := store.FetchPage(context.Background(), "", tt.limit, fetch, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tt.wantRows || (next != "") != tt.wantNextPage {
				t.Fatalf("%d rows, next %q; want %d rows, a next page %v", len(rows), next, tt.wantRows, tt.wantNextPage)
			}
			if next != "" {
				rest, next, err := store.FetchPage(context.Background(), next, tt.limit, fetch, id)
				if err != nil || len(rows)+len(rest) != tt.rows || next != "" {
					t.Errorf("next page: %d rows, next %q, %v; want the other %d and none", len(rest), next, err, tt.rows-len(rows))
				}
			}
		})
	}
}
