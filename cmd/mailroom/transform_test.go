package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// transformConfig is a config whose source custom fans out to four
// destinations: one whose connection rewrites the request, one whose
// script throws, one whose script never returns, and one without a
// transformation. throwScript is the thrower's script.
func transformConfig(dir, rewrittenURL, plainURL, throwScript string) string {
	return fmt.Sprintf(`
storage: sqlite://%[1]s/mailroom.db
shutdown: {grace: 2s}
transformations: {timeout: 100ms}
sources:
  - name: custom
    verify: {type: hmac, header: X-Signature, algorithm: sha256, encoding: hex, secret: testsecret}
destinations:
  - {name: rewritten, url: "%[2]s/hooks?v=1", retry: {initial: 1h}}
  - {name: thrower, url: "%[2]s/thrower", retry: {initial: 1h}}
  - {name: looper, url: "%[2]s/looper", retry: {initial: 1h}}
  - {name: plain, url: "%[3]s/plain"}
connections:
  - source: custom
    destination: rewritten
    transform: |
      function handler(request, event) {
        console.log("rewriting", request.body.id);
        request.body = {order: request.body.id, kind: request.body.type, source: event.source};
        request.path = "/v2" + request.path;
        request.query.team = "billing";
        request.headers["x-kind"] = request.body.kind;
        return request;
      }
  - source: custom
    destination: thrower
    transform: |
%[4]s
  - source: custom
    destination: looper
    transform: "function handler(request) { while (true) {} }"
  - {source: custom, destination: plain}
`, dir, rewrittenURL, plainURL, indent(throwScript, "      "))
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+prefix)
}

// hits records the requests a test destination received.
type hits struct {
	mu   sync.Mutex
	reqs []string // "METHOD URI X-Kind body"
}

func (h *hits) server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, fmt.Sprintf("%s %s %s %s", r.Method, r.URL.RequestURI(), r.Header.Get("X-Kind"), b))
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (h *hits) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.reqs...)
}

