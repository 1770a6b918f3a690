// Package access says whom a request acts for: the principal a token
// stands for, with its role and project. Authentication (static tokens,
// stored tokens, OAuth access tokens) produces a Principal and puts it in
// the request's context; everything that lists, changes or streams reads
// it from there to scope what it touches.
package access

import "context"

// Role is what a principal may do.
type Role string

// The roles. Admin acts on every project; the others act on one.
const (
	// RoleAdmin may do everything in every project.
	RoleAdmin Role = "admin"
	// RoleOperator manages a project's catalog and retries and replays
	// its deliveries and events.
	RoleOperator Role = "operator"
	// RoleViewer reads a project.
	RoleViewer Role = "viewer"
	// RoleMCP uses a project's MCP tools, resources and tasks.
	RoleMCP Role = "mcp"
	// RoleIngest may only send webhooks to a project's sources that
	// authenticate with a mailroom token.
	RoleIngest Role = "ingest-only"
)

// Roles lists every role, most powerful first.
var Roles = []Role{RoleAdmin, RoleOperator, RoleViewer, RoleMCP, RoleIngest}

// DefaultProject is the project of a single-project setup: entries that
// name no project belong to it.
const DefaultProject = "default"

// Principal is whom a request acts for.
type Principal struct {
	// TokenID identifies the credential (a stored token's id, "api" for
	// the static api.token, the subject of an OAuth access token).
	TokenID string
	// Name is a human-readable name of the credential's holder.
	Name string
	// Role is what the principal may do.
	Role Role
	// Project is the one project the principal acts in; empty for an
	// admin, who acts in all.
	Project string
}

// Anonymous is the principal of a request when mailroom runs without any
// token (loopback only): an admin of every project.
var Anonymous = Principal{TokenID: "", Name: "anonymous", Role: RoleAdmin}

// AllProjects reports whether p acts in every project.
func (p Principal) AllProjects() bool { return p.Role == RoleAdmin && p.Project == "" }

// InProject reports whether p may act in project (an empty project is the
// default one).
func (p Principal) InProject(project string) bool {
	if project == "" {
		project = DefaultProject
	}
	if p.AllProjects() {
		return true
	}
	pp := p.Project
	if pp == "" {
		pp = DefaultProject
	}
	return pp == project
}

type ctxKey struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal ctx carries and whether there is one.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
