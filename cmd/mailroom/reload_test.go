package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopInstance ends inst with SIGTERM and waits for it.
func stopInstance(t *testing.T, inst *instance) {
	t.Helper()
	if err := inst.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inst.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit within 20s of SIGTERM\n%s", inst.logs)
	}
}

// apiDo sends a JSON request to the admin API and returns the status and
// body.
func apiDo(t *testing.T, addr, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+addr+"/api/v1/"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// postPlain posts an unsigned JSON body to /e/{source}.
func postPlain(t *testing.T, addr, source, body string) int {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/e/"+source, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metricValue returns the value of the sample named series (with its
// labels, as exposed) on /metrics, or -1 when it is absent.
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	var v float64
	fmt.Sscan(string(m[1]), &v)
	return v
}

// TestConfigOwnsItsEntries: what the config file declared leaves with it.
// After the README tour's config, `serve` without it no longer accepts
// webhooks for stripe, while a source created through the API survives
// restarts with no config and with a different one; the start-up log says
// what is active, by owner.
func TestConfigOwnsItsEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := binary(t)
	dir := t.TempDir()
	db := "MAILROOM_DB=sqlite://" + filepath.Join(dir, "tour.db")

	inst := startProcess(t, bin, []string{"serve", "--config", "../../examples/mailroom.yaml", "--listen", "127.0.0.1:0"},
		[]string{db, "STRIPE_WEBHOOK_SECRET="})
	if !strings.Contains(inst.logs.String(), "sources_config=5 sources_api=0") {
		t.Errorf("start-up log does not count the tour's 5 sources as config-owned:\n%s", inst.logs)
	}
	if code := postPlain(t, inst.addr, "stripe", `{"id":"evt_1"}`); code != http.StatusUnauthorized {
		t.Fatalf("unsigned post to stripe under the tour config: %d, want 401", code)
	}
	if code, body := apiDo(t, inst.addr, "POST", "sources", map[string]any{"name": "manual"}); code != http.StatusCreated {
		t.Fatalf("create source through the API: %d %s", code, body)
	}
	if code, body := apiDo(t, inst.addr, "DELETE", "sources/stripe", nil); code != http.StatusConflict {
		t.Errorf("delete a config-owned source through the API: %d %s, want 409", code, body)
	}
	stopInstance(t, inst)

	// No config: the tour's entries are gone, the API's source stays.
	inst = startProcess(t, bin, []string{"serve", "--listen", "127.0.0.1:0"}, []string{db})
	if code := postPlain(t, inst.addr, "stripe", `{"id":"evt_2"}`); code != http.StatusNotFound {
		t.Errorf("post to stripe after serving without the tour config: %d, want 404", code)
	}
	if code := postPlain(t, inst.addr, "manual", `{"id":"evt_3"}`); code != http.StatusOK {
		t.Errorf("post to the API-created source: %d, want 200", code)
	}
	logs := inst.logs.String()
	for _, want := range []string{"sources_config=0 sources_api=1", "destinations_config=0", "connections_config=0"} {
		if !strings.Contains(logs, want) {
			t.Errorf("start-up log lacks %q:\n%s", want, logs)
		}
	}
	stopInstance(t, inst)

	// A different config: its source is added, the API's still there.
	other := writeYAML(t, dir, "sources:\n  - name: other\n")
	inst = startProcess(t, bin, []string{"serve", "--config", other, "--listen", "127.0.0.1:0"}, []string{db})
	code, body := apiDo(t, inst.addr, "GET", "sources", nil)
	var list struct {
		Data []struct {
			Name      string `json:"name"`
			ManagedBy string `json:"managed_by"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil {
		t.Fatalf("list sources: %d %s %v", code, body, err)
	}
	got := map[string]string{}
	for _, s := range list.Data {
		got[s.Name] = s.ManagedBy
	}
	if len(got) != 2 || got["manual"] != "api" || got["other"] != "config" {
		t.Errorf("sources under a different config = %v, want manual (api) and other (config)", got)
	}
}

// TestReload: SIGHUP and POST /api/v1/reload apply a valid file whole (a
// source added, then removed) while a delivery is in flight, which
// completes; an invalid file and a restart-only change are refused with
// file:line: field and change nothing; both outcomes are counted.
func TestReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := binary(t)
	dir := t.TempDir()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	sinkSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
	}))
	t.Cleanup(sinkSrv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	base := fmt.Sprintf(`storage: sqlite://%s/mailroom.db
shutdown: {grace: 5s}
sources:
  - name: a
destinations:
  - name: sink
    url: %s/hooks
    timeout: 30s
connections:
  - source: a
    destination: sink
`, dir, sinkSrv.URL)
	path := filepath.Join(dir, "mailroom.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(base)
	inst := startProcess(t, bin, []string{"serve", "--config", path, "--listen", "127.0.0.1:0"}, nil)

	// A delivery in flight: the sink holds the request until released.
	if code := postPlain(t, inst.addr, "a", `{"id":"inflight"}`); code != http.StatusOK {
		t.Fatalf("post to a: %d", code)
	}
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the delivery never reached the sink")
	}

	// SIGHUP with source b added.
	write(strings.Replace(base, "sources:\n  - name: a\n", "sources:\n  - name: a\n  - name: b\n", 1))
	if err := inst.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a successful reload on SIGHUP", func() bool {
		return metricValue(t, inst.addr, `mailroom_config_reload_total{outcome="success"}`) == 1
	})
	if code := postPlain(t, inst.addr, "b", `{"id":"b1"}`); code != http.StatusOK {
		t.Errorf("post to b after the reload that added it: %d, want 200", code)
	}
	if metricValue(t, inst.addr, "mailroom_config_last_reload_success_timestamp_seconds") <= 0 {
		t.Error("no last-success timestamp")
	}

	// An invalid file changes nothing and names file:line: field.
	bad := strings.Replace(base, "  - name: a\n", "  - name: a\n    verify: {type: strpe}\n", 1)
	write(bad)
	code, body := apiDo(t, inst.addr, "POST", "reload", nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), path+":5: sources[0].verify.type") {
		t.Errorf("reload of an invalid file: %d %s, want 422 naming %s:5: sources[0].verify.type", code, body, path)
	}
	if code := postPlain(t, inst.addr, "b", `{"id":"b2"}`); code != http.StatusOK {
		t.Errorf("post to b after a refused reload: %d, want 200 (nothing changed)", code)
	}

	// A setting read only at start is refused too, with its line.
	write(strings.Replace(base, "grace: 5s", "grace: 7s", 1))
	code, body = apiDo(t, inst.addr, "POST", "reload", nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), path+":2: shutdown.grace: changed") {
		t.Errorf("reload changing shutdown.grace: %d %s, want 422 naming %s:2: shutdown.grace", code, body, path)
	}
	if got := metricValue(t, inst.addr, `mailroom_config_reload_total{outcome="error"}`); got != 2 {
		t.Errorf("reload errors counted = %v, want 2", got)
	}

	// The API removes b again.
	write(base)
	code, body = apiDo(t, inst.addr, "POST", "reload", nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"b"`) {
		t.Errorf("reload removing b: %d %s", code, body)
	}
	if code := postPlain(t, inst.addr, "b", `{"id":"b3"}`); code != http.StatusNotFound {
		t.Errorf("post to b after the reload that removed it: %d, want 404", code)
	}

	// The delivery that was in flight through all of this completes.
	close(release)
	waitUntil(t, "the in-flight delivery to succeed", func() bool {
		code, body := apiDo(t, inst.addr, "GET", "deliveries?status=succeeded", nil)
		return code == http.StatusOK && strings.Count(string(body), `"status": "succeeded"`) >= 1
	})
	if strings.Contains(inst.logs.String(), "level=ERROR msg=deliver") {
		t.Errorf("delivery errors logged during reloads:\n%s", inst.logs)
	}
}

// TestEnvOnlyConfig: with no file at all, the environment declares the
// catalog (as a container is configured), the entries are the config's,
// and a bad value is refused at start naming its variable.
func TestEnvOnlyConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := binary(t)
	dir := t.TempDir()
	db := "MAILROOM_STORAGE=sqlite://" + filepath.Join(dir, "env.db")
	inst := startProcess(t, bin, []string{"serve"}, []string{db, "MAILROOM_LISTEN=127.0.0.1:0",
		"MAILROOM_SOURCES=[{name: fromenv, dedup: {key: body.id}}]", "MAILROOM_SHUTDOWN_GRACE=2s"})
	if code := postPlain(t, inst.addr, "fromenv", `{"id":"e1"}`); code != http.StatusOK {
		t.Fatalf("post to the source the environment declared: %d", code)
	}
	code, body := apiDo(t, inst.addr, "GET", "sources/fromenv", nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"managed_by": "config"`) {
		t.Errorf("source from the environment: %d %s, want managed_by config", code, body)
	}
	stopInstance(t, inst)

	// Bounded, in case it serves instead of refusing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve")
	cmd.Env = append(os.Environ(), db, "MAILROOM_LISTEN=127.0.0.1:0", "MAILROOM_ALERTS_CONSECUTIVE_FAILURES=ten")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "(set by MAILROOM_ALERTS_CONSECUTIVE_FAILURES)") {
		t.Errorf("serve with a bad variable: %v\n%s\nwant a refusal naming the variable", err, out)
	}
}
