package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
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
