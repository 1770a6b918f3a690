package netguard_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/netguard"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"169.254.169.254":        "cloud metadata",
		"fd00:ec2::254":          "cloud metadata",
		"100.100.100.200":        "cloud metadata",
		"127.0.0.1":              "loopback",
		"127.255.0.9":            "loopback",
		"::1":                    "loopback",
		"::ffff:127.0.0.1":       "loopback",
		"::ffff:169.254.169.254": "cloud metadata",
		"64:ff9b::a00:1":         "private",  // NAT64 of 10.0.0.1
		"2002:7f00:1::":          "loopback", // 6to4 of 127.0.0.1
		"10.1.2.3":               "private",
		"172.16.0.1":             "private",
		"172.31.255.255":         "private",
		"192.168.1.1":            "private",
		"fd12:3456::1":           "private",
		"169.254.1.1":            "link-local",
		"fe80::1":                "link-local",
		"100.64.0.1":             "shared (carrier-grade NAT)",
		"0.0.0.0":                "unspecified",
		"::":                     "unspecified",
		"224.0.0.1":              "multicast",
		"255.255.255.255":        "reserved",
		"8.8.8.8":                "",
		"172.32.0.1":             "",
		"2606:4700::1111":        "",
		"::ffff:1.1.1.1":         "",
		"2002:0808:0808::":       "", // 6to4 of 8.8.8.8
	} {
		if got := netguard.Classify(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Classify(%s) = %q, want %q", addr, got, want)
		}
	}
}

func TestCheckAllowlists(t *testing.T) {
	t.Parallel()
	lo := netip.MustParseAddr("127.0.0.1")
	meta := netip.MustParseAddr("169.254.169.254")
	var nilPolicy *netguard.Policy
	if err := nilPolicy.Check("x", lo); err != nil {
		t.Errorf("nil policy refused: %v", err)
	}
	def := netguard.New(netguard.Options{})
	err := def.Check("metadata.google.internal", meta)
	var re *netguard.RefusedError
	if !errors.As(err, &re) || !errors.Is(err, netguard.ErrRefused) || re.Class != "cloud metadata" {
		t.Fatalf("default policy on metadata: %v", err)
	}
	for _, want := range []string{"metadata.google.internal (169.254.169.254)", "cloud metadata", "delivery.allow_networks"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := def.Check("example.com", netip.MustParseAddr("93.184.216.34")); err != nil {
		t.Errorf("public address refused: %v", err)
	}
	nets := netguard.New(netguard.Options{AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.1.0.0/16")}})
	for addr, ok := range map[string]bool{"127.0.0.1": true, "::ffff:127.0.0.1": true, "10.1.9.9": true, "10.2.0.1": false, "169.254.169.254": false, "::1": false} {
		if err := nets.Check("h", netip.MustParseAddr(addr)); (err == nil) != ok {
			t.Errorf("allow_networks policy on %s: %v, want allowed=%v", addr, err, ok)
		}
	}
	hosts := netguard.New(netguard.Options{AllowHosts: []string{"Billing.Internal."}})
	if err := hosts.Check("billing.internal", netip.MustParseAddr("10.9.9.9")); err != nil {
		t.Errorf("allowed host refused: %v", err)
	}
	if err := hosts.Check("other.internal", netip.MustParseAddr("10.9.9.9")); err == nil {
		t.Error("host not on the list allowed")
	}
	all := netguard.New(netguard.Options{AllowPrivateNetworks: true})
	if err := all.Check("h", meta); err != nil {
		t.Errorf("allow_private_networks refused: %v", err)
	}
}

// TestDialChecksResolvedAddress dials "localhost", a name, not an IP:
// the check sees what it resolved to and refuses it before connecting,
// and an allowlist lets the same dial through.
func TestDialChecksResolvedAddress(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	get := func(p *netguard.Policy) error {
		tr := &http.Transport{DialContext: p.DialContext(&net.Dialer{Timeout: 5 * time.Second})}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		resp, err := c.Get("http://localhost:" + port + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	err := get(netguard.New(netguard.Options{}))
	if !errors.Is(err, netguard.ErrRefused) || !strings.Contains(err.Error(), "localhost (") {
		t.Fatalf("dial localhost under the default policy: %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the server was reached %d times", n)
	}
	allowed := netguard.New(netguard.Options{AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	if err := get(allowed); err != nil {
		t.Fatalf("dial localhost with loopback allowed: %v", err)
	}
	if err := get(netguard.New(netguard.Options{AllowHosts: []string{"localhost"}})); err != nil {
		t.Fatalf("dial localhost with the host allowed: %v", err)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("hits = %d, want 2", n)
	}
	// A context that ends is still reported as such, not as a refusal.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := netguard.New(netguard.Options{}).DialContext(&net.Dialer{})(ctx, "tcp", "8.8.8.8:53"); errors.Is(err, netguard.ErrRefused) {
		t.Errorf("canceled dial reported as refused: %v", err)
	}
}
