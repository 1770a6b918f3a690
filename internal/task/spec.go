package task

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
)

// Wait is what a caller asks to wait for, as it gives it: the arguments of
// wait_for_event, the body of POST /api/v1/tasks, an async tool's rule.
type Wait struct {
	// Source is the source the event arrives on; required, and it must
	// exist.
	Source string
	// Type, if set, is the event type to wait for.
	Type string
	// Match maps dotted body paths to the values they must equal.
	Match map[string]any
	// Filter, if set, is a CEL filter over the event that must be true.
	Filter string
	// Since is how far back events count: a duration ago ("10m"), an RFC
	// 3339 time or an event id. Empty means [DefaultSince] ago.
	Since string
	// Timeout is how long the wait lasts. Zero means the [Tasks]' default
	// timeout; it must not be negative.
	Timeout time.Duration
}

// Spec is a resolved [Wait]: the correlation rule the correlator applies.
type Spec struct {
	Source string
	Type   string
	// Match holds the match pairs with their values as events are
	// compared: numbers without a fraction as integers, the rest as
	// fmt prints them.
	Match  map[string]string
	Filter string
	// Since is the look-back start: events received earlier do not count.
	Since time.Time
	// Timeout is how long the wait lasts.
	Timeout time.Duration
}

// Describe names what the spec waits for, as "source type".
func (s Spec) Describe() string {
	if s.Type == "" {
		return s.Source
	}
	return s.Source + " " + s.Type
}

// DefaultSince is how far back a wait looks when it does not say.
const DefaultSince = 10 * time.Minute

// InputError is a wait described wrongly by its caller: the API answers
// 400 with its message, MCP an invalid-params error. The message names
// the argument.
type InputError struct {
	Msg string
}

// Error returns the message.
func (e *InputError) Error() string { return e.Msg }

func inputf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// Resolve checks w against the catalog and resolves its since and
// timeout. A wrong argument is an [*InputError]; anything else is storage
// failing (reading the event a since names).
func (t *Tasks) Resolve(ctx context.Context, w *Wait) (Spec, error) {
	var spec Spec
	switch {
	case w.Source == "":
		return spec, inputf("source is required")
	case t.catalog.Current().Sources[w.Source] == nil:
		return spec, inputf("source: %q does not exist (see list_sources or GET /api/v1/sources)", w.Source)
	case w.Timeout < 0:
		return spec, inputf("timeout: %s is negative; want a positive duration such as 30m", w.Timeout)
	case strings.IndexByte(w.Type, 0) >= 0 || !utf8.ValidString(w.Type):
		// Stored as text, which PostgreSQL refuses with NUL; and no
		// event type holds one (ingest percent-encodes it).
		return spec, inputf("type: %q holds NUL or bytes that are not UTF-8", w.Type)
	case strings.IndexByte(w.Filter, 0) >= 0:
		return spec, inputf("filter: holds NUL")
	}
	if w.Filter != "" {
		if err := t.catalog.Compiler().CheckFilter(w.Filter); err != nil {
			return spec, inputf("filter: %v", err)
		}
	}
	for path := range w.Match {
		if path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..") {
			return spec, inputf("match: %q is not a dotted body path", path)
		}
	}
	since, err := t.ParseSince(ctx, w.Since)
	if err != nil {
		return spec, err
	}
	spec = Spec{Source: w.Source, Type: w.Type, Match: MatchStrings(w.Match), Filter: w.Filter, Since: since, Timeout: w.Timeout}
	if spec.Timeout == 0 {
		spec.Timeout = t.opts.DefaultTimeout
	}
	return spec, nil
}

// ParseSince reads a since: a duration ago ("10m"), an RFC 3339 time, or
// an event id (events after that one). Empty means [DefaultSince] ago. A
// malformed value or an unknown event id is an [*InputError].
func (t *Tasks) ParseSince(ctx context.Context, v string) (time.Time, error) {
	now := t.now()
	switch {
	case v == "":
		return now.Add(-DefaultSince), nil
	case strings.HasPrefix(v, "evt_"):
		ev, err := t.store.EventGetByID(ctx, v)
		if errors.Is(err, store.ErrNotFound) {
			return time.Time{}, inputf("since: event %q does not exist", v)
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("read event %s: %w", v, err)
		}
		return ev.ReceivedAt.Add(time.Microsecond), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if ts, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return ts, nil
	}
	return time.Time{}, inputf("since: %q is not a duration (10m), an RFC 3339 time or an event id", v)
}

