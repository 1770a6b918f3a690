package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// examplePath is the repository's example config.
const examplePath = "../../examples/mailroom.yaml"

// realOptions returns Options wired as cmd/mailroom wires them: the real
// verifiers and the real CEL compiler, and an environment holding env.
func realOptions(tb testing.TB, env map[string]string) *config.Options {
	tb.Helper()
	compiler, err := route.NewCompiler()
	if err != nil {
		tb.Fatalf("route.NewCompiler: %v", err)
	}
	return &config.Options{
		LookupEnv:   mapEnv(env),
		CheckVerify: func(v verify.Config) error { _, err := verify.New(v, nil); return err },
		CheckExpr:   compiler.Check,
		CheckFilter: compiler.CheckFilter,
	}
}

// mapEnv is a LookupEnv over a map.
func mapEnv(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

// configErrors returns the *config.Error values joined in err.
func configErrors(tb testing.TB, err error) []*config.Error {
	tb.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]*config.Error, 0, len(errs))
	for _, e := range errs {
		var ce *config.Error
		if !errors.As(e, &ce) {
			tb.Fatalf("error %q (%T) is not a *config.Error", e, e)
		}
		out = append(out, ce)
	}
	return out
}

func TestExampleFile(t *testing.T) {
	t.Parallel()
	// No environment at all: every reference in the example has a default.
	cfg, err := config.Load(examplePath, realOptions(t, nil))
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if got, want := cfg.Listen, "127.0.0.1:8080"; got != want {
		t.Errorf("Listen = %q, want %q", got, want)
	}
	if got, want := cfg.Storage, "sqlite://./mailroom.db"; got != want {
		t.Errorf("Storage = %q, want %q", got, want)
	}
	if cfg.API.Token != "" {
		t.Errorf("API.Token = %q, want empty", cfg.API.Token)
	}
	var names []string
	for _, s := range cfg.Sources {
		names = append(names, s.Name+":"+s.Verify.Type)
	}
	if got, want := strings.Join(names, " "), "stripe:stripe github:github shopify:shopify app:standard-webhooks custom:hmac"; got != want {
		t.Errorf("sources = %s, want %s", got, want)
	}
	custom := cfg.Sources[4]
	if custom.Dedup.Key != "body.id" || custom.Dedup.Window.D() != 24*time.Hour {
		t.Errorf("custom dedup = %+v, want key body.id window 24h", custom.Dedup)
	}
	if got := cfg.Sources[0].Verify.Tolerance.D(); got != 5*time.Minute {
		t.Errorf("stripe tolerance = %s, want 5m", got)
	}
	if len(cfg.Destinations) != 1 {
		t.Fatalf("got %d destinations, want 1", len(cfg.Destinations))
	}
	d := cfg.Destinations[0]
	want := store.Destination{
		Name:           "billing",
		URL:            "http://127.0.0.1:9000/hooks",
		Timeout:        store.Duration(30 * time.Second),
		MaxConcurrency: 10,
		RateLimit:      "50/s",
		Retry:          store.RetryPolicy{MaxAttempts: 8, Initial: store.Duration(time.Second), Max: store.Duration(time.Hour)},
		Sign:           store.SignConfig{Type: "standard-webhooks", Secret: d.Sign.Secret},
		Headers:        map[string]string{"X-Mailroom-Env": "demo"},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("destination =\n%+v\nwant\n%+v", d, want)
	}
	if !strings.HasPrefix(d.Sign.Secret, "whsec_") {
		t.Errorf("sign secret = %q, want the whsec_ demo default", d.Sign.Secret)
	}
	if got := cfg.Connections[0]; got.Source != "stripe" || got.Destination != "billing" || got.Filter != `body.type.startsWith("checkout.session.")` {
		t.Errorf("connections[0] = %+v", got)
	}

	// The environment replaces the demo secrets.
	cfg, err = config.Load(examplePath, realOptions(t, map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_real", "MAILROOM_API_TOKEN": "tok"}))
	if err != nil {
		t.Fatalf("Load with env: %v", err)
	}
	if got := cfg.Sources[0].Verify.Secret; got != "whsec_real" {
		t.Errorf("stripe secret = %q, want whsec_real", got)
	}
	if got := cfg.API.Token; got != "tok" {
		t.Errorf("api token = %q, want tok", got)
	}
}

// briefExample is the config from mailroom's design brief, verbatim except
// for the signing secret, whose placeholder "whsec_..." is not base64.
const briefExample = `listen: 127.0.0.1:8080
storage: sqlite://./mailroom.db
api: {token: ${MAILROOM_API_TOKEN}}
sources:
  - name: stripe
    verify: {type: stripe, secret: ${STRIPE_WEBHOOK_SECRET}, tolerance: 5m}
  - name: custom
    verify: {type: hmac, header: X-Signature, algorithm: sha256, encoding: hex, secret: abc}
    dedup: {key: 'body.id', window: 24h}
destinations:
  - name: billing
    url: http://127.0.0.1:9000/hooks
    timeout: 30s
    max_concurrency: 10
    rate_limit: 50/s
    retry: {max_attempts: 8, initial: 1s, max: 1h}
    sign: {type: standard-webhooks, secret: whsec_c2VjcmV0LWtleQ==}
connections:
  - source: stripe
    destination: billing
    filter: 'body.type.startsWith("checkout.session.")'
`

func TestBriefExample(t *testing.T) {
	t.Parallel()
	env := map[string]string{"MAILROOM_API_TOKEN": "tok", "STRIPE_WEBHOOK_SECRET": "whsec_abc"}
	cfg, err := config.Parse([]byte(briefExample), "mailroom.yaml", realOptions(t, env))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	// ${...} works unquoted inside flow mappings such as {token: ${X}},
	// where YAML alone would read its braces as structure.
	if cfg.API.Token != "tok" || cfg.Sources[0].Verify.Secret != "whsec_abc" || cfg.Sources[0].Verify.Tolerance.D() != 5*time.Minute {
		t.Errorf("got token %q, source %+v", cfg.API.Token, cfg.Sources[0])
	}

	// Unset, the variables are errors naming field, line and variable.
	_, err = config.Parse([]byte(briefExample), "mailroom.yaml", realOptions(t, nil))
	for _, want := range []string{
		"mailroom.yaml:3: api.token: environment variable MAILROOM_API_TOKEN is not set",
		"mailroom.yaml:6: sources[0].verify.secret: environment variable STRIPE_WEBHOOK_SECRET is not set",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse without env = %v, want %q", err, want)
		}
	}
}

// TestDocsExamples parses the configs shown in docs/*.md (every YAML block
// made of top-level settings, fragments of one entry aside), so that the
// documentation cannot drift from the format.
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	key := "whsec_" + "c2VjcmV0LWtleQ=="
	env := map[string]string{
		"STRIPE_WEBHOOK_SECRET": "whsec_x", "GITHUB_WEBHOOK_SECRET": "g", "SHOPIFY_WEBHOOK_SECRET": "s",
		"APP_WEBHOOK_SECRET": key, "CUSTOM_SECRET": "c", "PARTNER_PASSWORD": "p", "INTERNAL_KEY": "k",
		"BILLING_SIGNING_SECRET": key, "PAYMENTS_MCP_TOKEN": "t", "GITHUB_TOKEN": "t", "PGPASSWORD": "p",
		"SLACK_SIGNING_SECRET": "s", "TWILIO_AUTH_TOKEN": "t", "DISCORD_PUBLIC_KEY": strings.Repeat("ab", 32),
		"MAILROOM_INTROSPECTION_SECRET": "s", "ALERT_WEBHOOK_URL": "https://hooks.slack.example/T0/B0/x",
	}
	opts := realOptions(t, env)
	topLevel := map[string]bool{}
	for f := range reflect.TypeFor[config.Config]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		topLevel[name] = true
	}
	topKey := regexp.MustCompile(`(?m)^([a-z_]+):`)
	whole := 0
	for _, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(f, "../../")
		for i, block := range strings.Split(string(doc), "```yaml\n")[1:] {
			block, _, _ = strings.Cut(block, "```")
			shaped := false // any top-level setting: a misspelled one beside it is then an error
			for _, k := range topKey.FindAllStringSubmatch(block, -1) {
				shaped = shaped || topLevel[k[1]]
			}
			if !shaped {
				continue // a fragment (one entry, one verify), not settings
			}
			if strings.Contains(block, "connections:") && !strings.Contains(block, "sources:") {
				continue // connections alone: their sources are declared elsewhere
			}
			if strings.Contains(block, "destinations:") && strings.Contains(block, "sources:") {
				whole++
			}
			if _, err := config.Parse([]byte(block), fmt.Sprintf("%s:block%d.yaml", name, i+1), opts); err != nil {
				t.Errorf("%s: yaml block %d does not parse:\n%v", name, i+1, err)
			}
		}
	}
	if whole < 2 {
		t.Errorf("found %d whole configs in the docs, want at least 2", whole)
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	if err := cfg.Validate(realOptions(t, nil)); err != nil {
		t.Fatalf("Default().Validate: %v", err)
	}
	want := config.Config{
		Listen:    config.DefaultListen,
		Storage:   config.DefaultStorage,
		Log:       config.LogConfig{Level: "info", Format: "text"},
		Shutdown:  config.ShutdownConfig{Grace: store.Duration(10 * time.Second)},
		Alerts:    config.AlertsConfig{ConsecutiveFailures: 10, DeadDeliveries: 1},
		Retention: store.Duration(30 * 24 * time.Hour),
		API:       config.APIConfig{AuditRetention: store.Duration(365 * 24 * time.Hour)},
	}
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("Default() = %+v, want %+v", *cfg, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestLoadNamesFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:8080\nlog: {level: loud}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path, nil)
	if err == nil || !strings.Contains(err.Error(), path+":2: log.level: unknown level \"loud\"") {
		t.Fatalf("Load = %v, want the path, line 2 and log.level", err)
	}
}

