package deliver

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// TestDecideFollowsThePlan: decide, the one place a failed attempt's
// retry is decided, follows a connection rule's attempts, age and
// schedule where it applies, and the destination's policy otherwise; and
// what it decided is what the delivery shows.
func TestDecideFollowsThePlan(t *testing.T) {
	t.Parallel()
	d := &Dispatcher{rnd: func() float64 { return 1 }}
	cfg := &destConfig{dest: &store.Destination{Name: "billing", Retry: store.RetryPolicy{RetryOn: []int{500, 503}}},
		maxAttempts: 5, initial: time.Second, max: time.Minute}
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rule := func(r store.RetryRule) *retryPlan {
		return rulePlan(cfg, "stripe->billing", 1, &r, "payment_intent.succeeded")
	}
	m := store.Duration(time.Minute)
	failed := func(n, status int) *store.Attempt { return &store.Attempt{Number: n, StatusCode: status} }
	for _, tt := range []struct {
		name       string
		plan       *retryPlan
		a          *store.Attempt
		now        time.Time
		retryAfter time.Duration
		outcome    string
		next       time.Duration // after now, for a retry
		reason     string
	}{
		{"destination backoff", destinationPlan(cfg), failed(2, 500), created, 0, OutcomeRetry, 2 * time.Second, ""},
		{"destination attempts", destinationPlan(cfg), failed(5, 500), created, 0, OutcomeDead, 0, "5 of 5 attempts made"},
		{"retry_on applies to rules too", rule(store.RetryRule{MaxAge: m}), failed(1, 404), created, 0, OutcomeDead, 0,
			"status 404 is not in the destination's retry_on"},
		{"never retried", rule(store.RetryRule{MaxAttempts: 1}), failed(1, 500), created, 0, OutcomeDead, 0, "1 of 1 attempts made"},
		{"max_age lifts the destination's attempt bound", rule(store.RetryRule{MaxAge: store.Duration(72 * time.Hour)}),
			failed(40, 0), created.Add(time.Hour), 0, OutcomeRetry, time.Minute, ""},
		{"the last retry goes at the deadline", rule(store.RetryRule{MaxAge: store.Duration(72 * time.Hour)}),
			failed(70, 0), created.Add(72*time.Hour - 10*time.Second), 0, OutcomeRetry, 10 * time.Second, ""},
		{"max_age reached", rule(store.RetryRule{MaxAge: store.Duration(72 * time.Hour)}),
			failed(71, 503), created.Add(72 * time.Hour), 0, OutcomeDead, 0, "max_age 72h0m0s reached"},
		{"max_age alone allows at most 1000 attempts", rule(store.RetryRule{MaxAge: store.Duration(720 * time.Hour), Schedule: []store.Duration{store.Duration(time.Second)}}),
			failed(1000, 503), created.Add(time.Hour), 0, OutcomeDead, 0, "1000 of 1000 attempts made"},
		{"schedule", rule(store.RetryRule{Schedule: []store.Duration{m, 5 * m, 30 * m}}), failed(2, 500), created, 0, OutcomeRetry, 5 * time.Minute, ""},
		{"schedule bounds the attempts", rule(store.RetryRule{Schedule: []store.Duration{m, 5 * m, 30 * m}}), failed(4, 500), created, 0,
			OutcomeDead, 0, "4 of 4 attempts made"},
		{"schedule's last delay repeats", rule(store.RetryRule{MaxAttempts: 10, Schedule: []store.Duration{m, 5 * m}}), failed(7, 500), created, 0,
			OutcomeRetry, 5 * time.Minute, ""},
		{"a longer Retry-After lengthens a scheduled delay", rule(store.RetryRule{MaxAttempts: 10, Schedule: []store.Duration{m}, Max: 60 * m}),
			failed(1, 503), created, 3 * time.Minute, OutcomeRetry, 3 * time.Minute, ""},
		{"up to max", rule(store.RetryRule{MaxAttempts: 10, Schedule: []store.Duration{m}, Max: 2 * m}),
			failed(1, 503), created, 3 * time.Minute, OutcomeRetry, 2 * time.Minute, ""},
		{"a shorter one does not", rule(store.RetryRule{MaxAttempts: 10, Schedule: []store.Duration{5 * m}}),
			failed(1, 503), created, time.Minute, OutcomeRetry, 5 * time.Minute, ""},
		{"rule's own backoff", rule(store.RetryRule{MaxAttempts: 10, Initial: store.Duration(10 * time.Second), Max: store.Duration(time.Hour)}),
			failed(3, 500), created, 0, OutcomeRetry, 40 * time.Second, ""},
		{"410 pauses whatever the rule", rule(store.RetryRule{MaxAttempts: 1}), failed(1, http.StatusGone), created, 0, OutcomePaused, 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, next, outcome, applied := d.decide(tt.plan, tt.a, created, tt.retryAfter, false, tt.now)
			if outcome != tt.outcome || applied.Decision != tt.outcome || applied.Reason != tt.reason {
				t.Fatalf("outcome %s, applied %s; want %s (%q)", outcome, applied, tt.outcome, tt.reason)
			}
			switch outcome {
			case OutcomeRetry:
				if status != store.DeliveryPending || next.Sub(tt.now) != tt.next {
					t.Errorf("next in %s (%s), want %s", next.Sub(tt.now), status, tt.next)
				}
			case OutcomeDead:
				if status != store.DeliveryDead || !next.IsZero() {
					t.Errorf("dead as %s, next %s", status, next)
				}
			}
		})
	}
	// What the delivery shows names the rule and its bounds.
	_, _, _, applied := d.decide(rule(store.RetryRule{MaxAttempts: 1}), failed(1, 500), created, 0, false, created)
	applied.Types = []string{"ping"}
	want := "connection stripe->billing retry[1] (types ping, event type payment_intent.succeeded): max_attempts 1, backoff 1s to 1m0s; dead: 1 of 1 attempts made"
	if got := applied.String(); got != want {
		t.Errorf("shown as\n%s\nwant\n%s", got, want)
	}
	if got := destinationPlan(cfg).applied.String(); !strings.HasPrefix(got, "destination billing: max_attempts 5") {
		t.Errorf("destination policy shown as %q", got)
	}
}
