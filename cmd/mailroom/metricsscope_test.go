package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/metrics"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

// TestMetricsLoopbackToken: on a loopback listener a scrape without a
// token sees every series (as documented), but a scrape with a token is
// scoped by it: project b's viewer sees b's series only, and a revoked or
// unknown token is 401. Before, the loopback /metrics ignored the token:
// project b's operator read project a's series, and a revoked token got
// 200 (seen on the binary).
func TestMetricsLoopbackToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlitetest.Open(t, nil)
	a := auth.New(&auth.Options{Store: st})
	root, _, err := a.Create(ctx, access.Anonymous, &auth.CreateParams{Name: "root", Role: access.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	rootP := access.Principal{TokenID: root.ID, Name: "root", Role: access.RoleAdmin}
	_, viewerB, err := a.Create(ctx, rootP, &auth.CreateParams{Name: "vb", Role: access.RoleViewer, Project: "b"})
	if err != nil {
		t.Fatal(err)
	}
	gone, goneSecret, err := a.Create(ctx, rootP, &auth.CreateParams{Name: "gone", Role: access.RoleViewer, Project: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revoke(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(st, &metrics.Options{NoRuntimeCollectors: true})
	m.ObserveIngest("a/s", metrics.OutcomeAccepted, time.Millisecond)
	m.ObserveIngest("b/s", metrics.OutcomeAccepted, time.Millisecond)
	srv := httptest.NewServer(metricsHandler(m.Handler(), auth.NewGuard(a, nil), "", "127.0.0.1:8080"))
	t.Cleanup(srv.Close)
	scrape := func(token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := scrape(""); code != 200 || !strings.Contains(body, `project="a"`) || !strings.Contains(body, `project="b"`) {
		t.Errorf("no token on loopback: %d, want 200 with every project's series:\n%.500s", code, body)
	}
	if code, body := scrape(viewerB); code != 200 || strings.Contains(body, `project="a"`) || !strings.Contains(body, `project="b",source="b/s"`) {
		t.Errorf("project b's token on loopback: %d, want 200 with b's series only:\n%.2000s", code, body)
	}
	for _, tok := range []string{goneSecret, "mr_unknown"} {
		if code, _ := scrape(tok); code != http.StatusUnauthorized {
			t.Errorf("token %.6s… (revoked or unknown) on loopback: %d, want 401", tok, code)
		}
	}
}
