// Package duration holds the one text form of a duration in mailroom's
// config files and API: a Go duration string ("30s", "5m", "1h30m"). It
// depends on the standard library only, so that the public packages that
// read a verify config do not pull in a YAML parser.
package duration

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes as a Go duration string
// ("5m", "1h30m") in YAML (through [Duration.UnmarshalText]) and JSON. A
// bare JSON number is taken as seconds. Negative values are refused.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// maxNanos is the first float64 past the longest time.Duration.
const maxNanos = float64(math.MaxInt64)

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("duration must be a string like \"5m\" or a number of seconds")
		}
		// A negative number is left to the field's own check, which
		// names the field; one past the longest duration would wrap.
		ns := secs * float64(time.Second)
		if math.Abs(ns) >= maxNanos {
			return fmt.Errorf("invalid duration %s: longer than %s", b, time.Duration(math.MaxInt64))
		}
		*d = Duration(ns)
		return nil
	}
	return d.UnmarshalText([]byte(s))
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalText reads a duration string such as "30s"; empty means zero.
// YAML decoders use it for scalars.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. 30s, 5m, 1h)", s)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	*d = Duration(v)
	return nil
}
