package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/alert"
	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

func TestAlerts(t *testing.T) {
	t.Parallel()
	s := sqlitetest.Open(t, nil)
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(s, compiler, &catalog.Options{Refresh: time.Hour})
	mon := alert.New(nil, &alert.Options{ConsecutiveFailures: 2})
	mux := http.NewServeMux()
	api.New(s, cat, &api.Options{Token: testToken, Alerts: mon}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b := &testBundle{store: s, cat: cat, url: srv.URL, token: testToken, client: srv.Client()}

	// billing fails twice (alert opens, then resolves); audit fails twice
	// and stays open.
	for _, d := range []string{"billing", "billing", "audit", "audit"} {
		mon.ObserveAttempt(store.Attempt{Destination: d, StatusCode: 503}, "retry")
	}
	mon.ObserveAttempt(store.Attempt{Destination: "billing", StatusCode: 200, Success: true}, "succeeded")

	all := must[page[alert.Alert]](t, b.do(t, http.MethodGet, "/api/v1/alerts", nil), http.StatusOK)
	if len(all.Data) != 2 || all.Data[0].Destination != "audit" || !all.Data[0].Open() || all.Data[1].Destination != "billing" || all.Data[1].Open() {
		t.Errorf("alerts = %+v", all.Data)
	}
	open := must[page[alert.Alert]](t, b.do(t, http.MethodGet, "/api/v1/alerts?open=true", nil), http.StatusOK)
	if len(open.Data) != 1 || open.Data[0].Destination != "audit" || open.Data[0].Reason != alert.ReasonConsecutiveFailures || open.Data[0].LastError != "HTTP 503" {
		t.Errorf("open alerts = %+v", open.Data)
	}
	if r := b.do(t, http.MethodGet, "/api/v1/alerts?open=perhaps", nil); r.status != http.StatusBadRequest {
		t.Errorf("bad open: %d", r.status)
	}
	if r := b.do(t, http.MethodGet, "/api/v1/alerts?destination=x", nil); r.status != http.StatusBadRequest {
		t.Errorf("unknown parameter: %d", r.status)
	}
}

func TestAlertsWithoutMonitor(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	got := must[page[alert.Alert]](t, b.do(t, http.MethodGet, "/api/v1/alerts", nil), http.StatusOK)
	if got.Data == nil || len(got.Data) != 0 {
		t.Errorf("alerts = %#v, want an empty list", got.Data)
	}
}
