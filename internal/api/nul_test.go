package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestStringsWithNULRefused: a string holding NUL anywhere in a request
// body is a 400 naming it. PostgreSQL's text refuses NUL, so a token name,
// a wait's filter or a source description holding one got 503 "storage
// unavailable" there (and was stored on SQLite).
func TestStringsWithNULRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.seed(t)
	for _, tt := range []struct {
		method, path string
		body         map[string]any
	}{
		{"POST", "/api/v1/tokens", map[string]any{"name": "a\x00b", "role": "admin"}},
		{"POST", "/api/v1/tasks", map[string]any{"source": "stripe", "filter": `body.x == "a` + "\x00" + `b"`}},
		{"POST", "/api/v1/sources", map[string]any{"name": "nul", "description": "a\x00b", "verify": map[string]any{"type": "none"}}},
	} {
		got := b.do(t, tt.method, tt.path, tt.body)
		if got.status != http.StatusBadRequest || !strings.Contains(string(got.body), "NUL") {
			t.Errorf("%s %s %v: %d %s, want 400 naming NUL", tt.method, tt.path, tt.body, got.status, got.body)
		}
	}
	// A backslash before u0000 is not NUL.
	if got := b.do(t, "POST", "/api/v1/sources", map[string]any{"name": "slash", "description": `a\u0000b`, "verify": map[string]any{"type": "none"}}); got.status != http.StatusCreated {
		t.Errorf(`description a\u0000b: %d %s, want 201`, got.status, got.body)
	}
}
