package main

import (
	"log/slog"
	"net/http"

	"github.com/mailroomhq/mailroom/internal/alert"
	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/httpguard"
	"github.com/mailroomhq/mailroom/internal/store"
)

// newAlertMonitor builds the alert monitor from the alerts section. With
// alerts disabled it watches nothing (both thresholds zero) but still
// serves an empty list.
func newAlertMonitor(st store.Store, cfg *config.Config, log *slog.Logger) *alert.Monitor {
	a := cfg.Alerts
	if a.Disabled {
		return alert.New(nil, &alert.Options{Logger: log})
	}
	return alert.New(st, &alert.Options{
		ConsecutiveFailures: a.ConsecutiveFailures,
		DeadDeliveries:      a.DeadDeliveries,
		URL:                 a.URL,
		Logger:              log,
	})
}

// metricsHandler guards the /metrics handler h. On a loopback listener a
// scrape without a token is open, as Prometheus scrapes usually are; a
// scrape with one is checked and scoped by it as anywhere else (a
// project's token sees its project's series, a revoked or unknown one is
// 401), so a token never widens or is silently ignored. Otherwise it asks
// for a bearer token whose role may read (admin, operator, viewer: g
// checks it against the permission table), and without api.token
// configured it is refused, like the admin API.
func metricsHandler(h http.Handler, g *auth.Guard, token, listen string) http.Handler {
	guarded := g.Wrap(h, func(*http.Request) string { return "GET /metrics" }, func(w http.ResponseWriter, _ *http.Request, status int, msg string) {
		http.Error(w, msg, status)
	})
	if isLoopback(listen) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := httpguard.BearerToken(r); ok {
				guarded.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	if token == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "metrics disabled: set api.token (or MAILROOM_API_TOKEN) to serve /metrics on a non-loopback listener", http.StatusForbidden)
		})
	}
	return guarded
}

// newAuthenticator returns the authenticator of operator requests: the
// static api.token as the bootstrap admin, and the tokens stored in st.
func newAuthenticator(st store.Store, cfg *config.Config, log *slog.Logger) *auth.Authenticator {
	return auth.New(&auth.Options{Store: st, Logger: log, Static: []auth.Static{auth.AdminToken(cfg.API.Token)}})
}

// onAttempts calls every non-nil hook in turn, for deliver.Options.OnAttempt.
func onAttempts(hooks ...func(store.Attempt, string)) func(store.Attempt, string) {
	return func(a store.Attempt, outcome string) {
		for _, h := range hooks {
			if h != nil {
				h(a, outcome)
			}
		}
	}
}
