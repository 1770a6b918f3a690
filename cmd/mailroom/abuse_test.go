package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/config"
)

// writeYAML writes a config file into dir and returns its path.
func writeYAML(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "mailroom.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// hmacSource is the config of the source that post and load sign for.
const hmacSource = `
sources:
  - name: custom
    verify: {type: hmac, header: X-Signature, algorithm: sha256, encoding: hex, secret: testsecret}
    dedup: {key: 'body.id'}
`

// TestDeliveryGuardPolicy checks the policy serve builds: loopback is
// allowed only on a loopback listener, private and metadata addresses
// only when listed.
func TestDeliveryGuardPolicy(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	check := func(listen string, d config.DeliveryConfig, addr string) error {
		cfg := config.Default()
		cfg.Listen, cfg.Delivery = listen, d
		g, err := deliveryGuard(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		return g.Check("h", netip.MustParseAddr(addr))
	}
	none := config.DeliveryConfig{}
	listed := config.DeliveryConfig{AllowNetworks: []string{"10.0.0.0/8", "127.0.0.1"}}
	for _, tc := range []struct {
		listen string
		d      config.DeliveryConfig
		addr   string
		ok     bool
	}{
		{"127.0.0.1:8080", none, "127.0.0.1", true},
		{"127.0.0.1:8080", none, "::1", true},
		{"localhost:8080", none, "127.0.0.1", true},
		{"127.0.0.1:8080", none, "10.0.0.1", false},
		{"127.0.0.1:8080", none, "169.254.169.254", false},
		{"0.0.0.0:8080", none, "127.0.0.1", false},
		{":8080", none, "127.0.0.1", false},
		{"0.0.0.0:8080", none, "8.8.8.8", true},
		{"0.0.0.0:8080", listed, "10.9.9.9", true},
		{"0.0.0.0:8080", listed, "127.0.0.1", true},
		{"0.0.0.0:8080", listed, "127.0.0.2", false},
		{"0.0.0.0:8080", listed, "169.254.169.254", false},
		{"0.0.0.0:8080", config.DeliveryConfig{AllowPrivateNetworks: true}, "169.254.169.254", true},
	} {
		if err := check(tc.listen, tc.d, tc.addr); (err == nil) != tc.ok {
			t.Errorf("listen %s, %+v, %s: %v, want allowed=%v", tc.listen, tc.d, tc.addr, err, tc.ok)
		}
	}
}

// TestSSRFRefusedEndToEnd runs the binary with destinations at the cloud
// metadata address and a private address beside one on loopback: the
// loopback one is delivered (the listener is loopback), the others are
// refused before any connection, with the reason in the attempt and the
// log.
func TestSSRFRefusedEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	s := newSink(t)
	cfg := writeYAML(t, t.TempDir(), fmt.Sprintf(`
storage: sqlite://%s/m.db
%s
destinations:
  - {name: sink, url: %s/hooks}
  - {name: metadata, url: "http://169.254.169.254/latest/meta-data/iam/", retry: {max_attempts: 1}}
  - {name: private, url: "http://10.255.255.1:9/hooks", retry: {max_attempts: 1}}
connections:
  - {source: custom, destination: sink}
  - {source: custom, destination: metadata}
  - {source: custom, destination: private}
`, t.TempDir(), hmacSource, s.srv.URL))
	inst := start(t, binary(t), cfg)
	if code := post(http.DefaultClient, inst.addr, "ssrf-1"); code != http.StatusOK {
		t.Fatalf("ingest: %d", code)
	}
	waitDelivered(t, s, []string{"ssrf-1"}, 20*time.Second)
	var dead struct {
		Data []struct {
			Destination string `json:"destination"`
			LastError   string `json:"last_error"`
		} `json:"data"`
	}
	waitUntil(t, "two dead deliveries", func() bool {
		getJSON(t, "http://"+inst.addr+"/api/v1/deliveries?status=dead", &dead)
		return len(dead.Data) == 2
	})
	for _, d := range dead.Data {
		if !strings.Contains(d.LastError, "refused to connect to") || !strings.Contains(d.LastError, "delivery.allow_networks") {
			t.Errorf("%s: last error %q", d.Destination, d.LastError)
		}
	}
	logs := inst.logs.String()
	if !strings.Contains(logs, "cloud metadata address") || !strings.Contains(logs, "destinations on loopback are allowed because the listener is loopback") {
		t.Errorf("logs do not show the refusal and the policy:\n%s", logs)
	}
}

// rssKiB returns the resident set size of process pid, from /proc.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestConnectionAbuse holds 10,000 idle connections and a slowloris
// client (a header line every second, never finished) open against the
// real binary, and sends oversized bodies and headers: limits answer 413
// and 431, a normal webhook is still served at once, the child's memory
// stays bounded, and the server drops the idle and slow connections after
// its header timeout (10 s).
func TestConnectionAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	s := newSink(t)
	cfg := writeYAML(t, t.TempDir(), fmt.Sprintf(`
storage: sqlite://%s/m.db
%s
destinations:
  - {name: sink, url: %s/hooks}
connections:
  - {source: custom, destination: sink}
`, t.TempDir(), hmacSource, s.srv.URL))
	inst := start(t, binary(t), cfg)
	pid := inst.cmd.Process.Pid
	client := &http.Client{Timeout: 10 * time.Second}
	if code := post(client, inst.addr, "warm-up"); code != http.StatusOK {
		t.Fatalf("warm-up: %d", code)
	}
	before := rssKiB(t, pid)

	// Oversized body (the default limit is 10 MiB) and headers (64 KiB).
	big := bytes.Repeat([]byte("a"), 11<<20)
	resp, err := client.Post("http://"+inst.addr+"/e/custom", "application/json", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("11 MiB body: %d, want 413", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+inst.addr+"/e/custom", strings.NewReader("{}"))
	req.Header.Set("X-Big", strings.Repeat("h", 200<<10))
	if resp, err := client.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("200 KiB header: %d, want 431", resp.StatusCode)
		}
	}

	// Slowloris: one header line a second, never the blank line.
	slowDone := make(chan time.Duration, 1)
	go func() {
		t0 := time.Now()
		c, err := net.Dial("tcp", inst.addr)
		if err != nil {
			slowDone <- -1
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /e/custom HTTP/1.1\r\nHost: x\r\n")
		for i := 0; time.Since(t0) < 40*time.Second; i++ {
			if _, err := fmt.Fprintf(c, "X-Slow-%d: y\r\n", i); err != nil {
				break
			}
			time.Sleep(time.Second)
		}
		slowDone <- time.Since(t0)
	}()

	// 10,000 idle connections. Go raises the soft file limit to the hard
	// one; below that many descriptors the test cannot run.
	const idle = 10000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < idle+500 {
		skipOrFail(t, fmt.Sprintf("open file limit %d is below the %d the idle connections need", lim.Cur, idle+500))
	}
	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	t0 := time.Now()
	for range idle {
		c, err := net.DialTimeout("tcp", inst.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("after %d idle connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond) // let the server accept them all
	during := rssKiB(t, pid)
	start := time.Now()
	if code := post(client, inst.addr, "while-crowded"); code != http.StatusOK {
		t.Errorf("webhook with %d idle connections open: %d", idle, code)
	}
	served := time.Since(start)
	waitDelivered(t, s, []string{"while-crowded"}, 20*time.Second)
	t.Logf("%d idle connections opened in %s; RSS %d MiB before, %d MiB with them open; a webhook was served in %s",
		idle, time.Since(t0).Round(time.Millisecond), before/1024, during/1024, served.Round(time.Millisecond))
	// Bounded: a few tens of KiB per connection at most (goroutine and
	// buffers), far from a leak.
	if grew := during - before; grew > idle*64 {
		t.Errorf("RSS grew by %d MiB for %d idle connections, want under %d MiB", grew/1024, idle, idle*64/1024)
	}
	// The header timeout (10 s) closes idle connections: a read on the
	// oldest one ends.
	conns[0].SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("an idle connection was not closed by the server within 20 s: %v", err)
	}
	if d := <-slowDone; d < 0 || d > 25*time.Second {
		t.Errorf("the slowloris connection lasted %s, want it cut at the 10 s header timeout", d)
	} else {
		t.Logf("slowloris connection cut after %s", d.Round(time.Millisecond))
	}
}

// TestAuthAndPlantedSecrets runs the binary with an API token, an MCP
// token and secrets planted in every place a secret can be configured.
// Every API route, every dashboard action and /mcp refuse a missing or
// wrong token; with the right one, nothing mailroom shows (API responses,
// /metrics, dashboard pages, its logs) contains a planted secret; the
// dashboard carries its security headers.
func TestAuthAndPlantedSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const (
		token       = "api-token-PLANTED-0001"
		mcpToken    = "mcp-token-PLANTED-0002"
		srcSecret   = "src-secret-PLANTED-0003"
		destHeader  = "dest-header-PLANTED-0004"
		signSecret  = "whsec_UExBTlRFRC1zaWduLXNlY3JldC0wMDA1" // base64 of PLANTED-sign-secret-0005
		alertSecret = "alert-url-PLANTED-0006"
		urlPassword = "url-password-PLANTED-0007"
	)
	planted := []string{token, mcpToken, srcSecret, destHeader, "PLANTED-sign-secret-0005", signSecret, alertSecret, urlPassword}
	s := newSink(t)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer failing.Close()
	failingURL := strings.Replace(failing.URL, "http://", "http://user:"+urlPassword+"@", 1)
	cfg := writeYAML(t, t.TempDir(), fmt.Sprintf(`
storage: sqlite://%s/m.db
api: {token: %s}
mcp: {tokens: [{name: agent, token: %s}]}
alerts: {url: "%s/services/%s", consecutive_failures: 1}
sources:
  - name: custom
    verify: {type: hmac, header: X-Signature, algorithm: sha256, encoding: hex, secret: testsecret}
    dedup: {key: 'body.id'}
  - name: other
    verify: {type: hmac, header: X-Sig, secret: %s}
destinations:
  - name: sink
    url: %s/hooks
    headers: {Authorization: "Bearer %s"}
    sign: {type: standard-webhooks, secret: %s}
  - name: failing
    url: %s/x
    retry: {max_attempts: 2, initial: 10ms, max: 20ms}
connections:
  - {source: custom, destination: sink}
  - {source: custom, destination: failing}
`, t.TempDir(), token, mcpToken, s.srv.URL, alertSecret, srcSecret, s.srv.URL, destHeader, signSecret, failingURL))
	inst := start(t, binary(t), cfg)
	base := "http://" + inst.addr
	if code := post(http.DefaultClient, inst.addr, "sec-1"); code != http.StatusOK {
		t.Fatalf("ingest: %d", code)
	}
	waitDelivered(t, s, []string{"sec-1"}, 20*time.Second)

	do := func(method, path, auth string, body io.Reader) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	// Wait for the failing destination to die, so its error and the
	// alert are in the logs.
	var evID, dlvID string
	waitUntil(t, "the failing delivery to die", func() bool {
		var out struct {
			Data []struct {
				ID      string `json:"id"`
				EventID string `json:"event_id"`
			} `json:"data"`
		}
		_, _, b := do("GET", "/api/v1/deliveries?status=dead", token, nil)
		json.Unmarshal([]byte(b), &out)
		if len(out.Data) == 1 {
			dlvID, evID = out.Data[0].ID, out.Data[0].EventID
		}
		return dlvID != ""
	})

	routes := []struct{ method, path string }{
		{"GET", "/api/v1/sources"}, {"POST", "/api/v1/sources"}, {"GET", "/api/v1/sources/custom"},
		{"PUT", "/api/v1/sources/custom"}, {"DELETE", "/api/v1/sources/custom"},
		{"GET", "/api/v1/destinations"}, {"POST", "/api/v1/destinations"}, {"GET", "/api/v1/destinations/sink"},
		{"PUT", "/api/v1/destinations/sink"}, {"DELETE", "/api/v1/destinations/sink"},
		{"POST", "/api/v1/destinations/sink/pause"}, {"POST", "/api/v1/destinations/sink/resume"},
		{"GET", "/api/v1/connections"}, {"POST", "/api/v1/connections"}, {"GET", "/api/v1/connections/custom-%3Esink"},
		{"PUT", "/api/v1/connections/custom-%3Esink"}, {"DELETE", "/api/v1/connections/custom-%3Esink"},
		{"GET", "/api/v1/requests"}, {"GET", "/api/v1/events"}, {"GET", "/api/v1/events/" + evID},
		{"POST", "/api/v1/events/" + evID + "/replay"}, {"GET", "/api/v1/events/stream"},
		{"GET", "/api/v1/deliveries"}, {"GET", "/api/v1/deliveries/" + dlvID}, {"GET", "/api/v1/deliveries/" + dlvID + "/attempts"},
		{"POST", "/api/v1/deliveries/" + dlvID + "/retry"}, {"POST", "/api/v1/deliveries/retry"},
		{"GET", "/api/v1/stats"}, {"GET", "/api/v1/tasks"}, {"GET", "/api/v1/alerts"}, {"POST", "/api/v1/reload"},
		{"GET", "/api/v1/nonexistent"}, {"POST", "/mcp"}, {"GET", "/mcp"},
	}
	for _, r := range routes {
		for _, auth := range []string{"", "wrong-token", mcpToken + "x"} {
			if code, _, body := do(r.method, r.path, auth, strings.NewReader(`{}`)); code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d %s, want 401", r.method, r.path, auth, code, body)
			}
		}
	}
	// Dashboard: pages redirect to the login, actions are refused, a
	// wrong token does not log in.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, r := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/ui/events"}, {"GET", "/ui/events/" + evID}, {"GET", "/ui/stream"},
		{"POST", "/ui/events/" + evID + "/replay"}, {"POST", "/ui/deliveries/" + dlvID + "/retry"},
		{"POST", "/ui/destinations/sink/pause"}, {"POST", "/ui/destinations/sink/resume"},
	} {
		req, _ := http.NewRequest(r.method, base+r.path, nil)
		req.Header.Set("Origin", base)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 300 || resp.StatusCode == http.StatusNotFound || (resp.StatusCode < 400 && !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login")) {
			t.Errorf("dashboard %s %s without a session: %d (Location %q)", r.method, r.path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	login := func(tok string) *http.Cookie {
		req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			if c.Name == "mailroom_session" && c.Value != "" {
				return c
			}
		}
		return nil
	}
	if c := login("wrong-token"); c != nil {
		t.Error("a wrong token logged in to the dashboard")
	}
	session := login(token)
	if session == nil {
		t.Fatal("the API token did not log in to the dashboard")
	}
	if paused := func() bool {
		var d struct {
			Paused bool `json:"paused"`
		}
		_, _, b := do("GET", "/api/v1/destinations/sink", token, nil)
		json.Unmarshal([]byte(b), &d)
		return d.Paused
	}(); paused {
		t.Error("an unauthenticated request paused a destination")
	}

	// Everything mailroom shows, with the right credentials.
	var shown strings.Builder
	for _, p := range []string{"/api/v1/sources", "/api/v1/sources/custom", "/api/v1/sources/other", "/api/v1/destinations",
		"/api/v1/destinations/sink", "/api/v1/destinations/failing", "/api/v1/connections", "/api/v1/requests", "/api/v1/requests?status=rejected",
		"/api/v1/events", "/api/v1/events/" + evID, "/api/v1/deliveries", "/api/v1/deliveries/" + dlvID,
		"/api/v1/deliveries/" + dlvID + "/attempts", "/api/v1/stats", "/api/v1/alerts", "/api/v1/tasks", "/metrics"} {
		code, _, body := do("GET", p, token, nil)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
		shown.WriteString(body)
	}
	for _, p := range []string{"/", "/ui/requests", "/ui/events", "/ui/events/" + evID, "/ui/destinations", "/ui/sources", "/ui/tasks"} {
		req, _ := http.NewRequest("GET", base+p, nil)
		req.AddCookie(session)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("dashboard %s: %d", p, resp.StatusCode)
		}
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") ||
			h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("dashboard %s: security headers CSP %q, X-Content-Type-Options %q", p, csp, h.Get("X-Content-Type-Options"))
		}
		shown.WriteString(string(b))
	}
	// MCP tasks of one token are not another's: covered in
	// internal/mcpserver (TestAuthAndOrigin); here the MCP token reaches
	// /mcp and not the admin API.
	if code, _, _ := do("GET", "/api/v1/events", mcpToken, nil); code != http.StatusUnauthorized {
		t.Errorf("the MCP token opened the admin API: %d", code)
	}
	logs := inst.logs.String()
	for _, secret := range planted {
		if strings.Contains(shown.String(), secret) {
			t.Errorf("planted secret %q appears in an API response, /metrics or a dashboard page", secret)
		}
		if strings.Contains(logs, secret) {
			t.Errorf("planted secret %q appears in the logs", secret)
		}
	}
	if !strings.Contains(shown.String(), "********") || !strings.Contains(shown.String(), "sec-1") || !strings.Contains(logs, "delivery attempt failed") {
		t.Error("the responses or logs lack what they should show (masked secrets, the event body, the failed attempt): the grep saw too little")
	}
}
