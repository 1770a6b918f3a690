package main

import (
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTokensCLIAndOpenMode runs the binary without api.token (open, on
// loopback) and drives it with the CLI: the first token must be an
// admin's; once it exists the API, the dashboard and /mcp ask for a
// token; a viewer token reads but cannot retry; revoking it locks it out;
// `mailroom audit` shows who did what.
func TestTokensCLIAndOpenMode(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	dir := t.TempDir()
	inst := startProcess(t, bin, []string{"serve", "--config", writeConfig(t, dir, "http://127.0.0.1:9"), "--listen", "127.0.0.1:0"}, nil)
	base := "http://" + inst.addr
	cli := func(token string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--server", base, "--token", token)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	status := func(method, path, token string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("GET", "/api/v1/events", ""); got != http.StatusOK {
		t.Fatalf("open mode: %d", got)
	}
	if out, err := cli("", "tokens", "create", "--role", "viewer"); err == nil || !strings.Contains(out, "admin token first") {
		t.Fatalf("first token a viewer's: %v %s", err, out)
	}
	secretRe := regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`)
	out, err := cli("", "tokens", "create", "--role", "admin", "--name", "root")
	admin := secretRe.FindString(out)
	if err != nil || admin == "" {
		t.Fatalf("create the admin token: %v %s", err, out)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/api/v1/events"}, {"POST", "/mcp"}, {"GET", "/metrics"}} {
		want := http.StatusUnauthorized
		if c.path == "/metrics" {
			want = http.StatusOK // open on loopback, as Prometheus scrapes are
		}
		if got := status(c.method, c.path, ""); got != want {
			t.Errorf("%s %s without a token after the first one: %d, want %d", c.method, c.path, got, want)
		}
	}
	if got := status("GET", "/", ""); got != http.StatusSeeOther {
		t.Errorf("dashboard without a session after the first token: %d, want a redirect to the login", got)
	}
	if got := status("POST", "/mcp", admin); got == http.StatusUnauthorized || got == http.StatusForbidden {
		t.Errorf("/mcp with the admin token: %d", got)
	}

	out, err = cli(admin, "tokens", "create", "--role", "viewer", "--project", "default", "--name", "dash", "--expires", "30d")
	viewer := secretRe.FindString(out)
	if err != nil || viewer == "" || !strings.Contains(out, "expires") {
		t.Fatalf("create a viewer token: %v %s", err, out)
	}
	if out, err := cli(viewer, "events", "list"); err != nil {
		t.Errorf("viewer lists events: %v %s", err, out)
	}
	if out, err := cli(viewer, "destinations", "pause", "sink"); err == nil || !strings.Contains(out, "forbidden") {
		t.Errorf("viewer pauses a destination: %v %s", err, out)
	}
	if got := status("POST", "/mcp", viewer); got != http.StatusForbidden {
		t.Errorf("/mcp with a viewer token: %d, want 403", got)
	}
	out, err = cli(admin, "tokens", "list")
	id := regexp.MustCompile(`tok_[a-z0-9]+`).FindAllString(out, -1)
	if err != nil || len(id) != 2 || strings.Contains(out, viewer) || !strings.Contains(out, "dash") {
		t.Fatalf("tokens list: %v %s", err, out)
	}
	// Newest first: the viewer's.
	if out, err := cli(admin, "tokens", "revoke", id[0]); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if out, err := cli(viewer, "events", "list"); err == nil || !strings.Contains(out, "invalid bearer token") {
		t.Errorf("revoked viewer lists events: %v %s", err, out)
	}
	out, err = cli(admin, "audit", "--limit", "10")
	if err != nil || !strings.Contains(out, "DELETE /api/v1/tokens/{id}") || !strings.Contains(out, "anonymous") || !strings.Contains(out, "root") || strings.Contains(out, admin) {
		t.Errorf("audit: %v %s", err, out)
	}
}
