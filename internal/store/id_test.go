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
