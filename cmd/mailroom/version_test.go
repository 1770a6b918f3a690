package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
)

// stampedBuild is what TestVersionEverywhere links into its binary.
var stampedBuild = buildinfo.Info{Version: "v9.8.7-test", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-12-03T10:00:00Z"}

// buildStamped compiles mailroom with the version, commit and date set by
// -ldflags -X, as scripts/release.sh does.
func buildStamped(t *testing.T, b buildinfo.Info) string {
	t.Helper()
	const pkg = "github.com/mailroomhq/mailroom/internal/buildinfo"
	bin := filepath.Join(t.TempDir(), "mailroom")
	ldflags := fmt.Sprintf("-X %s.version=%s -X %s.commit=%s -X %s.date=%s", pkg, b.Version, pkg, b.Commit, pkg, b.Date)
	if out, err := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestVersionEverywhere builds the binary with a release's link-time
// version and checks every place that shows it says the same: `mailroom
// version` (text and --json), --version, the startup log, /healthz, MCP
// serverInfo, the mailroom_build_info metric and the User-Agent of a
// delivery.
func TestVersionEverywhere(t *testing.T) {
	t.Parallel()
	bin := buildStamped(t, stampedBuild)
	want := stampedBuild

	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("version --json: %v", err)
	}
	var got buildinfo.Info
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("version --json is not JSON: %v\n%s", err, out)
	}
	if got.Version != want.Version || got.Commit != want.Commit || got.Date != want.Date || !strings.HasPrefix(got.GoVersion, "go1.") || got.Platform == "" {
		t.Errorf("version --json = %+v, want version, commit and date %+v and a Go version and platform", got, want)
	}
	out, err = exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	for _, s := range []string{"mailroom " + want.Version, "commit:   " + want.Commit, "built:    " + want.Date, "go:       go1."} {
		if !strings.Contains(string(out), s) {
			t.Errorf("version output lacks %q:\n%s", s, out)
		}
	}
	out, err = exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("--version: %v", err)
	}
	if !strings.HasPrefix(string(out), "mailroom "+want.Version+" (commit 0123456789ab, built "+want.Date) {
		t.Errorf("--version = %q", out)
	}

	agents := make(chan string, 1)
	sinkSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case agents <- r.UserAgent():
		default:
		}
	}))
	t.Cleanup(sinkSrv.Close)
	dir := t.TempDir()
	inst := start(t, bin, writeConfig(t, dir, sinkSrv.URL))
	if s := inst.logs.String(); !strings.Contains(s, "version="+want.Version) || !strings.Contains(s, "commit="+want.Commit) {
		t.Errorf("startup log lacks the version and commit:\n%s", s)
	}

	var health struct{ Status, Version, Commit string }
	getJSON(t, "http://"+inst.addr+"/healthz", &health)
	if health.Status != "ok" || health.Version != want.Version || health.Commit != want.Commit {
		t.Errorf("/healthz = %+v, want ok with %s %s", health, want.Version, want.Commit)
	}

	resp, err := http.Get("http://" + inst.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantMetric := fmt.Sprintf(`mailroom_build_info{commit=%q,goversion=%q,version=%q} 1`, want.Commit, got.GoVersion, want.Version)
	if !bytes.Contains(metrics, []byte(wantMetric)) {
		t.Errorf("/metrics lacks %s", wantMetric)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "version-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + inst.addr + "/mcp"}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect MCP: %v", err)
	}
	if v := cs.InitializeResult().ServerInfo.Version; v != want.Version {
		t.Errorf("MCP serverInfo.version = %q, want %q", v, want.Version)
	}
	cs.Close()

	body := []byte(`{"id":"ua-1","type":"test"}`)
	req, _ := http.NewRequest(http.MethodPost, "http://"+inst.addr+"/e/custom", bytes.NewReader(body))
	req.Header.Set("X-Signature", sign(body))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest = %d", resp.StatusCode)
	}
	select {
	case ua := <-agents:
		if ua != "mailroom/"+want.Version {
			t.Errorf("delivery User-Agent = %q, want mailroom/%s", ua, want.Version)
		}
	case <-ctx.Done():
		t.Fatalf("the delivery never arrived\n%s", inst.logs)
	}
}
