package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/audit"
	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

func bearer(token string) *http.Request {
	r := httptest.NewRequest("GET", "/api/v1/events", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func TestStoredTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlitetest.Open(t, nil)
	now := time.Now()
	clock := func() time.Time { return now }
	a := auth.New(&auth.Options{Store: st, Now: clock})

	// No api.token and no stored token: open, every request is anonymous.
	if p, err := a.Request(bearer("")); err != nil || p != access.Anonymous {
		t.Fatalf("open mode: %+v, %v", p, err)
	}
	// The first token must be an admin's, or nobody could manage tokens.
	if _, _, err := a.Create(ctx, access.Anonymous, &auth.CreateParams{Name: "v", Role: access.RoleViewer}); !errors.Is(err, auth.ErrLockout) {
		t.Fatalf("first token a viewer's: %v, want ErrLockout", err)
	}
	// The refusal names the role as it is, whatever article it would take.
	if _, _, err := a.Create(ctx, access.Anonymous, &auth.CreateParams{Name: "o", Role: access.RoleOperator}); err == nil ||
		!strings.Contains(err.Error(), "so a token of role operator would be the only way in") {
		t.Fatalf("first token an operator's: %v, want it to say a token of role operator would be the only way in", err)
	}
	admin, adminSecret, err := a.Create(ctx, access.Anonymous, &auth.CreateParams{Name: "root", Role: access.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(adminSecret, auth.TokenPrefix) || len(adminSecret) != len(auth.TokenPrefix)+43 {
		t.Errorf("token %q: want mr_ and 43 base64url characters", adminSecret)
	}
	if string(admin.Hash) != string(auth.Hash(adminSecret)) || strings.Contains(mustJSON(t, admin), adminSecret) {
		t.Error("the stored record is not the token's hash, or shows the token")
	}
	// Now a token is needed.
	if _, err := a.Request(bearer("")); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("no token after one was created: %v", err)
	}
	viewer, viewerSecret, err := a.Create(ctx, access.Principal{Name: "root"}, &auth.CreateParams{Name: "dash", Role: access.RoleViewer, Project: "shop", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if viewer.CreatedBy != "root" || !viewer.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("viewer token: %+v", viewer)
	}
	want := access.Principal{TokenID: viewer.ID, Name: "dash", Role: access.RoleViewer, Project: "shop"}
	if p, err := a.Request(bearer(viewerSecret)); err != nil || p != want {
		t.Errorf("viewer token: %+v, %v; want %+v", p, err, want)
	}
	if p, err := a.ByID(ctx, viewer.ID); err != nil || p != want {
		t.Errorf("ByID(viewer): %+v, %v", p, err)
	}
	for _, bad := range []string{viewerSecret + "x", viewerSecret[:len(viewerSecret)-1], "mr_nope", "api-token"} {
		if _, err := a.Request(bearer(bad)); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("token %q: %v, want ErrUnauthenticated", bad, err)
		}
	}
	// Used: last_used_at is recorded.
	if got, _ := st.TokenGet(ctx, viewer.ID); got.LastUsedAt.IsZero() {
		t.Error("last_used_at not recorded")
	}
	// Expired: refused, by bearer and by session.
	now = now.Add(time.Hour)
	if _, err := a.Request(bearer(viewerSecret)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("expired token: %v", err)
	}
	if _, err := a.ByID(ctx, viewer.ID); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("ByID of an expired token: %v", err)
	}
	op, opSecret, err := a.Create(ctx, access.Principal{Name: "root"}, &auth.CreateParams{Name: "ops", Role: access.RoleOperator})
	if err != nil || op.Project != access.DefaultProject {
		t.Fatalf("operator without a project: %+v, %v (want the default project)", op, err)
	}
	// The last admin token cannot go while others remain and no api.token is set.
	if _, err := a.Revoke(ctx, admin.ID); !errors.Is(err, auth.ErrLockout) {
		t.Errorf("revoke the last admin: %v, want ErrLockout", err)
	}
	if _, err := a.Revoke(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Request(bearer(opSecret)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("revoked token: %v", err)
	}
	// The admin is the only token left: revoking it opens mailroom again.
	if _, err := a.Revoke(ctx, admin.ID); err != nil {
		t.Fatal(err)
	}
	if p, err := a.Request(bearer("")); err != nil || p != access.Anonymous {
		t.Errorf("after the last token went: %+v, %v; want open", p, err)
	}
	if _, err := a.Revoke(ctx, "tok_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke a missing token: %v", err)
	}
}

func TestStaticToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlitetest.Open(t, nil)
	a := auth.New(&auth.Options{Store: st, Static: []auth.Static{auth.AdminToken("static-admin-token-0123456789")}})
	if _, err := a.Request(bearer("")); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("api.token set, no token sent: %v", err)
	}
	p, err := a.Request(bearer("static-admin-token-0123456789"))
	if err != nil || p.TokenID != auth.StaticTokenID || p.Role != access.RoleAdmin || !p.AllProjects() {
		t.Fatalf("api.token: %+v, %v", p, err)
	}
	if p, err := a.ByID(ctx, auth.StaticTokenID); err != nil || p.Role != access.RoleAdmin {
		t.Errorf("ByID(api): %+v, %v", p, err)
	}
	if _, err := a.ByID(ctx, ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("anonymous session with api.token set: %v", err)
	}
	// With api.token set, a viewer may be the first stored token, and the
	// last admin token may go.
	_, _, err = a.Create(ctx, p, &auth.CreateParams{Name: "v", Role: access.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	adm, _, err := a.Create(ctx, p, &auth.CreateParams{Name: "a", Role: access.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revoke(ctx, adm.ID); err != nil {
		t.Errorf("revoke the last stored admin with api.token set: %v", err)
	}
	if _, _, err := a.Create(ctx, p, &auth.CreateParams{Name: "a", Role: access.RoleAdmin, Project: "x"}); err == nil {
		t.Error("an admin token with a project was created")
	}
	if _, _, err := a.Create(ctx, p, &auth.CreateParams{Name: "a", Role: "root"}); err == nil {
		t.Error("a token with an unknown role was created")
	}
}

func TestParseExpiry(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"": 0, "0": 0, "90d": 90 * 24 * time.Hour, "12h": 12 * time.Hour, "1d": 24 * time.Hour} {
		if got, err := auth.ParseExpiry(in); err != nil || got != want {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-1h", "xd", "-3d", "90", "1w"} {
		if _, err := auth.ParseExpiry(in); err == nil {
			t.Errorf("ParseExpiry(%q) took it", in)
		}
	}
}

// TestGuard checks the middleware: 401 without a token, 403 for a role
// the route's permission is not given to, and an audit entry for each
// mutating request it lets through, with the handler's before/after and
// never a secret.
func TestGuard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlitetest.Open(t, nil)
	a := auth.New(&auth.Options{Store: st, Static: []auth.Static{auth.AdminToken("static-admin-token-0123456789")}})
	admin, _ := a.Request(bearer("static-admin-token-0123456789"))
	_, viewer, err := a.Create(ctx, admin, &auth.CreateParams{Name: "viewer", Role: access.RoleViewer, Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	_, operator, err := a.Create(ctx, admin, &auth.CreateParams{Name: "ops", Role: access.RoleOperator, Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	g := auth.NewGuard(a, &auth.GuardOptions{Audit: st})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/destinations/{name}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
	mux.HandleFunc("PUT /api/v1/destinations/{name}", func(w http.ResponseWriter, r *http.Request) {
		audit.Before(r.Context(), map[string]any{"url": "https://user:pw@old.example/"})
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"name":"d","secret":"whsec_live","url":"https://new.example/"}`)
	})
	h := g.Wrap(mux, func(r *http.Request) string { _, p := mux.Handler(r); return p },
		func(w http.ResponseWriter, _ *http.Request, status int, msg string) { http.Error(w, msg, status) })
	srv := httptest.NewServer(h)
	defer srv.Close()
	do := func(method, token string) int {
		req, _ := http.NewRequest(method, srv.URL+"/api/v1/destinations/d", strings.NewReader("{}"))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		method, token string
		want          int
	}{
		{"GET", "", 401}, {"PUT", "", 401}, {"GET", "mr_wrong", 401},
		{"GET", viewer, 200}, {"PUT", viewer, 403},
		{"PUT", operator, 200},
	} {
		if got := do(tc.method, tc.token); got != tc.want {
			t.Errorf("%s with %.8s…: %d, want %d", tc.method, tc.token, got, tc.want)
		}
	}
	es, err := st.AuditList(ctx, nil)
	if err != nil || len(es) != 1 {
		t.Fatalf("audit entries: %d, %v; want 1 (the operator's PUT)", len(es), err)
	}
	e := es[0]
	if e.Actor != "ops" || e.Role != "operator" || e.Project != "shop" || e.Action != "PUT /api/v1/destinations/{name}" || e.Target != "d" || e.Status != 200 {
		t.Errorf("entry: %+v", e)
	}
	if b := string(e.Before) + string(e.After); strings.Contains(b, "whsec_live") || strings.Contains(b, "pw@") || !strings.Contains(b, "new.example") {
		t.Errorf("before/after not redacted, or missing: %s / %s", e.Before, e.After)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
