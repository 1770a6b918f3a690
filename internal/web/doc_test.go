package web_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// pageRow is a row of the pages table of docs/dashboard.md:
// | Events | `/ui/events` | what it shows |
var pageRow = regexp.MustCompile("^\\| [^|]+ \\| `(/[^`]*)` \\|")

// TestDashboardDoc checks the pages table of docs/dashboard.md against the
// dashboard's routes: every page it serves (a GET route, but the login
// form, the live stream and /ui/'s redirect) is a row, and every row is a
// page it serves.
func TestDashboardDoc(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	served := map[string]bool{}
	for _, p := range b.web.Patterns() {
		path, ok := strings.CutPrefix(p, "GET ")
		if !ok {
			continue
		}
		path = strings.TrimSuffix(path, "{$}")
		switch path {
		case "/ui/", "/ui/login", "/ui/stream":
			continue // a redirect, the login form, the live tail: not pages
		}
		served[path] = true
	}
	raw, err := os.ReadFile("../../docs/dashboard.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if m := pageRow.FindStringSubmatch(line); m != nil {
			documented[m[1]] = true
		}
	}
	if len(served) < 5 {
		t.Fatalf("the dashboard serves %d pages (%v); is the setup broken?", len(served), served)
	}
	for p := range served {
		if !documented[p] {
			t.Errorf("the dashboard serves the page %s, which docs/dashboard.md's pages table lacks", p)
		}
	}
	for p := range documented {
		if !served[p] {
			t.Errorf("docs/dashboard.md's pages table lists %s, which the dashboard does not serve", p)
		}
	}
}
