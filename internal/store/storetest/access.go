package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

func testTokens(t *testing.T, newStore NewStore) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	sum := func(secret string) []byte { h := sha256.Sum256([]byte(secret)); return h[:] }
	mk := func(id, role, project string, expires time.Time) *store.Token {
		t.Helper()
		tok := &store.Token{ID: id, Name: id + " holder", Role: role, Project: project, Hash: sum("secret-" + id),
			CreatedBy: "admin", CreatedAt: now, ExpiresAt: expires}
		if err := s.TokenCreate(ctx, tok); err != nil {
			t.Fatalf("TokenCreate %s: %v", id, err)
		}
		return tok
	}
	if c, err := s.TokenActive(ctx, now); err != nil || c != (store.TokenCounts{}) {
		t.Fatalf("TokenActive on an empty store = %+v, %v", c, err)
	}
	mk("tok_1", "admin", "", time.Time{})
	mk("tok_2", "operator", "a", now.Add(time.Hour))
	mk("tok_3", "viewer", "b", now.Add(-time.Second)) // already expired
	if err := s.TokenCreate(ctx, &store.Token{ID: "tok_4", Name: "x", Role: "viewer", Hash: sum("secret-tok_1"), CreatedAt: now}); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("a second token with the same hash: %v, want ErrDuplicate", err)
	}

	got, err := s.TokenByHash(ctx, sum("secret-tok_2"))
	if err != nil {
		t.Fatal(err)
	}
	want := &store.Token{ID: "tok_2", Name: "tok_2 holder", Role: "operator", Project: "a", Hash: sum("secret-tok_2"),
		CreatedBy: "admin", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if b1, b2 := mustJSON(t, got), mustJSON(t, want); b1 != b2 || string(got.Hash) != string(want.Hash) {
		t.Errorf("TokenByHash = %s, want %s", b1, b2)
	}
	if !got.Active(now) || got.Active(now.Add(time.Hour)) {
		t.Errorf("Active: before expiry %v, at expiry %v", got.Active(now), got.Active(now.Add(time.Hour)))
	}
	if byID, err := s.TokenGet(ctx, "tok_2"); err != nil || mustJSON(t, byID) != mustJSON(t, want) {
		t.Errorf("TokenGet = %+v, %v", byID, err)
	}
	if _, err := s.TokenGet(ctx, "tok_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TokenGet of a missing id: %v, want ErrNotFound", err)
	}
	if _, err := s.TokenByHash(ctx, sum("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TokenByHash of an unknown hash: %v, want ErrNotFound", err)
	}

	ids := func(p *store.TokenListParams) []string {
		t.Helper()
		ts, err := s.TokenList(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tk := range ts {
			out = append(out, tk.ID)
		}
		return out
	}
	for _, tc := range []struct {
		p    store.TokenListParams
		want string
	}{
		{store.TokenListParams{Now: now}, `["tok_2","tok_1"]`},
		{store.TokenListParams{Now: now, All: true}, `["tok_3","tok_2","tok_1"]`},
		{store.TokenListParams{Now: now, All: true, Project: "b"}, `["tok_3"]`},
		{store.TokenListParams{Now: now, Project: "b"}, `null`},
	} {
		if got := mustJSON(t, ids(&tc.p)); got != tc.want {
			t.Errorf("TokenList(%+v) = %s, want %s", tc.p, got, tc.want)
		}
	}
	if c, err := s.TokenActive(ctx, now); err != nil || c != (store.TokenCounts{Active: 2, Admins: 1}) {
		t.Errorf("TokenActive = %+v, %v; want 2 active, 1 admin", c, err)
	}

	r, err := s.TokenRevoke(ctx, "tok_1", now.Add(time.Minute))
	if err != nil || !r.RevokedAt.Equal(now.Add(time.Minute)) || r.Active(now.Add(time.Minute)) {
		t.Fatalf("TokenRevoke = %+v, %v", r, err)
	}
	if r, err := s.TokenRevoke(ctx, "tok_1", now.Add(time.Hour)); err != nil || !r.RevokedAt.Equal(now.Add(time.Minute)) {
		t.Errorf("second revoke moved revoked_at: %+v, %v", r, err)
	}
	if _, err := s.TokenRevoke(ctx, "tok_nope", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke a missing token: %v, want ErrNotFound", err)
	}
	if c, err := s.TokenActive(ctx, now.Add(time.Minute)); err != nil || c != (store.TokenCounts{Active: 1, Admins: 0}) {
		t.Errorf("TokenActive after revoking the admin = %+v, %v", c, err)
	}
	if err := s.TokenTouch(ctx, "tok_2", now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TokenTouch(ctx, "tok_2", now.Add(time.Minute)); err != nil { // older: ignored
		t.Fatal(err)
	}
	if got, err := s.TokenByHash(ctx, sum("secret-tok_2")); err != nil || !got.LastUsedAt.Equal(now.Add(2*time.Minute)) {
		t.Errorf("after touches, last_used_at = %v, %v", got.LastUsedAt, err)
	}
	// Ids are random: the newest is first by creation time, not by id.
	if err := s.TokenCreate(ctx, &store.Token{ID: "tok_0", Name: "newest", Role: "viewer", Hash: sum("secret-tok_0"), CreatedAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, ids(&store.TokenListParams{Now: now, All: true})); got != `["tok_0","tok_3","tok_2","tok_1"]` {
		t.Errorf("TokenList newest first = %s", got)
	}
}

func testAudit(t *testing.T, newStore NewStore) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	base := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Microsecond)
	var all []*store.AuditEntry
	for i, e := range []store.AuditEntry{
		{Actor: "alice", TokenID: "tok_a", Role: "operator", Project: "a", Action: "POST /api/v1/deliveries/{id}/retry", Target: "dlv_1", Status: 200},
		{Actor: "bob", TokenID: "tok_b", Role: "admin", Action: "POST /api/v1/tokens", Target: "tok_x", Status: 201, After: json.RawMessage(`{"id":"tok_x"}`)},
		{Actor: "alice", TokenID: "tok_a", Role: "operator", Project: "a", Action: "PUT /api/v1/destinations/{name}", Target: "d", Status: 200,
			Before: json.RawMessage(`{"url":"http://a"}`), After: json.RawMessage(`{"url":"http://b"}`)},
	} {
		e.At = base.Add(time.Duration(i) * time.Hour)
		if err := s.AuditInsert(ctx, &e); err != nil {
			t.Fatal(err)
		}
		if e.ID == "" {
			t.Fatal("AuditInsert set no id")
		}
		all = append(all, &e)
	}
	list := func(p store.AuditListParams) []*store.AuditEntry {
		t.Helper()
		es, err := s.AuditList(ctx, &p)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	if got, want := mustJSON(t, list(store.AuditListParams{})), mustJSON(t, []*store.AuditEntry{all[2], all[1], all[0]}); got != want {
		t.Errorf("AuditList = %s\nwant %s", got, want)
	}
	for _, tc := range []struct {
		p    store.AuditListParams
		want []*store.AuditEntry
	}{
		{store.AuditListParams{Actor: "alice"}, []*store.AuditEntry{all[2], all[0]}},
		{store.AuditListParams{Project: "a", Target: "d"}, []*store.AuditEntry{all[2]}},
		{store.AuditListParams{TokenID: "tok_b"}, []*store.AuditEntry{all[1]}},
		{store.AuditListParams{Action: "POST /api/v1/deliveries/{id}/retry"}, []*store.AuditEntry{all[0]}},
		{store.AuditListParams{Since: base.Add(time.Hour), Until: base.Add(2 * time.Hour)}, []*store.AuditEntry{all[1]}},
		{store.AuditListParams{Limit: 1, Cursor: all[2].ID}, []*store.AuditEntry{all[1]}},
	} {
		if got, want := mustJSON(t, list(tc.p)), mustJSON(t, tc.want); got != want {
			t.Errorf("AuditList(%+v) = %s\nwant %s", tc.p, got, want)
		}
	}
	// Prune without an audit horizon keeps them; with one, the old go.
	if res, err := s.Prune(ctx, &store.PruneParams{Before: time.Now()}); err != nil || res.Audit != 0 {
		t.Errorf("Prune without AuditBefore: %+v, %v", res, err)
	}
	res, err := s.Prune(ctx, &store.PruneParams{Before: time.Now(), AuditBefore: base.Add(90 * time.Minute)})
	if err != nil || res.Audit != 2 {
		t.Fatalf("Prune with AuditBefore: %+v, %v; want 2 audit entries", res, err)
	}
	if got, want := mustJSON(t, list(store.AuditListParams{})), mustJSON(t, []*store.AuditEntry{all[2]}); got != want {
		t.Errorf("after pruning, AuditList = %s, want %s", got, want)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
