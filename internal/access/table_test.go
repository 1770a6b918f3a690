package access_test

import (
	"slices"
	"testing"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
	"github.com/mailroomhq/mailroom/internal/web"
)

// TestTableCoversEveryRoute reads the routes of the API and the dashboard
// from their routers: each must have a row in the permission table (or be
// one of the dashboard's public routes), and each row must be a route, so
// that a route added later cannot go unguarded and the table cannot
// carry stale rows.
func TestTableCoversEveryRoute(t *testing.T) {
	s := sqlitetest.Open(t, nil)
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(s, compiler, nil)
	dash := web.New(s, cat, nil)
	defer dash.Close()
	routes := append(api.New(s, cat, nil).Patterns(), dash.Patterns()...)
	routes = append(routes, "GET /metrics", "/mcp")
	for _, r := range routes {
		if _, ok := access.Required(r); !ok && !slices.Contains(access.Public, r) {
			t.Errorf("route %q has no row in the permission table", r)
		}
	}
	for _, p := range access.Patterns() {
		if !slices.Contains(routes, p) {
			t.Errorf("permission table row %q is no route", p)
		}
	}
	for _, p := range access.Public {
		if !slices.Contains(routes, p) {
			t.Errorf("public route %q is no route", p)
		}
	}
}

// TestRoles checks what each role grants.
func TestRoles(t *testing.T) {
	want := map[access.Role][]access.Permission{
		access.RoleAdmin:    {access.PermRead, access.PermOperate, access.PermAdmin, access.PermMCP},
		access.RoleOperator: {access.PermRead, access.PermOperate},
		access.RoleViewer:   {access.PermRead},
		access.RoleMCP:      {access.PermMCP},
		access.RoleIngest:   nil,
		"root":              nil,
	}
	for role, perms := range want {
		for _, p := range []access.Permission{access.PermRead, access.PermOperate, access.PermAdmin, access.PermMCP} {
			if got := role.Allows(p); got != slices.Contains(perms, p) {
				t.Errorf("%s allows %s = %v", role, p, got)
			}
		}
	}
	if _, err := access.ParseRole("root"); err == nil {
		t.Error("ParseRole(root) took it")
	}
	if r, err := access.ParseRole(" viewer "); err != nil || r != access.RoleViewer {
		t.Errorf("ParseRole(viewer) = %v, %v", r, err)
	}
	if err := (access.Principal{Role: access.RoleViewer}).Authorize("GET /no/such/route"); err == nil {
		t.Error("a viewer may call a route missing from the table")
	}
}
