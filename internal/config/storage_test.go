package config_test

import (
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/config"
)

func TestParseStorage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dsn        string
		driver     string
		target     string
		wantErr    string
		notInError string
	}{
		{dsn: "sqlite://./mailroom.db", driver: "sqlite", target: "./mailroom.db"},
		{dsn: "sqlite://mailroom.db", driver: "sqlite", target: "mailroom.db"},
		{dsn: "sqlite://data/dir/m.db", driver: "sqlite", target: "data/dir/m.db"},
		{dsn: "sqlite:///var/lib/mailroom/mailroom.db", driver: "sqlite", target: "/var/lib/mailroom/mailroom.db"},
		{dsn: "SQLite://./x.db", driver: "sqlite", target: "./x.db"},
		{dsn: "postgres://mailroom:pw@localhost:5432/mailroom?sslmode=disable", driver: "postgres", target: "postgres://mailroom:pw@localhost:5432/mailroom?sslmode=disable"},
		{dsn: "postgresql://localhost/mailroom", driver: "postgres", target: "postgresql://localhost/mailroom"},
		{dsn: "postgres:///mailroom?host=/var/run/postgresql", driver: "postgres", target: "postgres:///mailroom?host=/var/run/postgresql"},
		{dsn: "", wantErr: `unsupported storage "": want sqlite://PATH or postgres://...`},
		{dsn: "sqlite://", wantErr: "sqlite storage needs a file path"},
		{dsn: "./mailroom.db", wantErr: "(for a SQLite file, write sqlite://./mailroom.db)"},
		{dsn: "sqlite:./mailroom.db", wantErr: `unsupported storage "sqlite:./mailroom.db"`},
		{dsn: "mysql://root:hunter2@db/mailroom", wantErr: `unsupported storage "mysql://root:********@db/mailroom"`, notInError: "hunter2"},
		{dsn: "postgres://u:hunter2@host:5432/db%zz", wantErr: `invalid postgres DSN`, notInError: "hunter2"},
		{dsn: "host=localhost password=hunter2 dbname=x", wantErr: "unsupported storage", notInError: "hunter2x"},
		{dsn: "sqlite://a\x00b", wantErr: "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			t.Parallel()
			driver, target, err := config.ParseStorage(tt.dsn)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseStorage(%q) = %q, %q, %v; want error %q", tt.dsn, driver, target, err, tt.wantErr)
				}
				if tt.notInError != "" && strings.Contains(err.Error(), tt.notInError) {
					t.Errorf("error %q repeats %q", err, tt.notInError)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStorage(%q): %v", tt.dsn, err)
			}
			if driver != tt.driver || target != tt.target {
				t.Errorf("ParseStorage(%q) = %q, %q; want %q, %q", tt.dsn, driver, target, tt.driver, tt.target)
			}
		})
	}
}
