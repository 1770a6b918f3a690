package sqlstore

import (
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// TestIDBounds: the bounds of a receipt-time range sit where the ids of
// rows received at its edges are: an id stamped at t is at or above
// idSince(t) and below idSince of the next millisecond, and a row received
// just before t and stamped up to LateAfter later is below idBefore(t).
func TestIDBounds(t *testing.T) {
	base := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	for _, off := range []time.Duration{0, time.Microsecond, 999 * time.Microsecond, time.Millisecond, 1500 * time.Microsecond} {
		at := base.Add(off)
		id := store.NewIDGenerator().New("req", at)
		if ms, ok := stampMillis(id); !ok || ms != at.UnixMilli() {
			t.Errorf("stampMillis(%s) = %d %v, want %d", id, ms, ok, at.UnixMilli())
		}
		if lo := idSince("req", at); id < lo {
			t.Errorf("%v: id %s below idSince %s", off, id, lo)
		}
		if hi := idSince("req", at.Add(time.Millisecond).Truncate(time.Millisecond)); id >= hi {
			t.Errorf("%v: id %s not below the next millisecond's %s", off, id, hi)
		}
		// Received a microsecond before t, stamped LateAfter later: not
		// late, so it must be below idBefore(t).
		recv := at.Add(-time.Microsecond)
		stamped := store.NewIDGenerator().New("req", recv.Add(LateAfter))
		if lateFlag(stamped, recv) != 0 {
			t.Errorf("%v: %s counted late for %v", off, stamped, recv)
		}
		if hi := idBefore("req", at); stamped >= hi {
			t.Errorf("%v: id %s not below idBefore %s", off, stamped, hi)
		}
		if late := store.NewIDGenerator().New("req", recv.Add(LateAfter+time.Millisecond)); lateFlag(late, recv) != 1 {
			t.Errorf("%v: %s not counted late for %v", off, late, recv)
		}
	}
	if lateFlag("req_bad", base) != 1 {
		t.Error("an id that does not decode is not counted late")
	}
}
