package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// upgradeFixture is the database the previous release wrote; see
// testdata/upgrade/make.sh.
const upgradeFixture = "testdata/upgrade/6485fcc"

// copyFixtureDB copies the fixture's database into a fresh directory
// (opening it writes beside it) and returns the copy's path.
func copyFixtureDB(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(upgradeFixture, "mailroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mailroom.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// contains reports whether got has every field of want with the same
// value, recursively (got may have more fields: a newer API may add some).
// It returns the path of the first difference.
func contains(got, want any, at string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: got %v, want an object", at, got)
		}
		for k, wv := range w {
			if d := contains(g[k], wv, at+"."+k); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %v, want %d items", at, got, len(w))
		}
		if byID := indexByID(g); byID != nil && indexByID(w) != nil {
			// Rows with ids: the order of a list may change between
			// releases (tasks became newest first), the rows may not.
			for _, wv := range w {
				id := wv.(map[string]any)["id"].(string)
				if d := contains(byID[id], wv, at+"["+id+"]"); d != "" {
					return d
				}
			}
			return ""
		}
		for i := range w {
			if d := contains(g[i], w[i], fmt.Sprintf("%s[%d]", at, i)); d != "" {
				return d
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("%s: got %v, want %v", at, got, want)
		}
		return ""
	}
}

// TestUpgradeFromPreviousSchema opens a database written by the previous
// release (sources, destinations, connections, requests including a
// duplicate, events, succeeded and dead deliveries with their attempts, a
// completed and a waiting task) with this binary: `migrate status` reads
// it, `migrate up` brings it to this binary's schema, and serve reads every
// row back as the previous release's API showed it.
func TestUpgradeFromPreviousSchema(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	db := copyFixtureDB(t)
	dsn := "sqlite://" + db

	out, err := exec.Command(bin, "migrate", "status", "--db", dsn).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0003_retention.sql") {
		t.Fatalf("migrate status: %v\n%s", err, out)
	}
	if out, err = exec.Command(bin, "migrate", "up", "--db", dsn).CombinedOutput(); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, out)
	}
	if out, err = exec.Command(bin, "migrate", "status", "--db", dsn).CombinedOutput(); err != nil || !strings.Contains(string(out), "up to date") {
		t.Fatalf("migrate status after up: %v\n%s", err, out)
	}

	// No MCP correlator (it would expire the waiting task once its
	// deadline has passed) and no pruning (the fixture's rows are old):
	// serve only reads.
	cfg := writeYAML(t, t.TempDir(), fmt.Sprintf("storage: %s\nretention: 876000h\nmcp: {disabled: true}\n", dsn))
	inst := startProcess(t, bin, []string{"serve", "--config", cfg, "--migrate=false", "--listen", "127.0.0.1:0"}, nil)

	api := "http://" + inst.addr + "/api/v1/"
	for _, list := range []string{"sources", "destinations", "connections", "requests", "events", "deliveries", "tasks"} {
		var want, got any
		readJSONFile(t, filepath.Join(upgradeFixture, list+".json"), &want)
		getJSON(t, api+list+"?limit=500", &got)
		if d := contains(got, want, list); d != "" {
			t.Errorf("GET /api/v1/%s differs from the previous release's: %s", list, d)
		}
	}
	var attempts []struct {
		ID       string
		Attempts any
	}
	readJSONFile(t, filepath.Join(upgradeFixture, "attempts.json"), &attempts)
	if len(attempts) == 0 {
		t.Fatal("the fixture has no deliveries")
	}
	for _, a := range attempts {
		var got any
		getJSON(t, api+"deliveries/"+a.ID+"/attempts", &got)
		if d := contains(got, a.Attempts, a.ID); d != "" {
			t.Errorf("attempts of %s differ from the previous release's: %s", a.ID, d)
		}
	}
}

// indexByID maps the "id" of each object in items to it, or returns nil
// when some item is not an object with a string id.
func indexByID(items []any) map[string]any {
	m := map[string]any{}
	for _, it := range items {
		o, ok := it.(map[string]any)
		if !ok {
			return nil
		}
		id, ok := o["id"].(string)
		if !ok {
			return nil
		}
		m[id] = o
	}
	return m
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestNewerSchemaRefused: a database migrated by a newer mailroom (a
// schema version this binary does not know) is refused by serve and by
// migrate up with a message saying so, and migrate status shows it.
func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	path := copyFixtureDB(t)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	dsn := "sqlite://" + path
	for _, args := range [][]string{
		{"serve", "--db", dsn, "--listen", "127.0.0.1:0"},
		{"migrate", "up", "--db", dsn},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%s on a newer database succeeded:\n%s", args[0], out)
		}
		if !strings.Contains(string(out), "database schema is at version 9999") || !strings.Contains(string(out), "newer mailroom") {
			t.Errorf("%s on a newer database does not say why:\n%s", strings.Join(args[:1], " "), out)
		}
	}
	out, err := exec.Command(bin, "migrate", "status", "--db", dsn).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "NEWER than this binary") {
		t.Errorf("migrate status on a newer database: %v\n%s", err, out)
	}
}

// TestMigratePostgres: migrate status and up over the real binary on a
// fresh PostgreSQL schema, and backup's refusal to copy PostgreSQL (that is
// pg_dump's job).
func TestMigratePostgres(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	dsn := schemaDSN(t, localPostgres(t))
	out, err := exec.Command(bin, "migrate", "status", "--db", dsn).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pending") || !strings.Contains(string(out), "schema version 0 of") {
		t.Fatalf("migrate status on an empty schema: %v\n%s", err, out)
	}
	if out, err = exec.Command(bin, "migrate", "up", "--db", dsn).CombinedOutput(); err != nil || !strings.Contains(string(out), "schema version 0 ->") {
		t.Fatalf("migrate up: %v\n%s", err, out)
	}
	if out, err = exec.Command(bin, "migrate", "status", "--db", dsn).CombinedOutput(); err != nil || !strings.Contains(string(out), "up to date") || strings.Contains(string(out), "pending") {
		t.Fatalf("migrate status after up: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "backup", "--db", dsn, filepath.Join(t.TempDir(), "x.db")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "pg_dump") {
		t.Errorf("backup of PostgreSQL storage: %v, want a refusal naming pg_dump\n%s", err, out)
	}
}
