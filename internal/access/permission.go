package access

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Permission is what a route asks of the principal calling it.
type Permission string

// The permissions, from least to most.
const (
	// PermRead reads a project: lists, details, the event stream, metrics.
	PermRead Permission = "read"
	// PermOperate changes a project: its catalog, retries, replays,
	// pauses, tasks.
	PermOperate Permission = "operate"
	// PermAdmin is for what spans projects: tokens, the audit log, a
	// config reload.
	PermAdmin Permission = "admin"
	// PermMCP uses the MCP endpoint.
	PermMCP Permission = "mcp"
)

// Allows reports whether role grants perm. Admin grants everything;
// operator grants read and operate; viewer grants read; mcp grants only
// mcp (the MCP endpoint, whose tools check the project themselves);
// ingest-only grants none of them (it may only send webhooks).
func (r Role) Allows(perm Permission) bool {
	switch r {
	case RoleAdmin:
		return true
	case RoleOperator:
		return perm == PermRead || perm == PermOperate
	case RoleViewer:
		return perm == PermRead
	case RoleMCP:
		return perm == PermMCP
	}
	return false
}

// Valid reports whether r is one of [Roles].
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// ParseRole returns the role named s, or an error listing the roles.
func ParseRole(s string) (Role, error) {
	r := Role(strings.TrimSpace(s))
	if !r.Valid() {
		names := make([]string, len(Roles))
		for i, r := range Roles {
			names[i] = string(r)
		}
		return "", fmt.Errorf("unknown role %q: want one of %s", s, strings.Join(names, ", "))
	}
	return r, nil
}

// routes is the permission table: every operator route, by the pattern
// its router registers it with, and the permission it requires. A route
// missing here is refused to everyone but an admin (see [Required]); a
// test walks the routers so that none is missing.
var routes = map[string]Permission{
	// Admin API: the catalog.
	"GET /api/v1/sources":                          PermRead,
	"POST /api/v1/sources":                         PermOperate,
	"GET /api/v1/sources/{name}":                   PermRead,
	"PUT /api/v1/sources/{name}":                   PermOperate,
	"DELETE /api/v1/sources/{name}":                PermOperate,
	"GET /api/v1/destinations":                     PermRead,
	"POST /api/v1/destinations":                    PermOperate,
	"GET /api/v1/destinations/{name}":              PermRead,
	"PUT /api/v1/destinations/{name}":              PermOperate,
	"DELETE /api/v1/destinations/{name}":           PermOperate,
	"POST /api/v1/destinations/{name}/pause":       PermOperate,
	"POST /api/v1/destinations/{name}/resume":      PermOperate,
	"GET /api/v1/connections":                      PermRead,
	"POST /api/v1/connections":                     PermOperate,
	"GET /api/v1/connections/{id}":                 PermRead,
	"PUT /api/v1/connections/{id}":                 PermOperate,
	"DELETE /api/v1/connections/{id}":              PermOperate,
	"POST /api/v1/connections/{id}/transform/test": PermOperate,
	// Admin API: history and the operator's actions.
	"GET /api/v1/requests":                     PermRead,
	"GET /api/v1/requests/{id}":                PermRead,
	"GET /api/v1/events":                       PermRead,
	"GET /api/v1/events/stream":                PermRead,
	"GET /api/v1/events/{id}":                  PermRead,
	"POST /api/v1/events/{id}/listen-attempts": PermOperate,
	"POST /api/v1/events/{id}/replay":          PermOperate,
	"GET /api/v1/deliveries":                   PermRead,
	"POST /api/v1/deliveries/retry":            PermOperate,
	"GET /api/v1/deliveries/{id}":              PermRead,
	"GET /api/v1/deliveries/{id}/attempts":     PermRead,
	"POST /api/v1/deliveries/{id}/retry":       PermOperate,
	"GET /api/v1/stats":                        PermRead,
	"GET /api/v1/tasks":                        PermRead,
	"GET /api/v1/tasks/{id}":                   PermRead,
	"POST /api/v1/tasks":                       PermOperate,
	"POST /api/v1/tasks/{id}/cancel":           PermOperate,
	"GET /api/v1/alerts":                       PermRead,
	"GET /api/v1/projects":                     PermRead,
	// Admin API: what spans projects.
	"GET /api/v1/openapi.json":   PermRead,
	"POST /api/v1/reload":        PermAdmin,
	"GET /api/v1/tokens":         PermAdmin,
	"POST /api/v1/tokens":        PermAdmin,
	"DELETE /api/v1/tokens/{id}": PermAdmin,
	"GET /api/v1/audit":          PermAdmin,
	// Dashboard.
	"GET /{$}":                            PermRead,
	"GET /ui/{$}":                         PermRead,
	"GET /ui/requests":                    PermRead,
	"GET /ui/requests/{id}":               PermRead,
	"GET /ui/events":                      PermRead,
	"GET /ui/events/{id}":                 PermRead,
	"POST /ui/events/{id}/replay":         PermOperate,
	"POST /ui/deliveries/{id}/retry":      PermOperate,
	"GET /ui/destinations":                PermRead,
	"POST /ui/destinations/{name}/pause":  PermOperate,
	"POST /ui/destinations/{name}/resume": PermOperate,
	"GET /ui/sources":                     PermRead,
	"GET /ui/tasks":                       PermRead,
	"GET /ui/stream":                      PermRead,
	// Observability and MCP.
	"GET /metrics": PermRead,
	"/mcp":         PermMCP,
}

// Public are the dashboard's routes that need no principal: the login
// form and logging out.
var Public = []string{"GET /ui/login", "POST /ui/login", "POST /ui/logout"}

// Required returns the permission the route registered with pattern
// requires, and false for a pattern not in the table, which only an
// admin may call.
func Required(pattern string) (Permission, bool) {
	p, ok := routes[pattern]
	if !ok {
		return PermAdmin, false
	}
	return p, true
}

// Patterns returns every pattern of the permission table, sorted.
func Patterns() []string {
	out := make([]string, 0, len(routes))
	for p := range routes {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Mutating reports whether the route registered with pattern changes
// something (any method but GET and HEAD), which the audit log records.
func Mutating(pattern string) bool {
	method, _, ok := strings.Cut(pattern, " ")
	if !ok {
		return true // a pattern without a method takes every method
	}
	return method != http.MethodGet && method != http.MethodHead
}

// Authorize returns nil if p may call the route registered with pattern
// (anyone may call a [Public] one), else an error that says what is
// missing.
func (p Principal) Authorize(pattern string) error {
	if slices.Contains(Public, pattern) {
		return nil
	}
	perm, _ := Required(pattern)
	if p.Role.Allows(perm) {
		return nil
	}
	return fmt.Errorf("forbidden: %s needs the %s permission, which role %s (token %s) does not have", pattern, perm, p.Role, orNone(p.TokenID))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
