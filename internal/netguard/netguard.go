// Package netguard keeps outbound deliveries away from the networks an
// attacker who can set a destination URL should not reach through
// mailroom: loopback, private ranges, link-local addresses (among them the
// cloud metadata endpoint 169.254.169.254) and other non-public ranges.
//
// The check runs on the address actually being connected to, after DNS
// resolution, from the dialer's Control hook ([Policy.DialContext]), so a
// host name that resolves (or re-resolves, DNS rebinding) to a refused
// address is refused too. Redirects are not followed by the delivery client
// at all; if they were, each hop would dial through the same hook.
//
// A [Policy] allows public addresses, plus whatever its [Options] allow
// explicitly: whole networks (CIDR prefixes), host names, or every address.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// ErrRefused is matched (with errors.Is) by every [*RefusedError].
var ErrRefused = errors.New("address refused")

// RefusedError is the error of a dial that the policy refused.
type RefusedError struct {
	// Host is the host name (or IP literal) the connection was for.
	Host string
	// Addr is the resolved address that was refused.
	Addr netip.Addr
	// Class names the kind of address, e.g. "loopback" or "cloud metadata".
	Class string
}

// Error names the address, why it is refused and how to allow it.
func (e *RefusedError) Error() string {
	what := e.Addr.String()
	if e.Host != "" && e.Host != what {
		what = e.Host + " (" + what + ")"
	}
	return fmt.Sprintf("refused to connect to %s: %s address; allow it with delivery.allow_networks or delivery.allow_hosts", what, e.Class)
}

// Is reports whether target is [ErrRefused].
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Options lists what a [Policy] allows besides public addresses.
type Options struct {
	// AllowPrivateNetworks allows every address, public or not.
	AllowPrivateNetworks bool
	// AllowNetworks are prefixes whose addresses are allowed, e.g.
	// 10.1.0.0/16 or 127.0.0.1/32.
	AllowNetworks []netip.Prefix
	// AllowHosts are host names whose connections are allowed whatever
	// they resolve to (compared case-insensitively, without a trailing
	// dot).
	AllowHosts []string
}

// Policy decides which addresses outbound connections may reach. A nil
// *Policy allows everything. It is safe for concurrent use.
type Policy struct {
	all   bool
	nets  []netip.Prefix
	hosts map[string]bool
}

// New returns the policy of opts.
func New(opts Options) *Policy {
	p := &Policy{all: opts.AllowPrivateNetworks, hosts: map[string]bool{}}
	for _, n := range opts.AllowNetworks {
		p.nets = append(p.nets, n.Masked())
	}
	for _, h := range opts.AllowHosts {
		p.hosts[normHost(h)] = true
	}
	return p
}

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// Check returns nil if a connection for host may go to addr, and a
// [*RefusedError] otherwise.
func (p *Policy) Check(host string, addr netip.Addr) error {
	if p == nil || p.all || p.hosts[normHost(host)] {
		return nil
	}
	addr = addr.Unmap()
	for _, n := range p.nets {
		if n.Contains(addr) {
			return nil
		}
	}
	if class := Classify(addr); class != "" {
		return &RefusedError{Host: host, Addr: addr, Class: class}
	}
	return nil
}

// DialContext returns a dial function for an http.Transport: it dials
// with base (which it does not modify) and checks every address it is
// about to connect to, after resolution, with [Policy.Check].
func (p *Policy) DialContext(base *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		if p == nil || p.all || p.hosts[normHost(host)] {
			return base.DialContext(ctx, network, addr)
		}
		d := *base
		prev := base.Control
		d.Control = func(network, address string, c syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("netguard: unexpected address %q: %w", address, err)
			}
			if err := p.Check(host, ap.Addr()); err != nil {
				return err
			}
			if prev != nil {
				return prev(network, address, c)
			}
			return nil
		}
		return d.DialContext(ctx, network, addr)
	}
}

// refused are the non-public ranges and the class each is reported as.
// Earlier entries win, so the metadata address is named as such rather
// than as link-local.
var refused = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata"},
	{netip.MustParsePrefix("100.100.100.200/32"), "cloud metadata"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fc00::/7"), "private"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "private"},
}

// nat64 and sixToFour are IPv6 prefixes that embed an IPv4 address, which
// is classified in their place.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Classify returns the class of a non-public address ("loopback",
// "private", "link-local", "cloud metadata", ...) or "" for a public one.
// IPv4-mapped, NAT64 and 6to4 IPv6 addresses are classified by the IPv4
// address they carry.
func Classify(addr netip.Addr) string {
	if !addr.IsValid() {
		return "invalid"
	}
	addr = addr.Unmap()
	if addr.Is6() {
		b := addr.As16()
		switch {
		case nat64.Contains(addr):
			return Classify(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(addr):
			return Classify(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	for _, r := range refused {
		if r.prefix.Contains(addr) {
			return r.class
		}
	}
	return ""
}
