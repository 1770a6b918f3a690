package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
)

type createdToken struct {
	store.Token
	Secret string `json:"token"`
}

// TestTokens creates, lists and revokes tokens through the API: the token
// is shown once, never listed, works at once with its role, and stops
// working when revoked; every change is in the audit log without the token.
func TestTokens(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)
	created := must[createdToken](t, b.do(t, "POST", "/api/v1/tokens", map[string]any{"name": "ci", "role": "viewer", "project": "default", "expires": "90d"}), http.StatusCreated)
	if !strings.HasPrefix(created.Secret, "mr_") || created.ID == "" || created.Role != "viewer" || created.ExpiresAt.IsZero() || created.CreatedBy != "api.token" {
		t.Fatalf("created: %+v", created)
	}
	as := func(token string) *testBundle { c := *b; c.token = token; return &c }
	viewer := as(created.Secret)
	if r := viewer.do(t, "GET", "/api/v1/destinations", nil); r.status != http.StatusOK {
		t.Errorf("viewer lists destinations: %d %s", r.status, r.body)
	}
	if r := viewer.do(t, "POST", "/api/v1/destinations/billing/pause", nil); r.status != http.StatusForbidden || !strings.Contains(r.errorMessage(t), "operate") {
		t.Errorf("viewer pauses a destination: %d %s, want 403 naming the permission", r.status, r.body)
	}
	if r := viewer.do(t, "GET", "/api/v1/tokens", nil); r.status != http.StatusForbidden {
		t.Errorf("viewer lists tokens: %d, want 403", r.status)
	}
	listed := b.do(t, "GET", "/api/v1/tokens", nil)
	if strings.Contains(string(listed.body), created.Secret) || !strings.Contains(string(listed.body), created.ID) {
		t.Errorf("token list shows the token, or not its id: %s", listed.body)
	}
	for _, bad := range []map[string]any{
		{"name": "x", "role": "root"},
		{"name": "x", "role": "viewer", "expires": "soon"},
		{"name": "", "role": "viewer"},
		{"name": "x", "role": "admin", "project": "shop"},
	} {
		if r := b.do(t, "POST", "/api/v1/tokens", bad); r.status != http.StatusBadRequest {
			t.Errorf("create %v: %d %s, want 400", bad, r.status, r.body)
		}
	}
	revoked := must[store.Token](t, b.do(t, "DELETE", "/api/v1/tokens/"+created.ID, nil), http.StatusOK)
	if revoked.RevokedAt.IsZero() {
		t.Errorf("revoked: %+v", revoked)
	}
	if r := viewer.do(t, "GET", "/api/v1/destinations", nil); r.status != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", r.status)
	}
	if r := b.do(t, "DELETE", "/api/v1/tokens/tok_nope", nil); r.status != http.StatusNotFound {
		t.Errorf("revoke a missing token: %d, want 404", r.status)
	}
	if got := must[page[store.Token]](t, b.do(t, "GET", "/api/v1/tokens", nil), http.StatusOK); len(got.Data) != 0 {
		t.Errorf("active tokens after the revoke: %+v", got.Data)
	}
	if got := must[page[store.Token]](t, b.do(t, "GET", "/api/v1/tokens?all=true", nil), http.StatusOK); len(got.Data) != 1 {
		t.Errorf("all tokens after the revoke: %+v", got.Data)
	}

	log := b.do(t, "GET", "/api/v1/audit?token_id=api&limit=10", nil)
	entries := must[page[store.AuditEntry]](t, log, http.StatusOK)
	if strings.Contains(string(log.body), created.Secret) {
		t.Fatalf("the audit log holds the token: %s", log.body)
	}
	var actions []string
	for _, e := range entries.Data {
		actions = append(actions, e.Action+" "+e.Target)
	}
	if want := "DELETE /api/v1/tokens/{id} tok_nope|DELETE /api/v1/tokens/{id} " + created.ID; !strings.HasPrefix(strings.Join(actions, "|"), want) {
		t.Errorf("audit actions %q, want them to start %q", actions, want)
	}
	if r := b.do(t, "GET", "/api/v1/audit?actor=x&actor=y", nil); r.status != http.StatusBadRequest {
		t.Errorf("audit with a repeated filter: %d", r.status)
	}
	if r := b.do(t, "GET", "/api/v1/audit?who=x", nil); r.status != http.StatusBadRequest {
		t.Errorf("audit with an unknown filter: %d", r.status)
	}
}

