package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/config"
)

func TestAPIAllowedHosts(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`
api:
  allowed_hosts: [mailroom.example.com, "mailroom.example.com:8443", "[::1]:8080", "::1", "*"]
`), "m.yaml", realOptions(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mailroom.example.com", "mailroom.example.com:8443", "[::1]:8080", "::1", "*"}; !slices.Equal(cfg.API.AllowedHosts, want) {
		t.Errorf("api.allowed_hosts = %v, want %v", cfg.API.AllowedHosts, want)
	}

	_, err = config.Parse([]byte(`
listen: 127.0.0.1:8080
api:
  allowed_hosts:
    - https://mailroom.example.com
    - "*.example.com"
    - "mailroom.example.com:http"
    - ""
  alowed_hosts: [x]
`), "m.yaml", realOptions(t, nil))
	if err == nil {
		t.Fatal("bad api.allowed_hosts accepted")
	}
	for _, want := range []string{
		`m.yaml:4: api.allowed_hosts: "https://mailroom.example.com" is not a host name or host:port`,
		`m.yaml:4: api.allowed_hosts: "*.example.com" is not a host name or host:port`,
		`m.yaml:4: api.allowed_hosts: "mailroom.example.com:http" is not a host name or host:port`,
		`m.yaml:4: api.allowed_hosts: "" is not a host name or host:port`,
		`alowed_hosts`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}
