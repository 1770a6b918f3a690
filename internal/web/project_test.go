package web_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/auth"
)

// TestProjectIsolationDashboard checks that a token of another project,
// logged in to the dashboard, sees none of the default project's
// sources, destinations, events, requests or tasks, that their pages are
// missing to it, and that its retry and pause are refused as for a
// missing delivery or destination.
func TestProjectIsolationDashboard(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	f := b.seed(t)
	ctx := context.Background()
	a := auth.New(&auth.Options{Store: b.store})
	if _, _, err := a.Create(ctx, access.Anonymous, &auth.CreateParams{Name: "root", Role: access.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	loginAs := func(project string) *testBundle {
		t.Helper()
		_, secret, err := a.Create(ctx, access.Anonymous, &auth.CreateParams{Name: "op@" + project, Role: access.RoleOperator, Project: project})
		if err != nil {
			t.Fatal(err)
		}
		jar, _ := cookiejar.New(nil)
		c := *b
		c.client = &http.Client{Jar: jar, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if resp, body := c.post(t, "/ui/login", url.Values{"token": {secret}, "next": {"/"}}, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login as %s: %d %s", project, resp.StatusCode, body)
		}
		return &c
	}
	other, own := loginAs("b"), loginAs("default")
	for _, path := range []string{"/", "/ui/events", "/ui/requests", "/ui/destinations", "/ui/sources", "/ui/tasks"} {
		resp, body := other.get(t, path)
		if resp.StatusCode != 200 {
			t.Errorf("%s as project b: %d", path, resp.StatusCode)
		}
		for _, s := range []string{f.eventID, f.requestID, f.deliveryID, "billing", "/e/stripe"} {
			if strings.Contains(body, s) {
				t.Errorf("%s as project b shows %q of the default project", path, s)
			}
		}
	}
	for _, path := range []string{"/ui/events/" + f.eventID, "/ui/requests/" + f.requestID} {
		if resp, _ := other.get(t, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s as project b: %d, want 404", path, resp.StatusCode)
		}
		if resp, _ := own.get(t, path); resp.StatusCode != 200 {
			t.Errorf("%s as the default project: %d, want 200", path, resp.StatusCode)
		}
	}
	csrf := other.csrf(t, "/ui/events")
	for _, path := range []string{"/ui/deliveries/" + f.deliveryID + "/retry", "/ui/destinations/billing/pause", "/ui/events/" + f.eventID + "/replay"} {
		if resp, body := other.post(t, path, url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s as project b: %d, want 404: %.200s", path, resp.StatusCode, body)
		}
	}
	if d, err := b.store.DestinationGet(ctx, "billing"); err != nil || d.Paused {
		t.Errorf("billing after project b's pause: %+v, %v", d, err)
	}
	if _, body := own.get(t, "/ui/events"); !strings.Contains(body, f.eventID) {
		t.Error("the default project's operator does not see its event")
	}
}