// MatchStrings renders match values the way events are compared
// ([route.ValueString]). Decode them with json.Decoder.UseNumber, so that
// an integer beyond 2^53 keeps its exact value.
func MatchStrings(m map[string]any) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = route.ValueString(v)
	}
	return out
}

// Matcher is a compiled [Spec]: it tells whether an event satisfies it.
// It is immutable and safe for concurrent use.
type Matcher struct {
	spec   Spec
	filter *route.Program // nil: no filter
	// evaluations, maxCost and stopped count the filter's evaluations.
	evaluations, maxCost, stopped atomic.Uint64
}

// FilterCost is what a wait's filter has cost on this instance so far.
type FilterCost struct {
	// Evaluations is how many events the filter was evaluated against.
	Evaluations uint64 `json:"evaluations"`
	// Max is the highest CEL cost of one evaluation.
	Max uint64 `json:"max"`
	// Stopped is how many evaluations were stopped at Limit (and did not
	// match).
	Stopped uint64 `json:"stopped"`
	// Limit is the cost at which an evaluation stops (route.MaxCost).
	Limit uint64 `json:"limit"`
}

// Cost returns what m's filter has cost so far; nil when it has none.
func (m *Matcher) Cost() *FilterCost {
	if m.filter == nil {
		return nil
	}
	return &FilterCost{Evaluations: m.evaluations.Load(), Max: m.maxCost.Load(), Stopped: m.stopped.Load(), Limit: route.MaxCost}
}

// Compile compiles spec's filter. The filter must yield a bool, as a
// connection filter must.
func (t *Tasks) Compile(spec Spec) (*Matcher, error) {
	m := &Matcher{spec: spec}
	if spec.Filter != "" {
		p, err := t.catalog.Compiler().CompileFilter(spec.Filter)
		if err != nil {
			return nil, err
		}
		m.filter = p
	}
	return m, nil
}

// Spec returns the rule m was compiled from.
func (m *Matcher) Spec() Spec { return m.spec }

// Matches reports whether the event, whose filter input is in, satisfies
// the rule. A filter that fails or exceeds its cost limit does not match.
func (m *Matcher) Matches(ev *store.Event, in *route.Input) bool {
	if ev.Source != m.spec.Source || (m.spec.Type != "" && ev.Type != m.spec.Type) {
		return false
	}
	if !m.spec.Since.IsZero() && ev.ReceivedAt.Before(m.spec.Since) {
		return false
	}
	for path, want := range m.spec.Match {
		got, ok := lookupPath(in.Decoded(), path)
		if !ok || route.ValueString(got) != want {
			return false
		}
	}
	if m.filter == nil {
		return true
	}
	ok, cost := m.filter.MatchCost(in)
	m.evaluations.Add(1)
	for {
		prev := m.maxCost.Load()
		if cost <= prev || m.maxCost.CompareAndSwap(prev, cost) {
			break
		}
	}
	if cost > route.MaxCost {
		m.stopped.Add(1)
	}
	return ok
}

// indexPath is the match pair a wait is filed under: its first path in
// sorted order.
func (m *Matcher) indexPath() (path, value string, ok bool) {
	if len(m.spec.Match) == 0 {
		return "", "", false
	}
	keys := make([]string, 0, len(m.spec.Match))
	for k := range m.spec.Match {
		keys = append(keys, k)
	}
	k := slices.Min(keys)
	return k, m.spec.Match[k], true
}

// lookupPath follows a dotted path ("data.object.id") through decoded JSON.
func lookupPath(v any, path string) (any, bool) {
	for part := range strings.SplitSeq(path, ".") {
		switch m := v.(type) {
		case map[string]any:
			next, ok := m[part]
			if !ok {
				return nil, false
			}
			v = next
		case map[string]string:
			next, ok := m[part]
			if !ok {
				return nil, false
			}
			v = next
		default:
			return nil, false
		}
	}
	return v, true
}
