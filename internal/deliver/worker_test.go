package deliver

import (
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// TestResolveHoldsWhatTheConfigRefuses: the dispatcher checks a stored
// destination with the same store.Destination.Validate as the config file
// and the API, so a destination written before a rule tightened (or by
// hand) is held with the reason instead of served against the rule.
func TestResolveHoldsWhatTheConfigRefuses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		dest store.Destination
		want string // in the hold reason; empty for none
	}{
		{"valid", store.Destination{Name: "d", URL: "http://h/x", Retry: store.RetryPolicy{MaxAttempts: 1000}}, ""},
		{"attempts above the cap", store.Destination{Name: "d", URL: "http://h/x", Retry: store.RetryPolicy{MaxAttempts: 5000}}, "retry.max_attempts"},
		{"port out of range", store.Destination{Name: "d", URL: "http://h:99999/x"}, "port"},
		{"no url", store.Destination{Name: "d"}, "url: required"},
		{"bad rate", store.Destination{Name: "d", URL: "http://h/x", RateLimit: "fast"}, "rate_limit"},
		{"unknown sign type", store.Destination{Name: "d", URL: "http://h/x", Sign: store.SignConfig{Type: "pgp", Secret: "k"}}, "sign.type"},
		{"bad signing secret", store.Destination{Name: "d", URL: "http://h/x", Sign: store.SignConfig{Type: verify.TypeStandardWebhooks, Secret: "plain"}}, "sign"},
		{"bad proxy", store.Destination{Name: "d", URL: "http://h/x", Proxy: "ftp://p"}, "proxy"},
		{"missing client cert", store.Destination{Name: "d", URL: "http://h/x", TLS: store.ClientTLS{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}}, "tls"},
		{"oauth2 without a secret", store.Destination{Name: "d", URL: "http://h/x", Auth: store.OutboundAuth{Type: store.AuthOAuth2ClientCredentials,
			TokenURL: "http://h/token", ClientID: "c"}}, "auth.client_secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &Dispatcher{egress: newEgress(newHTTPClient(nil), nil, "", "")}
			c := d.resolve(&tt.dest)
			switch {
			case tt.want == "" && c.err != nil:
				t.Errorf("held: %v", c.err)
			case tt.want != "" && (c.err == nil || !strings.Contains(c.err.Error(), tt.want)):
				t.Errorf("hold reason = %v, want one naming %q", c.err, tt.want)
			}
		})
	}
}
