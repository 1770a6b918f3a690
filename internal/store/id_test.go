package store

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// TestIDFormat: an id is the prefix, "_" and the ULID in lower case.
func TestIDFormat(t *testing.T) {
	t.Parallel()
	ids := []ulid.ULID{{}, ulid.MustParse("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")}
	for range 1000 {
		ids = append(ids, ulid.MustNew(ulid.Now(), rand.Reader))
	}
	for _, id := range ids {
		for _, prefix := range []string{"evt", "req", "dlv", ""} {
			if got, want := format(prefix, id), prefix+"_"+strings.ToLower(id.String()); got != want {
				t.Fatalf("format(%q, %s) = %q, want %q", prefix, id, got, want)
			}
		}
	}
	g := NewIDGenerator()
	a, b := g.New("evt", time.Now()), g.New("evt", time.Now())
	if !strings.HasPrefix(a, "evt_") || len(a) != 4+ulid.EncodedSize || a >= b || strings.ToLower(a) != a {
		t.Fatalf("ids %q, %q", a, b)
	}
}

// BenchmarkIDNew: one id.
func BenchmarkIDNew(b *testing.B) {
	g := NewIDGenerator()
	b.ReportAllocs()
	for b.Loop() {
		g.New("evt", time.Now())
	}
}

// TestIDTimeOutOfRange: a time a ULID cannot carry (before 1970, after
// year 10889) neither panics, which in the SQLite writer ended the process
// (a listen attempt with duration_ms -1e15 was stamped so), nor moves the
// stamp of later ids: it is stamped as the last id was.
func TestIDTimeOutOfRange(t *testing.T) {
	t.Parallel()
	g := NewIDGenerator()
	now := time.Now()
	first := g.New("att", now)
	for _, at := range []time.Time{time.Unix(-1, 0), time.Unix(-1e12, 0), time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		id := g.New("att", at)
		if id <= first {
			t.Errorf("id for %v = %s, want after %s", at, id, first)
		}
		first = id
	}
	next := g.New("att", now)
	u, err := ulid.ParseStrict(strings.ToUpper(strings.TrimPrefix(next, "att_")))
	if err != nil || next <= first || ulid.Time(u.Time()).Sub(now).Abs() > time.Second {
		t.Errorf("id after the out-of-range times = %s (%v, stamped %v), want one stamped now, after %s", next, err, ulid.Time(u.Time()), first)
	}
}
