package logx

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := strings.Split(strings.TrimSpace(s.b.String()), "\n")
	if len(out) == 1 && out[0] == "" {
		return nil
	}
	return out
}

func TestDemote(t *testing.T) {
	var buf syncBuffer
	base := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})
	log := slog.New(Demote(base)).With("component", "mcp")
	log.Info("resource updated notification sent", "subscriber_count", 0)
	log.Debug("chatty")
	log.Warn("keepalive failed")
	log.Error("connect failed")
	got := buf.lines()
	if len(got) != 2 || !strings.Contains(got[0], "level=WARN") || !strings.Contains(got[1], "level=ERROR") ||
		!strings.Contains(got[0], "component=mcp") {
		t.Fatalf("at info level, got %q; want only the warning and the error", got)
	}

	buf = syncBuffer{}
	dbg := slog.New(Demote(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	dbg.Info("session initialized")
	if got := buf.lines(); len(got) != 1 || !strings.Contains(got[0], "level=DEBUG") {
		t.Fatalf("at debug level, got %q; want the info line at DEBUG", got)
	}
}

func TestRateLimit(t *testing.T) {
	var buf syncBuffer
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	log := slog.New(RateLimit(slog.NewTextHandler(&buf, nil), time.Minute, clock))

	// A flood of the same warning, with per-request attributes that differ.
	for i := range 1000 {
		log.Warn("delivery attempt failed", "destination", "billing", "delivery", i, "outcome", "retry")
	}
	// Another destination is another line; so is the same message as an error.
	log.Warn("delivery attempt failed", "destination", "crm", "delivery", 1, "outcome", "retry")
	log.Error("delivery attempt failed", "destination", "billing", "delivery", 2, "outcome", "dead")
	// Info passes unlimited.
	for range 3 {
		log.Info("alert resolved", "destination", "billing")
	}
	if got := buf.lines(); len(got) != 2+1+3 {
		t.Fatalf("got %d lines, want 6:\n%s", len(got), strings.Join(got, "\n"))
	}

	now = now.Add(59 * time.Second)
	log.Warn("delivery attempt failed", "destination", "billing", "delivery", 1001, "outcome", "retry")
	if got := buf.lines(); len(got) != 6 {
		t.Fatalf("a warning within the interval was written: %q", got[len(got)-1])
	}
	now = now.Add(time.Second)
	log.Warn("delivery attempt failed", "destination", "billing", "delivery", 1002, "outcome", "retry")
	got := buf.lines()
	if len(got) != 7 || !strings.Contains(got[6], "delivery=1002") || !strings.Contains(got[6], "suppressed=1000") {
		t.Fatalf("after the interval got %q, want delivery 1002 with suppressed=1000", got[len(got)-1])
	}

	// Identity attributes added with With count too.
	a := log.With("component", "tasks")
	b := log.With("component", "mcp")
	a.Warn("load task", "task", 1)
	b.Warn("load task", "task", 2)
	a.Warn("load task", "task", 3)
	if got := buf.lines(); len(got) != 9 {
		t.Fatalf("got %d lines, want 9 (one per component):\n%s", len(got), strings.Join(got, "\n"))
	}
}

// TestRateLimitBounded checks that the limiter forgets old lines once it
// holds many, so that distinct messages cannot grow it without end.
func TestRateLimitBounded(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	h := RateLimit(slog.DiscardHandler, time.Second, func() time.Time { return now }).(*limited)
	log := slog.New(h)
	for i := range 3 * maxKeys {
		if i%maxKeys == 0 {
			now = now.Add(2 * time.Second)
		}
		log.Warn("distinct", "source", i)
	}
	if n := len(h.st.seen); n > maxKeys+1 {
		t.Fatalf("limiter holds %d lines, want at most %d", n, maxKeys+1)
	}
}

// TestRateLimitFlood checks that a flood of distinct lines within one
// interval (a scanner trying random source names) neither grows the
// limiter without end nor writes a line each.
func TestRateLimitFlood(t *testing.T) {
	var buf syncBuffer
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	h := RateLimit(slog.NewTextHandler(&buf, nil), time.Minute, func() time.Time { return now }).(*limited)
	log := slog.New(h)
	for i := range 3 * maxKeys {
		log.Warn("ingest: request rejected", "source", i, "reason", "unknown source")
	}
	if n := len(h.st.seen); n > maxKeys+1 {
		t.Fatalf("limiter holds %d lines, want at most %d", n, maxKeys+1)
	}
	if n := len(buf.lines()); n != maxKeys+1 {
		t.Fatalf("%d lines written, want %d (one per tracked line, then one for the rest)", n, maxKeys+1)
	}
}
