package config_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/config"
)

func TestDeliveryAllowlist(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`
delivery:
  allow_networks: [10.1.0.0/16, 127.0.0.1, "::1", 192.168.1.77/24]
  allow_hosts: [billing.internal]
`), "m.yaml", realOptions(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	nets, err := cfg.Delivery.Networks()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.168.1.0/24")}
	if !slices.Equal(nets, want) {
		t.Errorf("Networks() = %v, want %v", nets, want)
	}
	if cfg.Delivery.AllowPrivateNetworks || !slices.Equal(cfg.Delivery.AllowHosts, []string{"billing.internal"}) {
		t.Errorf("delivery = %+v", cfg.Delivery)
	}

	_, err = config.Parse([]byte(`
delivery:
  allow_networks:
    - 10.0.0.0/33
    - intranet
  allow_hosts: ["http://billing.internal:8080"]
  allow_private_netwerks: true
`), "m.yaml", realOptions(t, nil))
	if err == nil {
		t.Fatal("bad delivery section accepted")
	}
	for _, want := range []string{
		`m.yaml:3: delivery.allow_networks: "10.0.0.0/33" is not a CIDR prefix`,
		`m.yaml:3: delivery.allow_networks: "intranet" is not an IP address or CIDR prefix`,
		`m.yaml:6: delivery.allow_hosts: "http://billing.internal:8080" is not a host name`,
		`allow_private_netwerks`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}
