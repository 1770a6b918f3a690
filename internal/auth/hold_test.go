package auth_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

// TestStreamEndsWithItsToken: a stream (GET /api/v1/events/stream behind
// the Guard) ends when its token stops being valid: revoked through the
// Authenticator, revoked in the store by someone else (another instance,
// the CLI), expired, or, for the anonymous stream of open mode, when the
// first token is created. A stream of the static api.token goes on.
// Before, the token was checked once, when the stream started, and a
// revoked token's stream kept sending events, bodies included.
func TestStreamEndsWithItsToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlitetest.Open(t, nil)
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	clock := func() time.Time { return *now.Load() }
	a := auth.New(&auth.Options{Store: st, Now: clock, RecheckEvery: 20 * time.Millisecond})
	g := auth.NewGuard(a, nil)

	ended := make(chan error, 16)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/events/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("open\n"))
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		ended <- context.Cause(r.Context())
	})
	h := g.Wrap(mux, func(r *http.Request) string { _, p := mux.Handler(r); return p },
		func(w http.ResponseWriter, _ *http.Request, status int, msg string) { http.Error(w, msg, status) })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the streams' own cleanups, which close them

	// open starts a stream with token and returns once it is open.
	open := func(token string) context.CancelFunc {
		t.Helper()
		cctx, cancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(cctx, "GET", srv.URL+"/api/v1/events/stream", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		if resp.StatusCode != 200 {
			t.Fatalf("stream: %d", resp.StatusCode)
		}
		if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "open\n" {
			t.Fatalf("stream: %q, %v", line, err)
		}
		return func() { cancel(); resp.Body.Close() }
	}
	// wantEnd waits for the one stream open to end because of its token.
	wantEnd := func(what string) {
		t.Helper()
		select {
		case err := <-ended:
			if !errors.Is(err, auth.ErrCredentialEnded) {
				t.Errorf("%s: the stream ended with %v, want ErrCredentialEnded", what, err)
			}
		case <-time.After(30 * time.Second): // a failure deadline, not a measure
			t.Fatalf("%s: the stream is still open", what)
		}
	}

	// Open mode: the anonymous stream ends with the first token.
	closeAnon := open("")
	root, rootSecret, err := a.Create(ctx, access.Anonymous, &auth.CreateParams{Name: "root", Role: access.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	wantEnd("open mode ended")
	closeAnon()
	rootP, _ := a.Token(ctx, rootSecret)

	// Revoked through the Authenticator (the API, this instance).
	v1, v1Secret, err := a.Create(ctx, rootP, &auth.CreateParams{Name: "v1", Role: access.RoleViewer, Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	closeRoot := open(rootSecret)
	defer closeRoot()
	c := open(v1Secret)
	if _, err := a.Revoke(ctx, v1.ID); err != nil {
		t.Fatal(err)
	}
	wantEnd("revoked here")
	c()

	// Revoked in the store by someone else: found by the recheck.
	v2, v2Secret, err := a.Create(ctx, rootP, &auth.CreateParams{Name: "v2", Role: access.RoleViewer, Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	c = open(v2Secret)
	if _, err := st.TokenRevoke(ctx, v2.ID, clock()); err != nil {
		t.Fatal(err)
	}
	wantEnd("revoked elsewhere")
	c()

	// Expired while streaming.
	_, v3Secret, err := a.Create(ctx, rootP, &auth.CreateParams{Name: "v3", Role: access.RoleViewer, Project: "shop", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c = open(v3Secret)
	later := start.Add(2 * time.Hour)
	now.Store(&later)
	wantEnd("expired")
	c()

	// The admin's stream is still open: only the streams of ended tokens end.
	select {
	case err := <-ended:
		t.Errorf("another stream ended: %v (root %s)", err, root.ID)
	default:
	}
}
