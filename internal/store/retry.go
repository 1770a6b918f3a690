package store

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Limits of a connection's retry rules ([Connection.Retry]).
const (
	// MaxRetryRules is how many rules one connection may hold.
	MaxRetryRules = 50
	// MaxRetryTypes is how many type patterns one rule may hold.
	MaxRetryTypes = 100
	// MaxRetrySchedule is how many delays a rule's schedule may list.
	MaxRetrySchedule = 100
	// maxTypePattern bounds one type pattern.
	maxTypePattern = 256
)

// RetryRule is a connection's retry policy for the events whose type
// matches one of Types; it replaces its destination's [RetryPolicy] for
// them. A connection's rules are tried in order and the first whose Types
// match the event's type applies; an event that none matches gets the
// destination's policy. Fields a rule leaves zero come from the
// destination's policy, except that a rule with MaxAge or Schedule and no
// MaxAttempts is not bounded by the destination's attempt count (see
// [RetryRule.Attempts]). The destination's retry_on, and the 410 pause,
// apply whatever the rule.
type RetryRule struct {
	// Types are patterns of event types: "*" stands for any run of
	// characters (dots included), everything else for itself, compared
	// exactly ("payment_intent.*", "ping", "*"). An event without a type
	// is matched only by a pattern that is all stars.
	Types []string `yaml:"types" json:"types"`
	// MaxAttempts is the total number of automatic attempts (1 means
	// never retried). Zero means: [MaxRetryAttempts] when MaxAge is set
	// (the age bounds them), len(Schedule)+1 when Schedule is, else the
	// destination's.
	MaxAttempts int `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"`
	// MaxAge stops retrying once the delivery is this old (counted from
	// when it was created, with the event): the last retry is scheduled
	// no later than that, and an attempt that fails after it is the last.
	// Zero means no age limit.
	MaxAge Duration `yaml:"max_age,omitempty" json:"max_age,omitempty"`
	// Schedule lists the delays before each retry: the first after the
	// first attempt, and so on; the last is repeated while MaxAttempts or
	// MaxAge allow more. Without MaxAttempts and MaxAge, the schedule's
	// length bounds the attempts (len(Schedule)+1). Delays are exact, not
	// jittered. Empty means exponential backoff (Initial, Max).
	Schedule []Duration `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	// Initial is the first backoff ceiling, as in [RetryPolicy]. Zero
	// means the destination's. Not with Schedule.
	Initial Duration `yaml:"initial,omitempty" json:"initial,omitempty"`
	// Max caps the backoff and a receiver's Retry-After, as in
	// [RetryPolicy]. Zero means the destination's.
	Max Duration `yaml:"max,omitempty" json:"max,omitempty"`
}

// MatchType reports whether the event type typ matches pattern: "*"
// stands for any run of characters, including none and including dots;
// every other character stands for itself. Matching runs in
// O(len(pattern)·len(typ)) at worst.
func MatchType(pattern, typ string) bool {
	// Iterative glob with one backtrack point: the last star seen.
	p, t := 0, 0
	star, mark := -1, 0
	for t < len(typ) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, t
			p++
		case p < len(pattern) && pattern[p] == typ[t]:
			p++
			t++
		case star >= 0:
			p = star + 1
			mark++
			t = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Matches reports whether one of r's Types matches the event type typ.
func (r *RetryRule) Matches(typ string) bool {
	return slices.ContainsFunc(r.Types, func(p string) bool { return MatchType(p, typ) })
}

// RetryRuleFor returns the first of c's retry rules that matches the event
// type typ, and its index, or nil and -1 when none does (the destination's
// policy applies).
func (c *Connection) RetryRuleFor(typ string) (*RetryRule, int) {
	for i := range c.Retry {
		if c.Retry[i].Matches(typ) {
			return &c.Retry[i], i
		}
	}
	return nil, -1
}

// Attempts is the bound on automatic attempts that r sets, given the
// destination's bound dest: MaxAttempts when set; else, when MaxAge is
// set, [MaxRetryAttempts] (the age is the bound meant, the cap keeps a
// short schedule over a long age from storing attempts without end); else
// len(Schedule)+1 when a schedule is set; else dest.
func (r *RetryRule) Attempts(dest int) int {
	switch {
	case r.MaxAttempts > 0:
		return r.MaxAttempts
	case r.MaxAge > 0:
		return MaxRetryAttempts
	case len(r.Schedule) > 0:
		return len(r.Schedule) + 1
	}
	return dest
}

// validateRetry checks c's retry rules into p.
func (c *Connection) validateRetry(p *problems) {
	if len(c.Retry) > MaxRetryRules {
		p.add("retry", "%d rules, at most %d", len(c.Retry), MaxRetryRules)
		return
	}
	// Patterns of earlier rules, to point out a rule that can never apply.
	earlier := map[string]int{}
	for i, r := range c.Retry {
		f := "retry[" + strconv.Itoa(i) + "]"
		switch {
		case len(r.Types) == 0:
			p.add(f+".types", `required: the event types the rule applies to, e.g. ["payment_intent.*"] (["*"] for all)`)
		case len(r.Types) > MaxRetryTypes:
			p.add(f+".types", "%d patterns, at most %d", len(r.Types), MaxRetryTypes)
		}
		for j, t := range r.Types {
			tf := f + ".types[" + strconv.Itoa(j) + "]"
			switch {
			case t == "":
				p.add(tf, `must not be empty (write "*" for any type)`)
			case len(t) > maxTypePattern:
				p.add(tf, "longer than %d bytes", maxTypePattern)
			case strings.ContainsAny(t, " \t\r\n\x00"):
				p.add(tf, "%q: an event type pattern has no spaces or control characters", t)
			}
		}
		// A rule all of whose patterns an earlier rule has (or that comes
		// after a catch-all) can never apply: almost surely a mistake in
		// the order.
		if k, ok := shadowed(earlier, r.Types); ok {
			p.add(f+".types", "never applies: retry[%d] matches these types first (the first matching rule wins)", k)
		}
		for _, t := range r.Types {
			if _, ok := earlier[patternKey(t)]; !ok {
				earlier[patternKey(t)] = i
			}
		}
		if r.MaxAttempts < 0 || r.MaxAttempts > MaxRetryAttempts {
			p.add(f+".max_attempts", "%d is out of range (want 1 to %d; 1 means never retried)", r.MaxAttempts, MaxRetryAttempts)
		}
		if r.MaxAge < 0 {
			p.add(f+".max_age", "must not be negative")
		}
		if r.Initial < 0 {
			p.add(f+".initial", "must not be negative")
		}
		if r.Max < 0 {
			p.add(f+".max", "must not be negative")
		}
		if r.Initial > 0 && r.Max > 0 && r.Initial > r.Max {
			p.add(f+".initial", "%s is longer than max %s", r.Initial, r.Max)
		}
		if len(r.Schedule) > 0 && r.Initial > 0 {
			p.add(f+".initial", "not with schedule: the schedule gives every delay")
		}
		if len(r.Schedule) > MaxRetrySchedule {
			p.add(f+".schedule", "%d delays, at most %d", len(r.Schedule), MaxRetrySchedule)
		}
		for j, d := range r.Schedule {
			if d <= 0 {
				p.add(f+".schedule["+strconv.Itoa(j)+"]", "must be positive")
			}
		}
		if r.MaxAttempts == 0 && r.MaxAge == 0 && len(r.Schedule) == 0 && r.Initial == 0 && r.Max == 0 {
			p.add(f, "sets nothing: give max_attempts, max_age, schedule, initial or max (the destination's retry policy applies to types no rule matches)")
		}
	}
}

// patternKey is the key of a type pattern among those seen: every
// all-star pattern is "*", the catch-all.
func patternKey(t string) string {
	if t != "" && strings.Trim(t, "*") == "" {
		return "*"
	}
	return t
}

// shadowed reports whether every one of types is matched first by an
// earlier rule (earlier maps patterns to the first rule holding them), and
// the index of the earliest such rule.
func shadowed(earlier map[string]int, types []string) (int, bool) {
	if len(types) == 0 {
		return 0, false
	}
	first := -1
	for _, t := range types {
		k, ok := earlier[patternKey(t)]
		if !ok {
			k, ok = earlier["*"]
		}
		if !ok {
			return 0, false
		}
		if first < 0 || k < first {
			first = k
		}
	}
	return first, true
}

// RetryApplied is the retry policy that decided what became of a
// delivery after its last attempt, as the delivery shows it: which policy
// (a rule of its connection, or its destination's), its bounds, and what
// it decided.
type RetryApplied struct {
	// Policy names it: "connection <id> retry[<i>]" for a connection's
	// rule, "destination <name>" for the destination's policy.
	Policy string `json:"policy"`
	// EventType is the type the rule was matched against.
	EventType string `json:"event_type,omitempty"`
	// Types are the matching rule's patterns.
	Types []string `json:"types,omitempty"`
	// MaxAttempts bounds the automatic attempts.
	MaxAttempts int        `json:"max_attempts,omitempty"`
	MaxAge      Duration   `json:"max_age,omitempty"`
	Schedule    []Duration `json:"schedule,omitempty"`
	Initial     Duration   `json:"initial,omitempty"`
	Max         Duration   `json:"max,omitempty"`
	// Decision says what the policy decided after the last attempt:
	// "succeeded", "retry", "dead", "paused" or "canceled".
	Decision string `json:"decision"`
	// Reason says why, for a dead delivery ("1 of 1 attempts made",
	// "max_age 72h0m0s reached", "status 404 is not in retry_on").
	Reason string `json:"reason,omitempty"`
}

// String is a one-line account of r for the CLI and the dashboard:
// "connection c retry[1] (types ping): max_attempts 1; dead: 1 of 1
// attempts made".
func (r *RetryApplied) String() string {
	var b strings.Builder
	b.WriteString(r.Policy)
	if len(r.Types) > 0 {
		fmt.Fprintf(&b, " (types %s", strings.Join(r.Types, ", "))
		if r.EventType != "" {
			fmt.Fprintf(&b, ", event type %s", r.EventType)
		}
		b.WriteString(")")
	}
	var bounds []string
	if r.MaxAttempts > 0 {
		bounds = append(bounds, "max_attempts "+strconv.Itoa(r.MaxAttempts))
	}
	if r.MaxAge > 0 {
		bounds = append(bounds, "max_age "+r.MaxAge.String())
	}
	if len(r.Schedule) > 0 {
		s := make([]string, len(r.Schedule))
		for i, d := range r.Schedule {
			s[i] = d.String()
		}
		bounds = append(bounds, "schedule ["+strings.Join(s, ", ")+"]")
	} else if r.Initial > 0 || r.Max > 0 {
		bounds = append(bounds, fmt.Sprintf("backoff %s to %s", r.Initial, r.Max))
	}
	if len(bounds) > 0 {
		b.WriteString(": " + strings.Join(bounds, ", "))
	}
	b.WriteString("; " + r.Decision)
	if r.Reason != "" {
		b.WriteString(": " + r.Reason)
	}
	return b.String()
}
