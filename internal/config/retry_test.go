package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/store"
)

// TestConnectionRetryRules: a connection's retry rules load as written,
// and each problem in them is reported with file, line and field.
func TestConnectionRetryRules(t *testing.T) {
	t.Parallel()
	head := `sources:
  - name: stripe
    verify: {type: stripe, secret: whsec_x}
destinations:
  - name: billing
    url: http://127.0.0.1:9000/x
connections:
  - id: stripe-to-billing
    source: stripe
    destination: billing
    retry:
`
	good := head + `      - types: ["payment_intent.*"]
        max_age: 72h
      - types: [ping]
        max_attempts: 1
      - types: ["invoice.*", "charge.*"]
        max_attempts: 20
        schedule: [1m, 5m, 30m, 2h]
`
	c, err := config.Parse([]byte(good), "cfg.yaml", realOptions(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.RetryRule{
		{Types: []string{"payment_intent.*"}, MaxAge: store.Duration(72 * time.Hour)},
		{Types: []string{"ping"}, MaxAttempts: 1},
		{Types: []string{"invoice.*", "charge.*"}, MaxAttempts: 20, Schedule: []store.Duration{
			store.Duration(time.Minute), store.Duration(5 * time.Minute), store.Duration(30 * time.Minute), store.Duration(2 * time.Hour)}},
	}
	if got := c.Connections[0].Retry; len(got) != 3 || got[0].MaxAge != want[0].MaxAge || got[1].MaxAttempts != 1 ||
		strings.Join(got[2].Types, ",") != "invoice.*,charge.*" || len(got[2].Schedule) != 4 || got[2].Schedule[3] != want[2].Schedule[3] {
		t.Errorf("rules = %+v, want %+v", got, want)
	}

	bad := head + `      - types: [ping]
        max_attempts: 1
      - types: [ping]
        max_attempts: 3
      - types: ["a b"]
        max_age: -1h
        schedule: [1m, 0s]
      - max_attempts: 2
      - types: [x]
        attempts: 2
`
	_, err = config.Parse([]byte(bad), "cfg.yaml", realOptions(t, nil))
	if err == nil {
		t.Fatal("Parse accepted the bad rules")
	}
	var got []string
	for _, e := range configErrors(t, err) {
		got = append(got, e.Error())
	}
	for _, w := range []string{
		`cfg.yaml:21: connections[0].retry[4].attempts: unknown field`,
		`cfg.yaml:14: connections[0].retry[1].types: never applies: retry[0] matches these types first`,
		`cfg.yaml:16: connections[0].retry[2].types[0]: "a b": an event type pattern has no spaces`,
		`cfg.yaml:17: connections[0].retry[2].max_age: invalid duration "-1h": must not be negative`,
		`cfg.yaml:18: connections[0].retry[2].schedule[1]: must be positive`,
		`cfg.yaml:19: connections[0].retry[3].types: required`,
	} {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("no error %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
}
