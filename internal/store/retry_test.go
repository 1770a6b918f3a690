package store_test

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mailroomhq/mailroom/internal/store"
)

func TestMatchType(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		pattern, typ string
		want         bool
	}{
		{"ping", "ping", true},
		{"ping", "pings", false},
		{"ping", "Ping", false},
		{"payment_intent.*", "payment_intent.succeeded", true},
		{"payment_intent.*", "payment_intent.", true},
		{"payment_intent.*", "payment_intent", false},
		{"payment_intent.*", "payment_intent.payment_failed.x", true},
		{"*.succeeded", "payment_intent.succeeded", true},
		{"*.succeeded", "payment_intent.succeeded.not", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYc.", false},
		{"*", "", true},
		{"**", "anything", true},
		{"*", "orders/create", true},
		{"orders/*", "orders/create", true},
		{"x", "", false},
		{"", "", true},
		{"?", "a", false}, // only * is special
	} {
		if got := store.MatchType(tt.pattern, tt.typ); got != tt.want {
			t.Errorf("MatchType(%q, %q) = %v, want %v", tt.pattern, tt.typ, got, tt.want)
		}
	}
}

// FuzzMatchType checks MatchType against a regular expression built from
// the pattern ("*" as ".*", everything else quoted), on valid UTF-8 (the
// oracle reads runes, MatchType bytes; they agree on valid text).
func FuzzMatchType(f *testing.F) {
	for _, s := range [][2]string{{"payment_intent.*", "payment_intent.succeeded"}, {"a*b*c", "aXbYbZc"}, {"*", ""}, {"*a*", "bab"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, typ string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(typ) || len(pattern) > 64 {
			t.Skip()
		}
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re := regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
		if got, want := store.MatchType(pattern, typ), re.MatchString(typ); got != want {
			t.Fatalf("MatchType(%q, %q) = %v, want %v", pattern, typ, got, want)
		}
	})
}

func TestRetryRuleFor(t *testing.T) {
	t.Parallel()
	c := store.Connection{Retry: []store.RetryRule{
		{Types: []string{"ping"}, MaxAttempts: 1},
		{Types: []string{"payment_intent.*", "charge.*"}, MaxAge: store.Duration(72 * time.Hour)},
		{Types: []string{"*"}, MaxAttempts: 3},
	}}
	for typ, want := range map[string]int{"ping": 0, "payment_intent.succeeded": 1, "charge.refunded": 1, "invoice.paid": 2, "": 2} {
		if r, i := c.RetryRuleFor(typ); i != want || r != &c.Retry[want] {
			t.Errorf("RetryRuleFor(%q) = rule %d, want %d", typ, i, want)
		}
	}
	c.Retry = c.Retry[:2]
	if r, i := c.RetryRuleFor("invoice.paid"); r != nil || i != -1 {
		t.Errorf("no rule matches: got rule %d", i)
	}
}

func TestRetryRuleAttempts(t *testing.T) {
	t.Parallel()
	d := store.Duration(time.Minute)
	for _, tt := range []struct {
		r    store.RetryRule
		want int
	}{
		{store.RetryRule{MaxAttempts: 1}, 1},
		{store.RetryRule{MaxAttempts: 4, MaxAge: d}, 4},
		{store.RetryRule{MaxAge: d}, store.MaxRetryAttempts},
		{store.RetryRule{MaxAge: d, Schedule: []store.Duration{d}}, store.MaxRetryAttempts},
		{store.RetryRule{Schedule: []store.Duration{d, d, d}}, 4},
		{store.RetryRule{Initial: d}, 8},
	} {
		if got := tt.r.Attempts(8); got != tt.want {
			t.Errorf("%+v.Attempts(8) = %d, want %d", tt.r, got, tt.want)
		}
	}
}

func TestConnectionValidateRetry(t *testing.T) {
	t.Parallel()
	d := func(s string) store.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return store.Duration(v)
	}
	for _, tt := range []struct {
		name  string
		rules []store.RetryRule
		want  []string
	}{
		{"valid", []store.RetryRule{
			{Types: []string{"payment_intent.*"}, MaxAge: d("72h")},
			{Types: []string{"ping"}, MaxAttempts: 1},
			{Types: []string{"invoice.*"}, MaxAttempts: 20, Schedule: []store.Duration{d("1m"), d("5m"), d("30m"), d("2h")}},
			{Types: []string{"*"}, Initial: d("5s"), Max: d("10m")},
		}, nil},
		{"no types", []store.RetryRule{{MaxAttempts: 1}}, []string{"retry[0].types"}},
		{"bad patterns", []store.RetryRule{{Types: []string{"", "a b", strings.Repeat("x", 257)}, MaxAttempts: 1}},
			[]string{"retry[0].types[0]", "retry[0].types[1]", "retry[0].types[2]"}},
		{"sets nothing", []store.RetryRule{{Types: []string{"ping"}}}, []string{"retry[0]"}},
		{"out of range", []store.RetryRule{{Types: []string{"a"}, MaxAttempts: 1001, MaxAge: -1, Initial: d("1h"), Max: d("1m")}},
			[]string{"retry[0].max_attempts", "retry[0].max_age", "retry[0].initial"}},
		{"schedule", []store.RetryRule{{Types: []string{"a"}, Schedule: []store.Duration{d("1m"), 0}, Initial: d("1s")}},
			[]string{"retry[0].initial", "retry[0].schedule[1]"}},
		{"shadowed by the same pattern", []store.RetryRule{
			{Types: []string{"ping", "pong"}, MaxAttempts: 1},
			{Types: []string{"ping"}, MaxAttempts: 5},
		}, []string{"retry[1].types"}},
		{"shadowed by a catch-all", []store.RetryRule{
			{Types: []string{"**"}, MaxAttempts: 3},
			{Types: []string{"payment_intent.*", "x"}, MaxAge: d("72h")},
		}, []string{"retry[1].types"}},
		{"partly overlapping is fine", []store.RetryRule{
			{Types: []string{"ping"}, MaxAttempts: 1},
			{Types: []string{"ping", "pong"}, MaxAttempts: 5},
		}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := store.Connection{Source: "s", Destination: "d", Retry: tt.rules}
			var got []string
			for _, e := range store.FieldErrors(c.Validate()) {
				got = append(got, e.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("fields = %v, want %v (%v)", got, tt.want, c.Validate())
			}
		})
	}
	many := store.Connection{Source: "s", Destination: "d", Retry: make([]store.RetryRule, store.MaxRetryRules+1)}
	if errs := store.FieldErrors(many.Validate()); len(errs) != 1 || errs[0].Field != "retry" {
		t.Errorf("too many rules: %v", errs)
	}
}
