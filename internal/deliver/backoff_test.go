package deliver_test

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/deliver"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	const (
		s = time.Second
		h = time.Hour
	)
	tests := []struct {
		name       string
		attempt    int
		initial    time.Duration
		max        time.Duration
		retryAfter time.Duration
		rnd        float64
		want       time.Duration
	}{
		{"first attempt full ceiling", 1, s, h, 0, 1, s},
		{"doubles per attempt", 3, s, h, 0, 1, 4 * s},
		{"jitter scales ceiling", 3, s, h, 0, 0.5, 2 * s},
		{"zero draw gets the floor", 5, s, h, 0, 0, 100 * time.Millisecond},
		{"tiny draw gets the floor", 1, s, h, 0, 0.01, 100 * time.Millisecond},
		{"ceiling capped at max", 40, s, h, 0, 1, h},
		{"huge attempt does not overflow", 1 << 30, s, h, 0, 1, h},
		{"attempt zero counts as one", 0, s, h, 0, 1, s},
		{"negative attempt counts as one", -3, s, h, 0, 1, s},
		{"retry-after replaces backoff", 7, s, h, 30 * s, 0.5, 30 * s},
		{"retry-after clamped to max", 1, s, h, 2 * h, 0.5, h},
		{"negative retry-after ignored", 2, s, h, -5 * s, 1, 2 * s},
		{"rnd above one clamped", 2, s, h, 0, 7, 2 * s},
		{"negative rnd clamped", 2, s, h, 0, -1, 100 * time.Millisecond},
		{"NaN rnd clamped", 2, s, h, 0, math.NaN(), 100 * time.Millisecond},
		{"zero initial", 3, 0, h, 0, 1, 0},
		{"floor clamped to max", 1, s, 50 * time.Millisecond, 0, 0, 50 * time.Millisecond},
		{"max below initial", 1, s, 300 * time.Millisecond, 0, 1, 300 * time.Millisecond},
		{"no max: no overflow", 200, s, 0, 0, 1, math.MaxInt64},
		{"small initial", 2, 10 * time.Millisecond, s, 0, 1, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := deliver.Backoff(tt.attempt, tt.initial, tt.max, tt.retryAfter, tt.rnd); got != tt.want {
				t.Errorf("Backoff(%d, %v, %v, %v, %v) = %v, want %v", tt.attempt, tt.initial, tt.max, tt.retryAfter, tt.rnd, got, tt.want)
			}
		})
	}
	t.Run("bounds", func(t *testing.T) {
		t.Parallel()
		for attempt := -1; attempt < 80; attempt++ {
			for _, rnd := range []float64{0, 0.1, 0.5, 0.999, 1} {
				got := deliver.Backoff(attempt, 250*time.Millisecond, 10*time.Minute, 0, rnd)
				if got < 25*time.Millisecond || got > 10*time.Minute {
					t.Fatalf("Backoff(%d, rnd %v) = %v, outside [initial/10, max]", attempt, rnd, got)
				}
			}
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	const century = 100 * 365 * 24 * time.Hour
	tests := []struct {
		name string
		h    string
		want time.Duration
	}{
		{"empty", "", 0},
		{"blank", "   ", 0},
		{"seconds", "120", 120 * time.Second},
		{"zero seconds", "0", 0},
		{"padded seconds", " 5 ", 5 * time.Second},
		{"negative", "-1", 0},
		{"fraction", "1.5", 0},
		{"plus sign", "+3", 0},
		{"garbage", "soon", 0},
		{"overflowing seconds capped", "99999999999999999999999", century},
		{"seconds beyond cap", "9999999999", century},
		{"IMF-fixdate", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"RFC 850 date", now.Add(time.Hour).Format(time.RFC850), time.Hour},
		{"ANSI C date", now.Add(2 * time.Minute).Format(time.ANSIC), 2 * time.Minute},
		{"date in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"date now", now.Format(http.TimeFormat), 0},
		{"far future date capped", "Fri, 31 Dec 9999 23:59:59 GMT", century},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := deliver.ParseRetryAfter(tt.h, now); got != tt.want {
				t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.h, got, tt.want)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "120", "-1", "1e3", " 7 ", "99999999999999999999",
		"Wed, 21 Oct 2015 07:28:00 GMT", now.Add(time.Minute).Format(http.TimeFormat),
		"Monday, 02-Jan-06 15:04:05 MST", "Mon Jan  2 15:04:05 2006", "\x00", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		d := deliver.ParseRetryAfter(h, now)
		if d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, negative", h, d)
		}
		if d > 100*365*24*time.Hour {
			t.Fatalf("ParseRetryAfter(%q) = %v, beyond the cap", h, d)
		}
		// Whatever it returns, Backoff stays within the destination's max.
		if b := deliver.Backoff(1, time.Second, time.Hour, d, 0.5); b <= 0 || b > time.Hour {
			t.Fatalf("Backoff with Retry-After %v = %v", d, b)
		}
	})
}
