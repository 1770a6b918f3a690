package mailroomhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/mailroomhq/mailroom/internal/verify"
	"github.com/mailroomhq/mailroom/pkg/mailroomhook"
)

func verifyCfg() verify.Config {
	return verify.Config{Type: verify.TypeStandardWebhooks, Secret: secret}
}

// TestAgainstLibrary signs with the Standard Webhooks reference library,
// as any Standard Webhooks sender would, and checks the verdicts.
func TestAgainstLibrary(t *testing.T) {
	t.Parallel()
	lib, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"invoice.paid"}`)
	now := time.Now()
	sig, err := lib.Sign("msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", sig)
	tests := []struct {
		name string
		opts *mailroomhook.Options
		h    http.Header
		body []byte
		want error
	}{
		{"valid", nil, h, body, nil},
		{"tampered", nil, h, []byte(`{"type":"invoice.void"}`), mailroomhook.ErrSignatureMismatch},
		{"no headers", nil, http.Header{}, body, mailroomhook.ErrMissingSignature},
		{"too old", &mailroomhook.Options{Now: func() time.Time { return now.Add(time.Hour) }}, h, body, mailroomhook.ErrTimestampOutOfTolerance},
		{"rotated", &mailroomhook.Options{MoreSecrets: []string{secret}}, h, body, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts
			s := secret
			if tt.name == "rotated" {
				s = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
			}
			v, err := mailroomhook.New(s, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(tt.h, tt.body); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := mailroomhook.New("", nil); err == nil {
		t.Fatal("empty secret: want an error")
	}
}