func TestParseGood(t *testing.T) {
	t.Parallel()
	opts := realOptions(t, nil)
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, c *config.Config)
	}{
		{
			name: "EmptyFileIsDefault",
			yaml: "",
			check: func(t *testing.T, c *config.Config) {
				if !reflect.DeepEqual(c.Listen, config.DefaultListen) || c.Log.Level != "info" || c.Shutdown.Grace.D() != 10*time.Second {
					t.Errorf("got %+v, want defaults", c)
				}
			},
		},
		{
			name: "CommentsOnly",
			yaml: "# nothing here\n# yet\n",
			check: func(t *testing.T, c *config.Config) {
				if c.Storage != config.DefaultStorage {
					t.Errorf("Storage = %q", c.Storage)
				}
			},
		},
		{
			name: "NullsKeepDefaults",
			yaml: "listen:\nlog:\n  level: ~\n  format: json\nsources:\n",
			check: func(t *testing.T, c *config.Config) {
				if c.Listen != config.DefaultListen || c.Log.Level != "info" || c.Log.Format != "json" || c.Sources != nil {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name: "EmptyValueMeansDefault",
			yaml: "listen: ${LISTEN:-}\nstorage: \"\"\nshutdown: {grace: 0s}\n",
			check: func(t *testing.T, c *config.Config) {
				if c.Listen != config.DefaultListen || c.Storage != config.DefaultStorage || c.Shutdown.Grace.D() != config.DefaultShutdownGrace {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name: "TopLevel",
			yaml: "listen: :9090\nstorage: postgres://u:p@db:5432/mailroom?sslmode=disable\napi: {token: t0k}\nlog: {level: debug, format: json}\nshutdown: {grace: 1m30s}\n",
			check: func(t *testing.T, c *config.Config) {
				want := config.Config{
					Listen:   ":9090",
					Storage:  "postgres://u:p@db:5432/mailroom?sslmode=disable",
					API:      config.APIConfig{Token: "t0k"},
					Log:      config.LogConfig{Level: "debug", Format: "json"},
					Shutdown: config.ShutdownConfig{Grace: store.Duration(90 * time.Second)},
				}
				got := *c
				if got.Listen != want.Listen || got.Storage != want.Storage || got.API.Token != want.API.Token || got.API.AllowedHosts != nil || got.Log != want.Log || got.Shutdown != want.Shutdown {
					t.Errorf("got %+v, want %+v", got, want)
				}
			},
		},
		{
			name: "AnchorsAndMerge",
			yaml: `x-retry: &retry
  max_attempts: 3
  initial: 2s
destinations:
  - name: a
    url: https://a.example/h
    retry: *retry
  - name: b
    url: https://b.example/h
    retry:
      <<: *retry
      max_attempts: 5
`,
			check: func(t *testing.T, c *config.Config) {
				a, b := c.Destinations[0], c.Destinations[1]
				if a.Retry.MaxAttempts != 3 || a.Retry.Initial.D() != 2*time.Second {
					t.Errorf("a.Retry = %+v", a.Retry)
				}
				if b.Retry.MaxAttempts != 5 || b.Retry.Initial.D() != 2*time.Second {
					t.Errorf("b.Retry = %+v", b.Retry)
				}
			},
		},
		{
			name: "MergeKeys",
			yaml: `destinations:
  - &base
    name: a
    url: https://a.example/h
    retry: {max_attempts: 3, initial: 2s}
    headers: {X-A: "1"}
  - <<: *base
    name: b
    retry: {max_attempts: 5}
`,
			check: func(t *testing.T, c *config.Config) {
				a, b := c.Destinations[0], c.Destinations[1]
				if a.Retry.MaxAttempts != 3 || a.Retry.Initial.D() != 2*time.Second {
					t.Errorf("a.Retry = %+v", a.Retry)
				}
				// A merge is shallow: b's own retry replaces a's whole.
				if b.Name != "b" || b.URL != a.URL || b.Retry.MaxAttempts != 5 || b.Retry.Initial != 0 || b.Headers["X-A"] != "1" {
					t.Errorf("b = %+v", b)
				}
			},
		},
		{
			name: "EnvExpansion",
			yaml: `api: {token: "${TOKEN}"}
sources:
  - name: ${SRC_NAME:-hooks}
    verify: {type: stripe, secret: "${SECRET}"}
    max_body_bytes: ${MAX_BODY:-2048}
destinations:
  - name: d
    url: http://${HOST}:${PORT:-80}/x
    max_concurrency: ${CONC}
    ordered: ${ORDERED:-false}
    timeout: ${TIMEOUT:-5s}
`,
			env: map[string]string{"TOKEN": "tok", "SECRET": "whsec_x", "HOST": "example.com", "CONC": "7", "TIMEOUT": "", "PORT": ""},
			check: func(t *testing.T, c *config.Config) {
				if c.API.Token != "tok" {
					t.Errorf("token = %q", c.API.Token)
				}
				s := c.Sources[0]
				if s.Name != "hooks" || s.Verify.Secret != "whsec_x" || s.MaxBodyBytes != 2048 {
					t.Errorf("source = %+v", s)
				}
				d := c.Destinations[0]
				if d.URL != "http://example.com:80/x" || d.MaxConcurrency != 7 || d.Ordered || d.Timeout.D() != 5*time.Second {
					t.Errorf("destination = %+v", d)
				}
			},
		},
		{
			name: "EnvValueCannotInjectStructure",
			yaml: "api:\n  token: ${TOKEN}\n",
			env:  map[string]string{"TOKEN": "x\nlisten: 0.0.0.0:1\nsources: [{name: evil}]"},
			check: func(t *testing.T, c *config.Config) {
				if c.Listen != config.DefaultListen || len(c.Sources) != 0 {
					t.Errorf("the variable changed the structure: %+v", c)
				}
				if !strings.HasPrefix(c.API.Token, "x\nlisten:") {
					t.Errorf("token = %q, want the variable's text", c.API.Token)
				}
			},
		},
		{
			name: "DollarEscapes",
			yaml: "api: {token: 'a$$b$${X}c$d$'}\n",
			check: func(t *testing.T, c *config.Config) {
				if got, want := c.API.Token, "a$b${X}c$d$"; got != want {
					t.Errorf("token = %q, want %q", got, want)
				}
			},
		},
		{
			name: "ReferencesInFlowCollections",
			yaml: "api: {token: ${A}-${B:-b}}\nsources: [{name: s, verify: {type: github, secrets: [${A}, x${A:-}y, '${B:-{x}']}}]\n",
			env:  map[string]string{"A": "a"},
			check: func(t *testing.T, c *config.Config) {
				if c.API.Token != "a-b" {
					t.Errorf("token = %q", c.API.Token)
				}
				// A default ends at the first "}".
				if got, want := c.Sources[0].Verify.Secrets, []string{"a", "xay", "{x"}; !reflect.DeepEqual(got, want) {
					t.Errorf("secrets = %q, want %q", got, want)
				}
			},
		},
		{
			name: "ReferenceHidesHash",
			yaml: "api:\n  token: ${NOPE:-a #b}  # a comment\n",
			check: func(t *testing.T, c *config.Config) {
				if c.API.Token != "a #b" {
					t.Errorf("token = %q", c.API.Token)
				}
			},
		},
		{
			name: "PrivateUseCharactersKept",
			yaml: "api:\n  token: \"\ue000${A}\ue001\"\n",
			env:  map[string]string{"A": "a"},
			check: func(t *testing.T, c *config.Config) {
				if c.API.Token != "\ue000a\ue001" {
					t.Errorf("token = %q", c.API.Token)
				}
			},
		},
		{
			name: "SetButEmptyVariable",
			yaml: "api: {token: '${EMPTY}'}\n",
			env:  map[string]string{"EMPTY": ""},
			check: func(t *testing.T, c *config.Config) {
				if c.API.Token != "" {
					t.Errorf("token = %q", c.API.Token)
				}
			},
		},
		{
			name: "DefaultUsedWhenEmpty",
			yaml: "api: {token: '${EMPTY:-fallback}'}\n",
			env:  map[string]string{"EMPTY": ""},
			check: func(t *testing.T, c *config.Config) {
				if c.API.Token != "fallback" {
					t.Errorf("token = %q", c.API.Token)
				}
			},
		},
		{
			name: "QuotedAndScalarTypes",
			yaml: `sources:
  - name: 123
    verify: {type: hmac, header: X-Sig, secret: 0xFF}
destinations:
  - name: d
    url: https://example.com
    max_concurrency: "4"
    ordered: TRUE
    retry: {retry_on: [429, "503"]}
`,
			check: func(t *testing.T, c *config.Config) {
				if c.Sources[0].Name != "123" || c.Sources[0].Verify.Secret != "0xFF" {
					t.Errorf("source = %+v", c.Sources[0])
				}
				d := c.Destinations[0]
				if d.MaxConcurrency != 4 || !d.Ordered || !reflect.DeepEqual(d.Retry.RetryOn, []int{429, 503}) {
					t.Errorf("destination = %+v", d)
				}
			},
		},
		{
			name: "ConnectionsWithIDs",
			yaml: `sources: [{name: s}]
destinations: [{name: d, url: "http://localhost:1/"}]
connections:
  - {source: s, destination: d}
  - {id: s-to-d-paid, source: s, destination: d, filter: 'body.paid == true'}
`,
			check: func(t *testing.T, c *config.Config) {
				if len(c.Connections) != 2 || c.Connections[1].ID != "s-to-d-paid" {
					t.Errorf("connections = %+v", c.Connections)
				}
			},
		},
		{
			name: "SecretsList",
			yaml: "sources:\n  - name: s\n    verify:\n      type: github\n      secrets: [old, '${NEW:-new}']\n",
			check: func(t *testing.T, c *config.Config) {
				if got := c.Sources[0].Verify.Secrets; !reflect.DeepEqual(got, []string{"old", "new"}) {
					t.Errorf("secrets = %q", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := *opts
			o.LookupEnv = mapEnv(tt.env)
			cfg, err := config.Parse([]byte(tt.yaml), "mailroom.yaml", &o)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, cfg)
			// A parsed config stays valid when validated again.
			if err := cfg.Validate(&o); err != nil {
				t.Errorf("Validate after Parse: %v", err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	opts := realOptions(t, map[string]string{"SET": "1"})
	tests := []struct {
		name string
		yaml string
		// want are substrings of the error, each of the form
		// "mailroom.yaml:LINE: FIELD: reason".
		want []string
		// count, if non-zero, is the number of problems expected.
		count int
	}{
		{
			name: "UnknownTopLevelField",
			yaml: "listen: 127.0.0.1:8080\nlisen: x\n",
			want: []string{`mailroom.yaml:2: lisen: unknown field (did you mean "listen"?)`},
		},
		{
			name: "UnknownNestedField",
			yaml: "sources:\n  - name: stripe\n    verfy: {type: stripe, secret: x}\n",
			want: []string{`mailroom.yaml:3: sources[0].verfy: unknown field (did you mean "verify"?)`},
		},
		{
			name:  "ExtensionKeysOnlyAtTopLevel",
			yaml:  "x-note: fine\nsources:\n  - name: s\n    x-note: not here\n",
			want:  []string{`mailroom.yaml:4: sources[0].x-note: unknown field`},
			count: 1,
		},
		{
			name: "UnknownFieldNoSuggestion",
			yaml: "sources:\n  - name: s\n    colour: blue\n",
			want: []string{`mailroom.yaml:3: sources[0].colour: unknown field`},
		},
		{
			name: "UnknownVerifyType",
			yaml: "sources:\n  - name: a\n  - name: b\n    verify:\n      type: strpe\n",
			want: []string{`mailroom.yaml:5: sources[1].verify.type: unknown type "strpe"`},
		},
		{
			name: "VerifySecretMissing",
			yaml: "sources:\n  - name: s\n    verify: {type: stripe}\n",
			want: []string{`mailroom.yaml:3: sources[0].verify.secret: required for type "stripe"`},
		},
		{
			name: "VerifyHMACAlgorithm",
			yaml: "sources:\n  - name: s\n    verify:\n      type: hmac\n      header: X-Sig\n      secret: x\n      algorithm: md5\n",
			want: []string{`mailroom.yaml:7: sources[0].verify.algorithm: "md5" is not supported`},
		},
		{
			name: "NameMissing",
			yaml: "sources:\n  - verify: {type: none}\n",
			want: []string{`mailroom.yaml:2: sources[0].name: required`},
		},
		{
			name: "NameInvalid",
			yaml: "sources:\n  - name: has space\ndestinations:\n  - name: -dash\n    url: http://x\n",
			want: []string{
				`mailroom.yaml:2: sources[0].name: invalid name "has space"`,
				`mailroom.yaml:4: destinations[0].name: invalid name "-dash"`,
			},
		},
		{
			name: "NameTooLong",
			yaml: "sources:\n  - name: " + strings.Repeat("a", 65) + "\n",
			want: []string{`mailroom.yaml:2: sources[0].name: invalid name`},
		},
		{
			name: "DuplicateNames",
			yaml: "sources:\n  - name: s\n  - name: t\n  - name: s\ndestinations:\n  - {name: d, url: 'http://a'}\n  - {name: d, url: 'http://b'}\n",
			want: []string{
				`mailroom.yaml:4: sources[2].name: duplicate source name "s" (first at line 2)`,
				`mailroom.yaml:7: destinations[1].name: duplicate destination name "d" (first at line 6)`,
			},
			count: 2,
		},
		{
			name: "DedupKeyDoesNotCompile",
			yaml: "sources:\n  - name: s\n    dedup:\n      key: 'body.('\n",
			want: []string{`mailroom.yaml:4: sources[0].dedup.key: compile "body.("`},
		},
		{
			name: "DedupWindowNotADuration",
			yaml: "sources:\n  - name: s\n    dedup: {window: soon}\n",
			want: []string{`mailroom.yaml:3: sources[0].dedup.window: invalid duration "soon"`},
		},
		{
			name: "NegativeDuration",
			yaml: "sources:\n  - name: s\n    dedup:\n      window: -1h\n",
			want: []string{`mailroom.yaml:4: sources[0].dedup.window: invalid duration "-1h": must not be negative`},
		},
		{
			name: "MaxBodyBytesNegative",
			yaml: "sources:\n  - name: s\n    max_body_bytes: -1\n",
			want: []string{`mailroom.yaml:3: sources[0].max_body_bytes: must not be negative`},
		},
		{
			name: "DestinationURL",
			yaml: `destinations:
  - name: a
    url: ftp://example.com/x
  - name: b
    url: /relative
  - name: c
    url: http://
  - name: d
  - name: e
    url: http://example.com:99999/
`,
			want: []string{
				`mailroom.yaml:3: destinations[0].url: "ftp://example.com/x" must be an absolute http:// or https:// URL`,
				`mailroom.yaml:5: destinations[1].url: "/relative" must be an absolute`,
				`mailroom.yaml:7: destinations[2].url: "http://" has no host`,
				`mailroom.yaml:8: destinations[3].url: required`,
				`mailroom.yaml:10: destinations[4].url: "http://example.com:99999/": port must be`,
			},
			count: 5,
		},
		{
			name: "DestinationNumbers",
			yaml: `destinations:
  - name: d
    url: https://example.com
    timeout: 30
    max_concurrency: -1
    rate_limit: fast
`,
			want: []string{
				`mailroom.yaml:4: destinations[0].timeout: invalid duration "30"`,
				`mailroom.yaml:5: destinations[0].max_concurrency: must not be negative`,
				`mailroom.yaml:6: destinations[0].rate_limit: invalid rate "fast"`,
			},
			count: 3,
		},
		{
			name: "NotAWholeNumber",
			yaml: "destinations:\n  - name: d\n    url: https://example.com\n    max_concurrency: ten\n    retry: {max_attempts: 2.5}\n",
			want: []string{
				`mailroom.yaml:4: destinations[0].max_concurrency: must be a whole number, got "ten"`,
				`mailroom.yaml:5: destinations[0].retry.max_attempts: must be a whole number, got "2.5"`,
			},
			count: 2,
		},
		{
			name: "NotABool",
			yaml: "destinations:\n  - name: d\n    url: https://example.com\n    ordered: maybe\n",
			want: []string{`mailroom.yaml:4: destinations[0].ordered: must be true or false, got "maybe"`},
		},
		{
			name: "Retry",
			yaml: `destinations:
  - name: d
    url: https://example.com
    retry:
      max_attempts: 1001
      initial: 2h
      max: 1h
      retry_on: [500, 99, 600]
`,
			want: []string{
				`mailroom.yaml:5: destinations[0].retry.max_attempts: 1001 is out of range`,
				`mailroom.yaml:6: destinations[0].retry.initial: 2h0m0s is longer than retry.max 1h0m0s`,
				`mailroom.yaml:8: destinations[0].retry.retry_on[1]: 99 is not an HTTP status code`,
				`mailroom.yaml:8: destinations[0].retry.retry_on[2]: 600 is not an HTTP status code`,
			},
			count: 4,
		},
		{
			name: "Sign",
			yaml: `destinations:
  - name: a
    url: https://example.com
    sign: {type: hmac, secret: x}
  - name: b
    url: https://example.com
    sign:
      type: standard-webhooks
  - name: c
    url: https://example.com
    sign:
      type: standard-webhooks
      secret: "whsec_!!!"
`,
			want: []string{
				`mailroom.yaml:4: destinations[0].sign.type: "hmac" cannot sign deliveries (want standard-webhooks`,
				`mailroom.yaml:7: destinations[1].sign.secret: required for type "standard-webhooks"`,
				`mailroom.yaml:13: destinations[2].sign.secret: standard-webhooks secret must be whsec_ followed by base64`,
			},
			count: 3,
		},
		{
			name: "Headers",
			yaml: "destinations:\n  - name: d\n    url: https://example.com\n    headers:\n      Bad Header: x\n      X-Ok: \"a\\r\\nb\"\n",
			want: []string{
				`mailroom.yaml:5: destinations[0].headers.Bad Header: invalid header name "Bad Header"`,
				`mailroom.yaml:6: destinations[0].headers.X-Ok: header value must not contain CR, LF or NUL`,
			},
		},
		{
			name: "Connections",
			yaml: `sources: [{name: s}, {name: t}]
destinations: [{name: d, url: "http://x"}]
connections:
  - source: nope
    destination: d
  - source: s
    destination: gone
  - destination: d
  - source: s
    destination: d
    filter: 'body.type =='
  - source: s
    destination: d
  - id: "bad id"
    source: t
    destination: d
  - {source: t, destination: d, filter: '"paid"'}
`,
			want: []string{
				`mailroom.yaml:4: connections[0].source: unknown source "nope" (sources in this file: s, t)`,
				`mailroom.yaml:7: connections[1].destination: unknown destination "gone" (destinations in this file: d)`,
				`mailroom.yaml:8: connections[2].source: required`,
				`mailroom.yaml:11: connections[3].filter: compile filter "body.type =="`,
				`mailroom.yaml:12: connections[4]: duplicate connection "s->d" (first at line 9)`,
				`mailroom.yaml:14: connections[5].id: invalid id "bad id"`,
				`mailroom.yaml:17: connections[6].filter: compile filter "\"paid\"": yields string, want bool`,
			},
			count: 7,
		},
		{
			name: "ConnectionsWithNothingDeclared",
			yaml: "connections:\n  - {source: s, destination: d}\n",
			want: []string{
				`mailroom.yaml:2: connections[0].source: unknown source "s" (no sources are declared in this file)`,
				`mailroom.yaml:2: connections[0].destination: unknown destination "d" (no destinations are declared in this file)`,
			},
		},
		{
			name: "TopLevelValues",
			yaml: "listen: nonsense\nstorage: mysql://db\nlog:\n  level: verbose\n  format: xml\n",
			want: []string{
				`mailroom.yaml:1: listen: "nonsense" is not host:port`,
				`mailroom.yaml:2: storage: unsupported storage "mysql://db"`,
				`mailroom.yaml:4: log.level: unknown level "verbose"`,
				`mailroom.yaml:5: log.format: unknown format "xml"`,
			},
			count: 4,
		},
		{
			name: "ListenPort",
			yaml: "listen: localhost:http\n",
			want: []string{`mailroom.yaml:1: listen: "localhost:http": port must be a number`},
		},
		{
			name: "UnsetVariable",
			yaml: "listen: 127.0.0.1:8080\nsources:\n  - name: s\n    verify:\n      type: stripe\n      secret: ${STRIPE_SECRET}\n",
			want: []string{`mailroom.yaml:6: sources[0].verify.secret: environment variable STRIPE_SECRET is not set (write ${STRIPE_SECRET:-} to allow it to be empty)`},
			// The secret is not reported a second time as missing.
			count: 1,
		},
		{
			name:  "UnsetVariableInName",
			yaml:  "sources:\n  - name: ${NAME}\n",
			want:  []string{`mailroom.yaml:2: sources[0].name: environment variable NAME is not set`},
			count: 1,
		},
		{
			name: "BadReferences",
			yaml: "api: {token: 'abc${'}\nlog: {level: '${1X}'}\nlisten: '${A:-${SET}}'\n",
			want: []string{
				`mailroom.yaml:1: api.token: unterminated ${`,
				`mailroom.yaml:2: log.level: invalid reference ${1X}`,
				`mailroom.yaml:3: listen: invalid reference ${A:-${SET}: a default cannot hold another`,
			},
			count: 3,
		},
		{
			name:  "SyntaxError",
			yaml:  "listen: 127.0.0.1:8080\nsources:\n  - name: a\n    verify: {type: x\n",
			want:  []string{`mailroom.yaml:4: invalid YAML: did not find expected ',' or '}'`},
			count: 1,
		},
		{
			name:  "SyntaxErrorOnFirstLine",
			yaml:  "listen: a: b\n",
			want:  []string{`mailroom.yaml:1: invalid YAML: mapping values are not allowed in this context`},
			count: 1,
		},
		{
			name:  "UnknownAnchor",
			yaml:  "listen: 127.0.0.1:8080\nsources:\n  - *nope\n",
			want:  []string{`mailroom.yaml:3: invalid YAML: unknown anchor 'nope' referenced`},
			count: 1,
		},
		{
			name:  "Tabs",
			yaml:  "sources:\n\t- name: a\n",
			want:  []string{`mailroom.yaml:2: invalid YAML: found character that cannot start any token`},
			count: 1,
		},
		{
			name:  "ListExpected",
			yaml:  "sources:\n  stripe:\n    verify: {type: stripe}\n",
			want:  []string{`mailroom.yaml:2: sources: must be a list, got a mapping; start each entry with "- "`},
			count: 1,
		},
		{
			name: "MappingExpected",
			yaml: "api: secret\nsources:\n  - stripe\n",
			want: []string{
				`mailroom.yaml:1: api: must be a mapping of keys to values, got "secret"`,
				`mailroom.yaml:3: sources[0]: must be a mapping of keys to values, got "stripe"`,
			},
			count: 2,
		},
		{
			name: "ScalarExpected",
			yaml: "listen: [a, b]\nsources:\n  - name: {x: 1}\n",
			want: []string{
				`mailroom.yaml:1: listen: must be a string, got a list`,
				`mailroom.yaml:3: sources[0].name: must be a string, got a mapping`,
			},
			count: 2,
		},
		{
			name:  "TopLevelNotAMapping",
			yaml:  "- listen: x\n",
			want:  []string{`mailroom.yaml:1: must be a mapping of keys to values, got a list`},
			count: 1,
		},
		{
			name:  "DuplicateKey",
			yaml:  "listen: 127.0.0.1:1\nstorage: sqlite://./a.db\nlisten: 127.0.0.1:2\n",
			want:  []string{`mailroom.yaml:3: listen: key given twice (first at line 1)`},
			count: 1,
		},
		{
			name: "NonStringKey",
			yaml: "? [a]\n: b\n",
			want: []string{`mailroom.yaml:1: keys must be plain strings, got a list`},
		},
		{
			name:  "TwoDocuments",
			yaml:  "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n",
			want:  []string{`the file holds more than one YAML document`},
			count: 1,
		},
		{
			name: "BadMerge",
			yaml: "log:\n  <<: text\n",
			want: []string{`mailroom.yaml:2: log: << must merge a mapping or a list of mappings, got "text"`},
		},
		{
			name: "ManyProblemsAllReportedInLineOrder",
			yaml: `listen: nope
sources:
  - name: s
    verify: {type: strpe}
destinations:
  - name: d
    url: ftp://x
connections:
  - source: s
    destination: x
`,
			want: []string{
				"mailroom.yaml:1: listen:",
				"\nmailroom.yaml:4: sources[0].verify.type:",
				"\nmailroom.yaml:7: destinations[0].url:",
				"\nmailroom.yaml:10: connections[0].destination:",
			},
			count: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse([]byte(tt.yaml), "mailroom.yaml", opts)
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want an error", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with its error")
			}
			msg := err.Error()
			last := -1
			for _, w := range tt.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Errorf("error does not contain %q; got:\n%s", w, msg)
					continue
				}
				if tt.name == "ManyProblemsAllReportedInLineOrder" && i < last {
					t.Errorf("%q is out of line order in:\n%s", w, msg)
				}
				last = i
			}
			errs := configErrors(t, err)
			if tt.count > 0 && len(errs) != tt.count {
				t.Errorf("got %d problems, want %d:\n%s", len(errs), tt.count, msg)
			}
			for _, e := range errs {
				if e.File != "mailroom.yaml" || e.Line == 0 {
					t.Errorf("problem %q has no file and line", e)
				}
			}
		})
	}
}

func TestParseAliasBomb(t *testing.T) {
	t.Parallel()
	// Each level merges the one before ten times: 10^9 merged keys if
	// expanded naively.
	var b strings.Builder
	b.WriteString("x-0: &a0 {token: t}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x-%d: &a%d {<<: [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("api: *a9\n")
	_, err := config.Parse([]byte(b.String()), "bomb.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "too large once its aliases are expanded") {
		t.Fatalf("Parse = %.300v, want the alias budget error", err)
	}
}

func TestCheckVerifyErrorWithoutField(t *testing.T) {
	t.Parallel()
	boom := errors.New("no such scheme here")
	opts := &config.Options{CheckVerify: func(v verify.Config) error {
		if v.Type == "x" {
			return boom
		}
		return nil
	}}
	_, err := config.Parse([]byte("sources:\n  - name: s\n    verify: {type: x}\n"), "m.yaml", opts)
	if !errors.Is(err, boom) {
		t.Fatalf("Parse = %v, want it to wrap the hook's error", err)
	}
	if got, want := err.Error(), "m.yaml:3: sources[0].verify: no such scheme here"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func TestVerifyFieldErrorUnwraps(t *testing.T) {
	t.Parallel()
	_, err := config.Parse([]byte("sources:\n  - name: s\n    verify: {type: strpe}\n"), "m.yaml", realOptions(t, nil))
	var ce *verify.ConfigError
	if !errors.As(err, &ce) || ce.Field != "type" {
		t.Fatalf("Parse = %v, want a *verify.ConfigError for type inside", err)
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	reason := errors.New("bad")
	tests := []struct {
		name string
		err  *config.Error
		want string
	}{
		{name: "All", err: &config.Error{File: "m.yaml", Line: 12, Field: "sources[1].verify.type", Err: reason}, want: "m.yaml:12: sources[1].verify.type: bad"},
		{name: "NoLine", err: &config.Error{File: "m.yaml", Field: "listen", Err: reason}, want: "m.yaml: listen: bad"},
		{name: "NoFile", err: &config.Error{Line: 3, Field: "listen", Err: reason}, want: "line 3: listen: bad"},
		{name: "FieldOnly", err: &config.Error{Field: "listen", Err: reason}, want: "listen: bad"},
		{name: "NoField", err: &config.Error{File: "m.yaml", Line: 1, Err: reason}, want: "m.yaml:1: bad"},
		{name: "NoReason", err: &config.Error{Field: "listen"}, want: "listen: invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if tt.err.Err != nil && !errors.Is(tt.err, reason) {
				t.Errorf("errors.Is(err, reason) = false")
			}
		})
	}
}

// TestMCPOAuth: mcp.oauth is read, and the authenticator's complaints
// (wired through Options.CheckMCPOAuth, as cmd/mailroom does) name the
// file, line and key.
func TestMCPOAuth(t *testing.T) {
	t.Parallel()
	check := func(o config.MCPOAuthConfig) error {
		_, err := mcpauth.New(mcpauth.Options{Resource: o.Resource, AuthorizationServers: o.AuthorizationServers, JWKSURL: o.JWKSURL,
			IntrospectionURL: o.IntrospectionURL, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes, Algorithms: o.Algorithms, Leeway: o.Leeway.D()})
		return err
	}
	good := `mcp:
  oauth:
    resource: https://mailroom.example.com/mcp
    authorization_servers: [https://auth.example.com]
    scopes: [mailroom:mcp]
    leeway: 10s
`
	cfg, err := config.Parse([]byte(good), "m.yaml", &config.Options{CheckMCPOAuth: check})
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.MCP.OAuth; !o.Enabled() || o.Resource != "https://mailroom.example.com/mcp" || o.Leeway.D() != 10*time.Second {
		t.Errorf("parsed %+v", o)
	}
	if d := config.Default(); d.MCP.OAuth.Enabled() {
		t.Error("OAuth is on by default")
	}
	for _, tc := range []struct{ yaml, want string }{
		{"mcp:\n  oauth:\n    authorization_servers: [https://auth.example.com]\n", "m.yaml:2: mcp.oauth.resource:"},
		{"mcp:\n  oauth:\n    resource: http://mailroom.example.com/mcp\n    authorization_servers: [https://auth.example.com]\n", "m.yaml:3: mcp.oauth.resource: \"http://mailroom.example.com/mcp\" must use https"},
		{"mcp:\n  oauth:\n    resource: https://m.example.com/mcp\n    authorization_servers:\n      - https://auth.example.com\n      - ftp://x\n", "m.yaml:6: mcp.oauth.authorization_servers[1]:"},
		{"mcp:\n  oauth:\n    resource: https://m.example.com/mcp\n    authorization_servers: [https://auth.example.com]\n    algorithms: [HS256]\n", "m.yaml:5: mcp.oauth.algorithms: \"HS256\" is not accepted"},
		{"mcp:\n  oauth:\n    resource: https://m.example.com/mcp\n    authorization_servers: [https://auth.example.com]\n    introspection_url: https://auth.example.com/introspect\n", "m.yaml:2: mcp.oauth.client_id:"},
		{"mcp:\n  tokens:\n    - name: oauth:x\n      token: 0123456789abcdef\n", "m.yaml:3: mcp.tokens[0].name: must not start with \"oauth:\""},
	} {
		_, err := config.Parse([]byte(tc.yaml), "m.yaml", &config.Options{CheckMCPOAuth: check})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
