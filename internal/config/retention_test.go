package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/config"
)

func TestRetention(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		yaml    string
		want    time.Duration
		wantErr string
	}{
		{name: "Default", yaml: "listen: 127.0.0.1:1\n", want: config.DefaultRetention},
		{name: "Set", yaml: "retention: 168h\n", want: 7 * 24 * time.Hour},
		{name: "TooShort", yaml: "retention: 720s\n", wantErr: "mailroom.yaml:1: retention: 12m0s is shorter than the minimum 1h0m0s"},
		{name: "NotADuration", yaml: "retention: 30d\n", wantErr: "mailroom.yaml:1: retention"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse([]byte(tt.yaml), "mailroom.yaml", nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Retention.D(); got != tt.want {
				t.Errorf("Retention = %v, want %v", got, tt.want)
			}
		})
	}
}
