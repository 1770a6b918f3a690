package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// needNode returns the node binary and the installed test/ packages, or
// skips the test saying what is missing (fails instead when CI=true).
func needNode(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; .ci/run installs it", what)
		}
		t.Skipf("skipping: %s is missing (run `npm ci --prefix test`)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	if _, err := os.Stat("../../test/node_modules/@modelcontextprotocol/sdk"); err != nil {
		missing("test/node_modules (@modelcontextprotocol/sdk)")
	}
	return node
}

// TestNodeClientRoundTrip runs test/mcp-roundtrip.mjs, which uses the
// official MCP TypeScript SDK (2025-11-25 Tasks) and plain fetch
// (2026-07-28 Tasks extension), against the real binary.
func TestNodeClientRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	node := needNode(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mailroom.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
storage: sqlite://%s/m.db
sources:
  - name: stripe
    verify: {type: stripe, secret: whsec_node_test}
`, dir)), 0o600)
	inst := start(t, binary(t), cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "../../test/mcp-roundtrip.mjs", "http://"+inst.addr, "whsec_node_test").CombinedOutput()
	t.Logf("node:\n%s", out)
	if err != nil {
		t.Fatalf("node round trip: %v\nserver log:\n%s", err, inst.logs)
	}
}
