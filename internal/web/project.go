package web

import (
	"context"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/store"
)

// scopeOf returns the one project the request of ctx acts in (its
// principal's, [access.From]), or "" for every project: an admin, or no
// principal (open mode). The dashboard shows a principal of one project
// only that project, and another project's rows are missing to it, as
// in the API.
func scopeOf(ctx context.Context) string {
	p, ok := access.From(ctx)
	if !ok || p.AllProjects() {
		return ""
	}
	return store.ProjectOrDefault(p.Project)
}

// sees reports whether a row or entry of project is in ctx's scope.
func sees(ctx context.Context, project string) bool {
	s := scopeOf(ctx)
	return s == "" || store.ProjectOrDefault(project) == s
}
