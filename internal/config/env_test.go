package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/store"
)

func TestApplyEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    func(c *config.Config) // edits a Default() into the expected config
		wantErr string
	}{
		{
			name: "NothingSet",
			env:  nil,
			want: func(c *config.Config) {},
		},
		{
			name: "All",
			env: map[string]string{
				"MAILROOM_LISTEN":     "0.0.0.0:9999",
				"MAILROOM_STORAGE":    "postgres://localhost/mailroom",
				"MAILROOM_API_TOKEN":  "secret-token",
				"MAILROOM_LOG_LEVEL":  "debug",
				"MAILROOM_LOG_FORMAT": "json",
			},
			want: func(c *config.Config) {
				c.Listen = "0.0.0.0:9999"
				c.Storage = "postgres://localhost/mailroom"
				c.API.Token = "secret-token"
				c.Log = config.LogConfig{Level: "debug", Format: "json"}
			},
		},
		{
			name: "DBAlias",
			env:  map[string]string{"MAILROOM_DB": "sqlite:///var/lib/mailroom/m.db"},
			want: func(c *config.Config) { c.Storage = "sqlite:///var/lib/mailroom/m.db" },
		},
		{
			name: "StorageAndDBAgree",
			env:  map[string]string{"MAILROOM_DB": "sqlite://./x.db", "MAILROOM_STORAGE": "sqlite://./x.db"},
			want: func(c *config.Config) { c.Storage = "sqlite://./x.db" },
		},
		{
			name:    "StorageAndDBDisagree",
			env:     map[string]string{"MAILROOM_DB": "sqlite://./x.db", "MAILROOM_STORAGE": "sqlite://./y.db"},
			wantErr: "storage: MAILROOM_STORAGE and MAILROOM_DB are both set and differ",
		},
		{
			name: "EmptyIsIgnored",
			env:  map[string]string{"MAILROOM_LISTEN": "", "MAILROOM_API_TOKEN": ""},
			want: func(c *config.Config) {},
		},
		{
			name: "UnrelatedIgnored",
			env:  map[string]string{"MAILROOM_LISTENER": "x", "LISTEN": "y"},
			want: func(c *config.Config) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.API.Token = "from-file"
			err := cfg.ApplyEnv(mapEnv(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ApplyEnv = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ApplyEnv: %v", err)
			}
			want := config.Default()
			want.API.Token = "from-file"
			tt.want(want)
			if cfg.Listen != want.Listen || cfg.Storage != want.Storage || cfg.API.Token != want.API.Token || cfg.Log != want.Log || cfg.Shutdown != want.Shutdown {
				t.Errorf("got %+v, want %+v", cfg, want)
			}
		})
	}
}

const overrideFile = `listen: 127.0.0.1:8080
storage: sqlite://./mailroom.db
sources:
  - name: s
destinations:
  - name: d
    url: http://127.0.0.1:9000/
`

func TestValidateAfterOverrides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(t *testing.T, c *config.Config)
		want   string // the whole error text
		wantAt bool   // whether the error names the file
	}{
		{
			name: "EnvVariableNamed",
			edit: func(t *testing.T, c *config.Config) {
				if err := c.ApplyEnv(mapEnv(map[string]string{"MAILROOM_LISTEN": "nope"})); err != nil {
					t.Fatal(err)
				}
			},
			want: `listen: "nope" is not host:port (e.g. 127.0.0.1:8080 or :8080) (set by MAILROOM_LISTEN)`,
		},
		{
			name: "EnvDBAliasNamed",
			edit: func(t *testing.T, c *config.Config) {
				if err := c.ApplyEnv(mapEnv(map[string]string{"MAILROOM_DB": "./m.db"})); err != nil {
					t.Fatal(err)
				}
			},
			want: `storage: unsupported storage "./m.db": want sqlite://PATH or postgres://... (for a SQLite file, write sqlite://./m.db) (set by MAILROOM_DB)`,
		},
		{
			name: "FlagAfterEnv",
			edit: func(t *testing.T, c *config.Config) {
				if err := c.ApplyEnv(mapEnv(map[string]string{"MAILROOM_LOG_LEVEL": "debug"})); err != nil {
					t.Fatal(err)
				}
				c.Log.Level = "loud" // a flag, which no variable set
			},
			want: `log.level: unknown level "loud" (want debug, info, warn or error)`,
		},
		{
			name: "ChangedByHand",
			edit: func(t *testing.T, c *config.Config) { c.Listen = "x" },
			want: `listen: "x" is not host:port (e.g. 127.0.0.1:8080 or :8080)`,
		},
		{
			name: "UnchangedFieldKeepsLine",
			edit: func(t *testing.T, c *config.Config) {
				c.Destinations[0].URL = "gopher://x" // the item is still destinations[0] named d
			},
			want:   `override.yaml:7: destinations[0].url: "gopher://x" must be an absolute http:// or https:// URL`,
			wantAt: true,
		},
		{
			name: "AddedItemHasNoLine",
			edit: func(t *testing.T, c *config.Config) {
				c.Sources = append(c.Sources, store.Source{Name: "s"})
			},
			want: `sources[1].name: duplicate source name "s" (first at line 4)`,
		},
		{
			name: "ReplacedItemHasNoLine",
			edit: func(t *testing.T, c *config.Config) {
				c.Destinations[0] = store.Destination{Name: "other"}
			},
			want: `destinations[0].url: required, e.g. https://example.com/hooks`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse([]byte(overrideFile), "override.yaml", nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.edit(t, cfg)
			err = cfg.Validate(nil)
			if err == nil {
				t.Fatalf("Validate succeeded, want %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Validate =\n%s\nwant\n%s", got, tt.want)
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Validate = %T, want a *config.Error", err)
			}
			if named := ce.File != ""; named != tt.wantAt {
				t.Errorf("File = %q, want named=%v", ce.File, tt.wantAt)
			}
		})
	}
}

func TestValidateDoesNotModify(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Connections: []store.Connection{{Source: "s", Destination: "d"}}}
	err := cfg.Validate(nil)
	if err == nil {
		t.Fatal("Validate of an empty config succeeded")
	}
	for _, want := range []string{"listen: required", "storage: unsupported storage", "log.level: unknown level", "connections[0].source: unknown source"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	if cfg.Listen != "" || cfg.Connections[0].ID != "" {
		t.Errorf("Validate modified the config: %+v", cfg)
	}
}
