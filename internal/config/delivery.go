package config

import (
	"fmt"
	"github.com/mailroomhq/mailroom/internal/store"
	"net/netip"
	"strings"
)

// DeliveryConfig says which non-public addresses destinations may reach.
// By default mailroom refuses to deliver to loopback, private, link-local
// (among them the cloud metadata address 169.254.169.254) and other
// non-public addresses, checked after DNS resolution; cmd/mailroom also
// allows loopback when the listener itself is loopback. The fields below
// allow more, for destinations on a private network.
type DeliveryConfig struct {
	// AllowPrivateNetworks allows every address. Only for a mailroom whose
	// API and config are trusted as much as the network it runs in.
	AllowPrivateNetworks bool `yaml:"allow_private_networks"`
	// AllowNetworks are CIDR prefixes (10.1.0.0/16) or single addresses
	// (10.1.2.3) destinations may resolve to.
	AllowNetworks []string `yaml:"allow_networks"`
	// AllowHosts are host names (billing.internal) whose destinations are
	// delivered whatever their names resolve to.
	AllowHosts []string `yaml:"allow_hosts"`
	// Proxy is the proxy every destination's deliveries go through unless
	// the destination names its own proxy (or "direct"): an http://,
	// https:// or socks5:// URL, with an optional user:password. The
	// address checks above still apply to the final target.
	Proxy string `yaml:"proxy"`
	// NoProxy lists the hosts reached without Proxy, as NO_PROXY does:
	// comma-separated host names (subdomains included), addresses, CIDR
	// prefixes, optional ports. Loopback is never proxied.
	NoProxy string `yaml:"no_proxy"`
}

// Networks returns AllowNetworks parsed; a single address becomes a
// prefix of its full length. Call it on a validated config.
func (d DeliveryConfig) Networks() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(d.AllowNetworks))
	for _, s := range d.AllowNetworks {
		p, err := parseNetwork(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// parseNetwork reads a CIDR prefix or a single address.
func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix (want e.g. 10.1.0.0/16): %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix (want e.g. 10.1.2.3 or 10.1.0.0/16)", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// delivery checks the delivery section: parseable networks, plain host
// names. Errors quote the item, on the line of the list's key.
func (v *validator) delivery() {
	d := v.c.Delivery
	for _, s := range d.AllowNetworks {
		if _, err := parseNetwork(s); err != nil {
			v.add("delivery.allow_networks", err)
		}
	}
	for _, h := range d.AllowHosts {
		if h == "" || strings.ContainsAny(h, "/:@ *") {
			v.errf("delivery.allow_hosts", "%q is not a host name (no scheme, port, path or wildcard; use allow_networks for addresses)", h)
		}
	}
	if d.Proxy != "" {
		if err := store.CheckProxyURL(d.Proxy); err != nil {
			v.add("delivery.proxy", err)
		}
	}
}
