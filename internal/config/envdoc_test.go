package config_test

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/config"
)

var update = flag.Bool("update", false, "rewrite the environment table in docs/configuration.md")

// configDoc is the page that holds the environment table, between these
// markers.
const (
	configDoc  = "../../docs/configuration.md"
	tableStart = "<!-- env-table:start (generated from the config schema by TestEnvDocTable; go test ./internal/config -run TestEnvDocTable -update) -->\n"
	tableEnd   = "<!-- env-table:end -->\n"
)

// envTable renders config.EnvVars as the documentation's table. Defaults
// are in the settings tables above it, which say what a zero value means.
func envTable() string {
	var b strings.Builder
	b.WriteString("| variable | setting | value |\n|---|---|---|\n")
	for _, ev := range config.EnvVars() {
		setting := "`" + ev.Field + "`"
		if ev.Name == config.EnvDB {
			setting += " (alias of `" + config.EnvStorage + "`; if both are set they must agree)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", ev.Name, setting, ev.Format)
	}
	return b.String()
}

// TestEnvDocTable fails when the table of environment variables in
// docs/configuration.md is not the one the schema gives, so that a setting
// added to Config cannot go undocumented; -update rewrites it.
func TestEnvDocTable(t *testing.T) {
	raw, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, tableStart), strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no environment table between %q and %q", configDoc, tableStart, tableEnd)
	}
	got, want := doc[i+len(tableStart):j], envTable()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(configDoc, []byte(doc[:i+len(tableStart)]+want+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the environment table in %s differs from the config schema; run go test ./internal/config -run TestEnvDocTable -update\n--- doc\n%s\n--- schema\n%s", configDoc, got, want)
}

// TestEnvReachesEverySetting: every setting of the file can be set from
// the environment alone, lists of entries included, and values are taken
// literally.
func TestEnvReachesEverySetting(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"MAILROOM_SHUTDOWN_GRACE":              "3s",
		"MAILROOM_RETENTION":                   "48h",
		"MAILROOM_ALERTS_DISABLED":             "true",
		"MAILROOM_ALERTS_CONSECUTIVE_FAILURES": "4",
		"MAILROOM_DELIVERY_ALLOW_NETWORKS":     "10.0.0.0/8, 10.1.2.3",
		"MAILROOM_MCP_ALLOWED_ORIGINS":         `["https://a.example", "https://b.example"]`,
		"MAILROOM_MCP_TOKENS":                  `[{name: laptop, token: 0123456789abcdef0}]`,
		"MAILROOM_API_TOKEN":                   "a$${b}c",
		"MAILROOM_SOURCES": `
- name: stripe
  verify: {type: stripe, secret: whsec_x}
- name: github
`,
		"MAILROOM_DESTINATIONS": `[{name: billing, url: "https://billing.example/hook", retry: {max_attempts: 5}}]`,
		"MAILROOM_CONNECTIONS":  `[{source: stripe, destination: billing}]`,
	}
	c := config.Default()
	if err := c.ApplyEnv(mapEnv(env)); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(nil); err != nil {
		t.Fatalf("Validate after the environment: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"shutdown.grace", c.Shutdown.Grace.D(), 3 * time.Second},
		{"retention", c.Retention.D(), 48 * time.Hour},
		{"alerts.disabled", c.Alerts.Disabled, true},
		{"alerts.consecutive_failures", c.Alerts.ConsecutiveFailures, 4},
		{"delivery.allow_networks", c.Delivery.AllowNetworks, []string{"10.0.0.0/8", "10.1.2.3"}},
		{"mcp.allowed_origins", c.MCP.AllowedOrigins, []string{"https://a.example", "https://b.example"}},
		{"mcp.tokens", c.MCP.Tokens, []config.MCPToken{{Name: "laptop", Token: "0123456789abcdef0"}}},
		{"api.token, literally", c.API.Token, "a$${b}c"},
		{"sources", len(c.Sources), 2},
		{"sources[0].verify.secret", c.Sources[0].Verify.Secret, "whsec_x"},
		{"destinations[0].retry.max_attempts", c.Destinations[0].Retry.MaxAttempts, 5},
		{"connections", len(c.Connections), 1},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

// TestEnvErrorsNameTheVariable: a value that cannot be decoded, and one
// that does not validate, is reported with the variable's name.
func TestEnvErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	c := config.Default()
	err := c.ApplyEnv(mapEnv(map[string]string{
		"MAILROOM_ALERTS_CONSECUTIVE_FAILURES": "ten",
		"MAILROOM_SOURCES":                     "[{name: a, verfy: {}}]",
		"MAILROOM_DESTINATIONS":                "[unclosed",
	}))
	if err == nil {
		t.Fatal("ApplyEnv accepted values that do not decode")
	}
	for _, want := range []string{
		`alerts.consecutive_failures: must be a whole number, got "ten" (set by MAILROOM_ALERTS_CONSECUTIVE_FAILURES)`,
		`sources[0].verfy: unknown field (did you mean "verify"?) (set by MAILROOM_SOURCES)`,
		`destinations: invalid YAML`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	c = config.Default()
	if err := c.ApplyEnv(mapEnv(map[string]string{"MAILROOM_SOURCES": "[{name: 'bad name'}]", "MAILROOM_RETENTION": "1m"})); err != nil {
		t.Fatal(err)
	}
	err = c.Validate(nil)
	for _, want := range []string{"sources[0].name: invalid name", "(set by MAILROOM_SOURCES)", "retention: 1m0s is shorter", "(set by MAILROOM_RETENTION)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
}
