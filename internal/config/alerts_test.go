package config_test

import (
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/config"
)

func TestAlerts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		yaml    string
		want    config.AlertsConfig
		wantErr string
	}{
		{name: "Defaults", yaml: "listen: 127.0.0.1:8080\n",
			want: config.AlertsConfig{ConsecutiveFailures: 10, DeadDeliveries: 1}},
		{name: "Set", yaml: "alerts:\n  consecutive_failures: 3\n  dead_deliveries: 5\n  url: https://hooks.slack.com/services/T/B/X\n",
			want: config.AlertsConfig{ConsecutiveFailures: 3, DeadDeliveries: 5, URL: "https://hooks.slack.com/services/T/B/X"}},
		{name: "Disabled", yaml: "alerts: {disabled: true}\n",
			want: config.AlertsConfig{Disabled: true, ConsecutiveFailures: 10, DeadDeliveries: 1}},
		{name: "Negative", yaml: "alerts:\n  consecutive_failures: -1\n", wantErr: "mailroom.yaml:2: alerts.consecutive_failures: must not be negative"},
		{name: "NegativeDead", yaml: "alerts:\n  dead_deliveries: -2\n", wantErr: "mailroom.yaml:2: alerts.dead_deliveries: must not be negative"},
		{name: "BadURL", yaml: "alerts:\n  url: hooks.slack.com/services/secret\n", wantErr: "mailroom.yaml:2: alerts.url: is not an absolute http or https URL"},
		{name: "UnknownKey", yaml: "alerts:\n  treshold: 3\n", wantErr: "treshold"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse([]byte(tt.yaml), "mailroom.yaml", nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") && tt.name == "BadURL" {
					t.Errorf("error quotes the alert URL: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Alerts != tt.want {
				t.Errorf("alerts = %+v, want %+v", cfg.Alerts, tt.want)
			}
		})
	}
}
