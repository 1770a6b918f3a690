// Package logx holds the slog handlers that keep mailroom's logs sized
// for production: a line per event or request belongs at debug level,
// info states what changed, and warnings and errors (what needs a person)
// are rate-limited so that one failing destination or one misconfigured
// sender writes a line per interval, not one per request.
package logx

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Demote returns a handler that passes h the records below warning level
// at debug level, and warnings and errors as they are. It is for the
// loggers handed to libraries (the MCP SDK) that log every session and
// notification at info level.
func Demote(h slog.Handler) slog.Handler { return demote{h} }

type demote struct{ h slog.Handler }

func demoted(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return slog.LevelDebug
	}
	return l
}

func (d demote) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, demoted(l))
}

func (d demote) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demoted(r.Level)
	return d.h.Handle(ctx, r)
}

func (d demote) WithAttrs(as []slog.Attr) slog.Handler { return demote{d.h.WithAttrs(as)} }
func (d demote) WithGroup(name string) slog.Handler    { return demote{d.h.WithGroup(name)} }

// identityKeys are the attributes that tell repeated warnings apart for
// [RateLimit]: two warnings with the same level and message are the same
// line unless one of these differs. Per-request attributes (ids, errors,
// addresses) are not among them, so that a flood collapses.
var identityKeys = []string{"component", "source", "destination", "upstream", "reason", "outcome", "channel", "page"}

// SuppressedKey is the attribute a rate-limited line carries when lines
// like it were left out since the last one written: how many.
const SuppressedKey = "suppressed"

// maxKeys bounds the limiter's memory: past it, keys older than the
// interval are forgotten.
const maxKeys = 4096

// RateLimit returns a handler that passes h at most one warning or error
// per interval for each distinct line (level, message and the values of
// the identity attributes (component, source, destination, upstream,
// reason, outcome, channel, page), including those added with WithAttrs), and counts the
// ones it leaves out; the next line written carries the count as
// [SuppressedKey]. Records below warning level pass unchanged: debug is
// opted into, and info lines state changes, which do not repeat at the
// rate of requests. now is the clock (time.Now when nil).
func RateLimit(h slog.Handler, every time.Duration, now func() time.Time) slog.Handler {
	if now == nil {
		now = time.Now
	}
	return &limited{h: h, st: &limitState{every: every, now: now, seen: map[string]*lineState{}}}
}

type limitState struct {
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	seen  map[string]*lineState
}

type lineState struct {
	last time.Time
	held int
}

// allow reports whether the line key may be written now and how many like
// it were held back since the last one that was. When the limiter holds
// maxKeys lines that all repeated within the interval (many distinct
// sources, say), a new line is limited by coarse (level and message)
// instead, which the code's fixed set of messages bounds.
func (s *limitState) allow(key, coarse string) (held int, ok bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.seen[key]
	if ls == nil && len(s.seen) >= maxKeys {
		for k, v := range s.seen {
			if now.Sub(v.last) >= s.every {
				delete(s.seen, k)
			}
		}
		if len(s.seen) >= maxKeys {
			key = coarse
			ls = s.seen[key]
		}
	}
	if ls != nil && now.Sub(ls.last) < s.every {
		ls.held++
		return 0, false
	}
	if ls == nil {
		ls = &lineState{}
		s.seen[key] = ls
	}
	held, ls.held, ls.last = ls.held, 0, now
	return held, true
}

type limited struct {
	h     slog.Handler
	st    *limitState
	ident string // identity attributes added with WithAttrs, encoded
	group string // the WithGroup prefix, for attributes added after it
}

func (l *limited) Enabled(ctx context.Context, lv slog.Level) bool { return l.h.Enabled(ctx, lv) }

func (l *limited) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return l.h.Handle(ctx, r)
	}
	var b strings.Builder
	b.WriteString(r.Level.String())
	b.WriteByte(0)
	b.WriteString(r.Message)
	coarse := b.String()
	b.WriteString(l.ident)
	r.Attrs(func(a slog.Attr) bool {
		appendIdentity(&b, l.group, a)
		return true
	})
	held, ok := l.st.allow(b.String(), coarse)
	if !ok {
		return nil
	}
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int(SuppressedKey, held))
	}
	return l.h.Handle(ctx, r)
}

func appendIdentity(b *strings.Builder, group string, a slog.Attr) {
	for _, k := range identityKeys {
		if a.Key == k {
			b.WriteByte(0)
			b.WriteString(group)
			b.WriteString(a.Key)
			b.WriteByte('=')
			b.WriteString(a.Value.String())
			return
		}
	}
}

func (l *limited) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(l.ident)
	for _, a := range as {
		appendIdentity(&b, l.group, a)
	}
	return &limited{h: l.h.WithAttrs(as), st: l.st, ident: b.String(), group: l.group}
}

func (l *limited) WithGroup(name string) slog.Handler {
	if name == "" {
		return l
	}
	return &limited{h: l.h.WithGroup(name), st: l.st, ident: l.ident, group: l.group + name + "."}
}
