package verify_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps the public library light: pkg/... may use verify
// (and the small helpers it needs), never the store, the YAML parser or
// the rest of mailroom's internals; and verify itself needs only the
// standard library and the duration text form.
func TestDependencies(t *testing.T) {
	t.Parallel()
	// deps lists the packages pkg depends on outside the standard library.
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	const mod = "github.com/mailroomhq/mailroom/"
	allowed := []string{mod + "internal/verify", mod + "internal/duration", mod + "internal/mcpwire"}
	for _, d := range deps(mod + "pkg/...") {
		if strings.HasPrefix(d, mod+"internal/") && !slices.Contains(allowed, d) {
			t.Errorf("pkg/... depends on %s", d)
		}
		if strings.Contains(d, "yaml") || strings.Contains(d, "ulid") {
			t.Errorf("pkg/... depends on %s", d)
		}
	}
	for _, d := range deps(mod + "internal/verify") {
		if d != mod+"internal/duration" && d != mod+"internal/verify" {
			t.Errorf("internal/verify depends on %s, outside the standard library", d)
		}
	}
}
