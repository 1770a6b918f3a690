package deliver

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff returns how long to wait before the next attempt of a delivery
// whose attempt number attempt (1 for the first) has just failed. It is a
// pure function of its arguments.
//
// Without a Retry-After it is exponential with full jitter: the ceiling is
// min(max, initial·2^(attempt-1)) and the delay is rnd·ceiling, where rnd
// is drawn from [0, 1] by the caller. Full jitter spreads the retries of
// many deliveries that failed together (a receiver that came back up), but
// on its own it can draw a delay near zero and retry a failing receiver at
// once; the delay is therefore never below initial/10, so even an unlucky
// draw waits a little.
//
// A positive retryAfter (from a 429 or 503 response's Retry-After header)
// replaces the computed delay, clamped to max: the receiver said when it
// wants to be called again, but never makes a delivery wait longer than the
// destination allows.
//
// An attempt below 1 counts as 1. A max of zero or less means no cap. An
// rnd outside [0, 1] (or NaN) is clamped into it.
func Backoff(attempt int, initial, max time.Duration, retryAfter time.Duration, rnd float64) time.Duration {
	if retryAfter > 0 {
		if max > 0 && retryAfter > max {
			return max
		}
		return retryAfter
	}
	if initial <= 0 {
		return 0
	}
	if attempt < 1 {
		attempt = 1
	}
	ceiling := initial
	for i := 1; i < attempt; i++ {
		if max > 0 && ceiling >= max {
			break
		}
		if ceiling > math.MaxInt64/2 {
			ceiling = math.MaxInt64
			break
		}
		ceiling *= 2
	}
	if max > 0 && ceiling > max {
		ceiling = max
	}
	switch {
	case math.IsNaN(rnd) || rnd < 0:
		rnd = 0
	case rnd > 1:
		rnd = 1
	}
	delay := time.Duration(rnd * float64(ceiling))
	if delay < 0 || float64(delay) > float64(ceiling) { // float rounding near MaxInt64
		delay = ceiling
	}
	if floor := initial / 10; delay < floor {
		delay = floor
		if max > 0 && delay > max {
			delay = max
		}
	}
	return delay
}

// maxRetryAfter bounds a parsed Retry-After so that huge values do not
// overflow a time.Duration. Callers clamp further to the destination's
// retry maximum.
const maxRetryAfter = 100 * 365 * 24 * time.Hour

// ParseRetryAfter reads a Retry-After header value, either a number of
// seconds ("120") or an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT"), and
// returns how long after now it asks the client to wait. An empty,
// malformed or negative value, or a date at or before now, returns 0,
// meaning "no preference". Results are capped at about a century so they
// always fit in a time.Duration.
func ParseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if isDigits(h) {
		secs, err := strconv.ParseInt(h, 10, 64)
		if err != nil || secs > int64(maxRetryAfter/time.Second) {
			// Only overflow makes an all-digit value fail to parse.
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0
	}
	if t.After(now.Add(maxRetryAfter)) {
		return maxRetryAfter
	}
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	return d
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
