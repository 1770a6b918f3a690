package main

import (
	"log/slog"
	"net/http"

	"github.com/mailroomhq/mailroom/internal/alert"
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

// metricsHandler guards the /metrics handler h. On a loopback listener it
// is open, as Prometheus scrapes usually are; otherwise it asks for the
// API token as a bearer token, and without a token configured it is
// refused, like the admin API.
func metricsHandler(h http.Handler, token, listen string) http.Handler {
	if isLoopback(listen) {
		return h
	}
	if token == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "metrics disabled: set api.token (or MAILROOM_API_TOKEN) to serve /metrics on a non-loopback listener", http.StatusForbidden)
		})
	}
	tokens := httpguard.NewTokens(map[string]string{token: "api"})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := tokens.Authenticate(r); !ok {
			httpguard.Challenge(w, "missing or invalid bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
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