// TestTransformOverBinary: over the real binary, a connection's
// transformation rewrites what its destination receives; a script that
// throws fails its attempts with the message, and one that loops forever
// is stopped at its budget and fails them too, while ingestion answers
// 200 for every event and the destination without a transformation gets
// them all. `mailroom transform test` shows input, output and log of a
// stored event without delivering (exit 1 when the script fails), and
// once the thrower's script is fixed (config reload) a retry delivers.
func TestTransformOverBinary(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	dir := t.TempDir()
	var rewritten, plain hits
	rsrv, psrv := rewritten.server(t), plain.server(t)
	cfgPath := filepath.Join(dir, "mailroom.yaml")
	const throw = "function handler(request) {\n  throw new Error(\"no customer for \" + request.body.id);\n}"
	if err := os.WriteFile(cfgPath, []byte(transformConfig(dir, rsrv.URL, psrv.URL, throw)), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := start(t, bin, cfgPath)
	client := &http.Client{}
	const n = 5
	for i := range n {
		if code := post(client, inst.addr, fmt.Sprintf("ord_%d", i)); code != http.StatusOK {
			t.Fatalf("ingest of event %d answered %d, want 200", i, code)
		}
	}
	waitUntil(t, "every event delivered to plain and rewritten", func() bool {
		return len(plain.all()) == n && len(rewritten.all()) == n
	})
	for _, r := range rewritten.all() {
		if !strings.HasPrefix(r, "POST /v2/hooks?team=billing&v=1 test ") || !strings.Contains(r, `"kind":"test","source":"custom"}`) {
			t.Errorf("rewritten destination got %q", r)
		}
	}
	var deliveries struct {
		Data []struct {
			ID                  string
			EventID             string `json:"event_id"`
			Destination, Status string
			LastError           string `json:"last_error"`
			Attempts            int
		} `json:"data"`
	}
	failed := func(dest string) bool {
		deliveries.Data = nil // last_error is left out when empty
		getJSON(t, "http://"+inst.addr+"/api/v1/deliveries?destination="+dest, &deliveries)
		if len(deliveries.Data) != n {
			return false
		}
		for _, d := range deliveries.Data {
			if d.LastError == "" {
				return false
			}
		}
		return true
	}
	waitUntil(t, "the thrower's attempts failed", func() bool { return failed("thrower") })
	throwerIDs := map[string]string{}
	for _, d := range deliveries.Data {
		if d.Status != "pending" || !strings.HasPrefix(d.LastError, "transform: transformation threw: Error: no customer for ord_") || !strings.Contains(d.LastError, "transform.js:2:") {
			t.Errorf("thrower delivery %s: %s %q, want pending with the script's error and line", d.ID, d.Status, d.LastError)
		}
		throwerIDs[d.EventID] = d.ID
	}
	waitUntil(t, "the looper's attempts failed", func() bool { return failed("looper") })
	for _, d := range deliveries.Data {
		if d.Status != "pending" || d.LastError != "transform: transformation ran out of time: stopped after its budget of 100ms" {
			t.Errorf("looper delivery %s: %s %q, want pending, stopped at its budget", d.ID, d.Status, d.LastError)
		}
	}
	// Ingestion is unaffected by the looping script: more events are
	// acknowledged and delivered.
	if code := post(client, inst.addr, "ord_late"); code != http.StatusOK {
		t.Fatalf("ingest after the loops answered %d, want 200", code)
	}
	waitUntil(t, "the late event delivered to plain", func() bool { return len(plain.all()) == n+1 })

	// transform test: the rewritten connection on a stored event.
	var eventID string
	for id := range throwerIDs {
		eventID = id
		break
	}
	runCLI := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--server", "http://"+inst.addr)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	before := len(rewritten.all())
	out, code := runCLI("transform", "test", "--connection", "custom->rewritten", "--event", eventID)
	if code != 0 {
		t.Fatalf("transform test exit %d:\n%s", code, out)
	}
	for _, want := range []string{"--- input\nPOST /hooks?v=1\n", "--- output\nPOST /v2/hooks?team=billing&v=1\n", "x-kind: test\n", `"source": "custom"`, "--- log\nrewriting ord_"} {
		if !strings.Contains(out, want) {
			t.Errorf("transform test output lacks %q:\n%s", want, out)
		}
	}
	out, code = runCLI("transform", "test", "--connection", "custom->thrower", "--event", eventID, "--json")
	var res struct{ Error string }
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &res); err != nil || code != 1 || !strings.Contains(res.Error, "no customer for ord_") {
		t.Errorf("transform test of the thrower: exit %d, error %q (%v), want 1 and the script's error:\n%s", code, res.Error, err, out)
	}
	if _, code := runCLI("transform", "test", "--connection", "custom->nope", "--event", eventID); code != 3 {
		t.Errorf("transform test of a missing connection: exit %d, want 3", code)
	}
	if got := len(rewritten.all()); got != before {
		t.Errorf("transform test delivered: %d requests, want %d", got, before)
	}

	// A script that an operator token may send, which one built-in call
	// would turn into a gigabyte (in the handler, or at its top level,
	// checked when the script is compiled): refused by the run's memory
	// budget, and the process goes on.
	for _, script := range []string{
		`function handler(r) { r.body = "x".repeat(2**30); return r }`,
		`const pad = "x".padEnd(2**30); function handler(r) { return r }`,
	} {
		code, body := apiDo(t, inst.addr, "POST", "connections/custom-%3Erewritten/transform/test",
			map[string]string{"event_id": eventID, "transform": script})
		if !strings.Contains(string(body), "exceeded its memory budget") {
			t.Errorf("transform test of %s: %d %s, want the memory budget's error", script, code, body)
		}
	}
	if code, body := apiDo(t, inst.addr, "GET", "sources", nil); code != http.StatusOK {
		t.Fatalf("after the memory-hungry scripts: %d %s", code, body)
	}

	// Fix the thrower's script, reload, retry: delivered.
	fixed := "function handler(request) {\n  request.body.fixed = true;\n  return request;\n}"
	if err := os.WriteFile(cfgPath, []byte(transformConfig(dir, rsrv.URL, psrv.URL, fixed)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := apiDo(t, inst.addr, "POST", "reload", nil); code != http.StatusOK {
		t.Fatalf("reload: %d %s", code, body)
	}
	if code, body := apiDo(t, inst.addr, "POST", "deliveries/"+throwerIDs[eventID]+"/retry", nil); code != http.StatusOK {
		t.Fatalf("retry: %d %s", code, body)
	}
	waitUntil(t, "the retried thrower delivery succeeded", func() bool {
		var d struct{ Status string }
		getJSON(t, "http://"+inst.addr+"/api/v1/deliveries/"+throwerIDs[eventID], &d)
		return d.Status == "succeeded"
	})
	found := false
	for _, r := range rewritten.all() {
		if strings.HasPrefix(r, "POST /thrower ") && strings.Contains(r, `"fixed":true`) {
			found = true
		}
	}
	if !found {
		t.Errorf("the fixed script's delivery did not arrive: %q", rewritten.all())
	}
}
