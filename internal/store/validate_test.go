package store_test

import (
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
)

func TestDestinationValidate(t *testing.T) {
	t.Parallel()
	ok := func() store.Destination { return store.Destination{Name: "d", URL: "https://h.example/x"} }
	for _, tt := range []struct {
		name string
		edit func(*store.Destination)
		want []string // fields named, in order; none for valid
	}{
		{"valid", func(*store.Destination) {}, nil},
		{"password never quoted", func(d *store.Destination) { d.URL = "ftp://user:hunter2@h/x" }, []string{"url"}},
		{"every problem reported", func(d *store.Destination) {
			d.URL, d.Timeout, d.Retry.MaxAttempts = "", -1, 1001
			d.Sign = store.SignConfig{Type: "standard-webhooks", Secret: "plain"}
			d.CircuitBreaker.ErrorRatio = 2
		}, []string{"url", "timeout", "retry.max_attempts", "sign.secret", "circuit_breaker.error_ratio"}},
		{"secret without type", func(d *store.Destination) { d.Sign.Secret = "whsec_x" }, []string{"sign.type"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := ok()
			tt.edit(&d)
			errs := store.FieldErrors(d.Validate())
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
				if strings.Contains(e.Error(), "hunter2") {
					t.Errorf("%s quotes the URL's password", e)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("fields = %v, want %v", got, tt.want)
			}
		})
	}
}
