package sqlstore

import "time"

// LateAfter is how much later than its receipt a request's or an event's
// id may be stamped before the row counts as late (see [Dialect.LateRows]).
// Ids are stamped with the receipt time or later, never earlier
// ([store.IDGenerator] keeps them increasing): a row received at t that is
// not late has an id stamped before t + LateAfter, so the rows received
// before t are the ids below t + LateAfter's stamp (minus those received
// since t) plus the late rows received before t.
const LateAfter = time.Second

// crockford maps a lower- or upper-case Crockford base32 digit to its
// value, 0xff for any other byte.
var crockford = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdefghjkmnpqrstvwxyz" {
		t[c] = byte(i)
		if c >= 'a' {
			t[c-'a'+'A'] = byte(i)
		}
	}
	return t
}()

// stampMillis returns the time stamped in a prefixed id ("req_01jd…"):
// the Unix milliseconds of its ULID's first 10 characters.
func stampMillis(id string) (int64, bool) {
	i := len(id) - 26
	if i < 0 {
		return 0, false
	}
	var ms int64
	for _, c := range []byte(id[i : i+10]) {
		v := crockford[c]
		if v == 0xff {
			return 0, false
		}
		ms = ms<<5 | int64(v)
	}
	return ms, true
}

// lateFlag is the late column's value for a row with this id received at
// at: 1 when the id is stamped more than [LateAfter] after at (an id that
// cannot be decoded counts as late: the late index then keeps it findable).
func lateFlag(id string, at time.Time) int {
	ms, ok := stampMillis(id)
	if !ok || ms*1000-at.UnixMicro() > LateAfter.Microseconds() {
		return 1
	}
	return 0
}

// idAt returns the smallest id with prefix stamped at millisecond ms or
// later: a prefix, "_" and ms's 10 characters, which sorts below every id
// of that stamp (it is a prefix of them) and above every earlier one.
func idAt(prefix string, ms int64) string {
	ms = max(ms, 0)
	var b [10]byte
	for i := 9; i >= 0; i-- {
		b[i] = "0123456789abcdefghjkmnpqrstvwxyz"[ms&31]
		ms >>= 5
	}
	return prefix + "_" + string(b[:])
}

// idSince is the lower bound of the ids of rows received at or after t:
// every such id is stamped at t's millisecond or later.
func idSince(prefix string, t time.Time) string {
	return idAt(prefix, floorDiv(t.UnixMicro(), 1000))
}

// idBefore is the upper bound (exclusive) of the ids of rows received
// before t that are not late: such an id is stamped before t + LateAfter.
func idBefore(prefix string, t time.Time) string {
	us := t.UnixMicro() + LateAfter.Microseconds()
	return idAt(prefix, -floorDiv(-us, 1000)) // the millisecond at or after us
}

// floorDiv is a / b rounded down (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