// TestOpenModeFirstToken: without api.token, anyone on loopback may
// create the first token, which must be an admin's; then the API asks
// for a token.
func TestOpenModeFirstToken(t *testing.T) {
	t.Parallel()
	b := setup(t, &setupOpts{})
	if r := b.do(t, "POST", "/api/v1/tokens", map[string]any{"name": "v", "role": "viewer"}); r.status != http.StatusConflict {
		t.Errorf("first token a viewer's: %d %s, want 409", r.status, r.body)
	}
	admin := must[createdToken](t, b.do(t, "POST", "/api/v1/tokens", map[string]any{"name": "root", "role": "admin"}), http.StatusCreated)
	if r := b.do(t, "GET", "/api/v1/events", nil); r.status != http.StatusUnauthorized {
		t.Errorf("no token once one exists: %d, want 401", r.status)
	}
	b.token = admin.Secret
	if r := b.do(t, "GET", "/api/v1/events", nil); r.status != http.StatusOK {
		t.Errorf("the admin token: %d", r.status)
	}
	entries := must[page[store.AuditEntry]](t, b.do(t, "GET", "/api/v1/audit", nil), http.StatusOK)
	if len(entries.Data) != 2 || entries.Data[0].Actor != "anonymous" || entries.Data[0].Target != admin.ID || entries.Data[1].Status != http.StatusConflict {
		t.Errorf("audit entries: %+v", entries.Data)
	}
}

// TestAuditProject: an entry carries the project of what was changed,
// also when an admin of every project changed it, so that a project's
// log can be read by filtering on it.
func TestAuditProject(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	must[map[string]any](t, b.do(t, "POST", "/api/v1/destinations", map[string]any{"name": "ledger", "url": "https://example.com/h", "project": "shop"}), http.StatusCreated)
	if r := b.do(t, "POST", "/api/v1/destinations/ledger/pause?project=shop", nil); r.status != http.StatusOK {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	entries := must[page[store.AuditEntry]](t, b.do(t, "GET", "/api/v1/audit?project=shop", nil), http.StatusOK)
	var got []string
	for _, e := range entries.Data {
		got = append(got, e.Action+" "+e.Target)
	}
	if want := "POST /api/v1/destinations/{name}/pause shop/ledger|POST /api/v1/destinations shop/ledger"; strings.Join(got, "|") != want {
		t.Errorf("audit of project shop: %q, want %q", strings.Join(got, "|"), want)
	}
}

// TestAuditPagingAtMaxLimit: at the largest page, where the store will not
// return the extra row that tells whether another page follows, the audit
// log is paged as every other list is: a cursor when rows remain, none
// when they do not.
func TestAuditPagingAtMaxLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	for i := range 1001 {
		if err := b.store.AuditInsert(ctx, &store.AuditEntry{Actor: "alice", Action: "POST /api/v1/reload", Status: http.StatusOK}); err != nil {
			t.Fatalf("audit entry %d: %v", i, err)
		}
	}
	l := must[page[store.AuditEntry]](t, b.do(t, "GET", "/api/v1/audit?limit=1000", nil), http.StatusOK)
	if len(l.Data) != 1000 || l.NextCursor == "" {
		t.Fatalf("1001 entries: got %d, next_cursor %q; want 1000 and a cursor", len(l.Data), l.NextCursor)
	}
	l = must[page[store.AuditEntry]](t, b.do(t, "GET", "/api/v1/audit?limit=1000&cursor="+l.NextCursor, nil), http.StatusOK)
	if len(l.Data) != 1 || l.NextCursor != "" {
		t.Errorf("last page: %d entries, next_cursor %q; want 1 and none", len(l.Data), l.NextCursor)
	}
}
