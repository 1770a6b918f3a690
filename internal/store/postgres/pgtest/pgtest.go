// Package pgtest opens throwaway PostgreSQL stores for tests of packages
// that need a real store: each in a fresh schema of the test server,
// dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"os/user"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailroomhq/mailroom/internal/store/postgres"
)

// EnvDSN names the variable that points the tests at another server. The
// default is the local server on 127.0.0.1:5432, database test, trusting
// the local user.
const EnvDSN = "MAILROOM_TEST_POSTGRES"

// BaseDSN returns the test server's DSN, or skips tb (fails it when
// CI=true) if the server does not answer.
func BaseDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		name := "postgres"
		if u, err := user.Current(); err == nil && u.Username == "root" {
			name = "root" // the local server trusts both; root is the CI user
		}
		dsn = "postgres://" + name + "@127.0.0.1:5432/test?sslmode=disable&connect_timeout=5"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		msg := "PostgreSQL not reachable at " + redacted(dsn) + " (set " + EnvDSN + " to point elsewhere): " + err.Error()
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	conn.Close(ctx)
	return dsn
}

// SchemaDSN creates a fresh schema on the test server, drops it when tb
// ends, and returns a DSN whose search_path is that schema.
func SchemaDSN(tb testing.TB) string {
	tb.Helper()
	dsn := BaseDSN(tb)
	var b [6]byte
	rand.Read(b[:])
	schema := "mailroom_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return dsn + "&search_path=" + schema
}

// Open returns a store in a fresh schema ([SchemaDSN]), closed when tb
// ends. opts may be nil.
func Open(tb testing.TB, opts *postgres.Options) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), SchemaDSN(tb), opts)
	if err != nil {
		tb.Fatalf("open PostgreSQL store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func redacted(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return "(unparseable DSN)"
}
