package main

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// containerEnv reads packaging/container.env, the environment the image
// bakes in (scripts/image.sh).
func containerEnv(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../../packaging/container.env")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("container.env: %q is not NAME=value", line)
		}
		env[k] = v
	}
	return env
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// TestContainerEntrypoint runs the binary as the container image does
// (`mailroom serve`, no config file, only the image's environment plus an
// API token) and checks the image's HEALTHCHECK command and a webhook
// through a source created over the API. The image puts the database in
// /data and listens on :8080; here the database goes to a temporary
// directory and the listener to a free port (the only two variables
// changed), so that this runs wherever the container cannot.
// scripts/check-image.sh runs the image itself with podman.
func TestContainerEntrypoint(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	env := containerEnv(t)
	if env["MAILROOM_STORAGE"] != "sqlite:///data/mailroom.db" || !strings.HasPrefix(env["MAILROOM_LISTEN"], ":") {
		t.Fatalf("container.env: want the database in the /data volume and a wildcard listener, got %v", env)
	}
	port := freePort(t)
	dir := t.TempDir()
	env["MAILROOM_LISTEN"] = ":" + port
	env["MAILROOM_STORAGE"] = "sqlite://" + filepath.Join(dir, "mailroom.db")
	env["MAILROOM_API_TOKEN"] = "container-test-token-0123456789"
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	startProcess(t, bin, []string{"serve"}, environ)
	if _, err := os.Stat(filepath.Join(dir, "mailroom.db")); err != nil {
		t.Fatalf("the database is not where MAILROOM_STORAGE says: %v", err)
	}

	hc := exec.Command(bin, "healthcheck")
	hc.Env = append(os.Environ(), environ...)
	if out, err := hc.CombinedOutput(); err != nil || !strings.Contains(string(out), `"status":"ok"`) {
		t.Fatalf("mailroom healthcheck with the image's environment: %v\n%s", err, out)
	}

	api := "http://127.0.0.1:" + port
	resp, err := http.Get(api + "/api/v1/sources")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("admin API without the token = %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, api+"/api/v1/sources", strings.NewReader(`{"name":"hooks","verify":{"type":"none"}}`))
	req.Header.Set("Authorization", "Bearer "+env["MAILROOM_API_TOKEN"])
	req.Header.Set("Content-Type", "application/json")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("create source = %d", resp.StatusCode)
	}
	if resp, err = http.Post(api+"/e/hooks", "application/json", strings.NewReader(`{"id":"c-1"}`)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest = %d", resp.StatusCode)
	}
}

// TestHealthcheckCommand: healthcheck exits 0 against a running server
// and 1 when nothing answers.
func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	inst := startProcess(t, bin, []string{"serve", "--db", "sqlite://" + filepath.Join(t.TempDir(), "m.db"), "--listen", "127.0.0.1:0"}, nil)
	if out, err := exec.Command(bin, "healthcheck", "--url", "http://"+inst.addr+"/healthz").CombinedOutput(); err != nil {
		t.Errorf("healthcheck of a running server: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "healthcheck", "--url", "http://127.0.0.1:"+freePort(t)+"/healthz").CombinedOutput()
	if code := exitCodeOf(err); code != 1 || !strings.Contains(string(out), "unhealthy") {
		t.Errorf("healthcheck with nothing listening: exit %d, want 1 and 'unhealthy'\n%s", code, out)
	}
}
