package duration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestUnmarshalJSON: a number of seconds reads like a string, and is
// refused where it does not fit a time.Duration (about 292 years) instead
// of wrapping around. A negative number is read as it is, for the check
// of the field it is in, which names the field (a string is refused here).
func TestUnmarshalJSON(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: `"90s"`, want: 90 * time.Second},
		{in: `90`, want: 90 * time.Second},
		{in: `1.5`, want: 1500 * time.Millisecond},
		{in: `0`, want: 0},
		{in: `""`, want: 0},
		{in: `"-5s"`, err: "must not be negative"},
		{in: `-5`, want: -5 * time.Second},
		{in: `1e300`, err: "longer than"},
		{in: `-1e300`, err: "longer than"},
		{in: `9300000000`, err: "longer than"},
		{in: `true`, err: "a number of seconds"},
	} {
		var d Duration
		err := json.Unmarshal([]byte(tt.in), &d)
		switch {
		case tt.err == "" && (err != nil || d.D() != tt.want):
			t.Errorf("%s: %v, %v; want %v", tt.in, d, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: %v, %v; want an error saying %q", tt.in, d, err, tt.err)
		}
	}
}
