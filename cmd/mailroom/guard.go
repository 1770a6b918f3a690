package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"

	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/httpguard"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/netguard"
)

// loopbackNetworks are the loopback prefixes, allowed as destinations
// when mailroom itself listens on loopback.
var loopbackNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// deliveryGuard builds the policy of which addresses destinations may
// reach from cfg.Delivery, and logs it.
//
// Public addresses are always allowed; loopback, private, link-local and
// metadata addresses only when the config lists them, with one exception:
// when the listener is loopback, loopback destinations are allowed too.
// Then only local users can reach the admin API that sets destinations,
// and they can reach loopback services directly anyway; it keeps the
// README's tour (a destination on 127.0.0.1:9000) working with no
// settings. A mailroom listening on any other address refuses loopback
// unless delivery.allow_networks lists it.
func deliveryGuard(cfg *config.Config, log *slog.Logger) (*netguard.Policy, error) {
	d := cfg.Delivery
	nets, err := d.Networks()
	if err != nil {
		return nil, fmt.Errorf("delivery.allow_networks: %w", err)
	}
	opts := netguard.Options{AllowPrivateNetworks: d.AllowPrivateNetworks, AllowNetworks: nets, AllowHosts: d.AllowHosts}
	switch {
	case d.AllowPrivateNetworks:
		log.Warn("delivery.allow_private_networks is set: destinations may reach any address, including loopback, private networks and cloud metadata")
	case isLoopback(cfg.Listen):
		opts.AllowNetworks = append(opts.AllowNetworks, loopbackNetworks...)
		log.Info("delivery: destinations on loopback are allowed because the listener is loopback; private, link-local and metadata addresses are refused unless listed in delivery.allow_networks or delivery.allow_hosts",
			"allow_networks", d.AllowNetworks, "allow_hosts", d.AllowHosts)
	default:
		log.Info("delivery: destinations on loopback, private, link-local and metadata addresses are refused unless listed in delivery.allow_networks or delivery.allow_hosts",
			"allow_networks", d.AllowNetworks, "allow_hosts", d.AllowHosts)
	}
	return netguard.New(opts), nil
}

// publicPaths are the paths served to anyone, with no Host, Origin or
// content-type check: the ingest endpoints, which providers call from
// anywhere, the health checks, which orchestrators probe by address, and
// the protected resource metadata of /mcp, which OAuth clients (browser
// ones too) read before they have a token.
var publicPaths = []string{"/e/", "/healthz", "/readyz", mcpauth.MetadataPath, mcpauth.MetadataPath + "/"}

// operatorGuard builds the guard in front of every route but
// [publicPaths]: the admin API, the dashboard, /metrics and /mcp refuse
// foreign Host headers and cross-site requests, and writes that are not
// JSON (forms under /ui/, the dashboard's actions). It logs the policy.
func operatorGuard(cfg *config.Config, log *slog.Logger) *httpguard.Guard {
	log.Info("operator routes (API, dashboard, /metrics, /mcp) answer only to the listener's name or address and api.allowed_hosts, and refuse cross-site browser requests; /e/ and health checks answer anyone",
		"listen", cfg.Listen, "allowed_hosts", cfg.API.AllowedHosts, "mcp_allowed_origins", cfg.MCP.AllowedOrigins)
	return httpguard.New(&httpguard.Options{
		Listen:         cfg.Listen,
		AllowedHosts:   allowedHosts(cfg),
		AllowedOrigins: map[string][]string{"/mcp": cfg.MCP.AllowedOrigins},
		Public:         publicPaths,
		Forms:          []string{"/ui/"},
	})
}

// allowedHosts are api.allowed_hosts and, with mcp.oauth, the host of its
// resource URL: the config names it as this server's public address.
func allowedHosts(cfg *config.Config) []string {
	hosts := cfg.API.AllowedHosts
	if r := cfg.MCP.OAuth.Resource; r != "" {
		if u, err := url.Parse(r); err == nil && u.Host != "" {
			hosts = append(slices.Clip(hosts), u.Host)
		}
	}
	return hosts
}
