package api

import (
	"net/http"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/store"
)

// Projects in the API. A request acts in the project of its principal
// ([access.From]; a request without one is [access.Anonymous]). A
// principal of one project sees and changes only that project: lists
// hold its rows only, and an entry or row of another project answers 404
// exactly as a missing one does, so nothing says it exists. An admin of
// every project sees them all, and narrows a request to one with the
// query parameter project=.

// scope is the project a request acts in.
type scope struct {
	// project is the one project of the request; empty means every
	// project (an admin of all projects who named none).
	project string
}

// principal returns whom r acts for.
func principal(r *http.Request) access.Principal {
	if p, ok := access.From(r.Context()); ok {
		return p
	}
	return access.Anonymous
}

// scopeOf returns the project r acts in. A principal of one project may
// name only its own with ?project=; naming another is answered as a
// missing resource would be (found false).
func scopeOf(r *http.Request) (sc scope, found bool, err error) {
	asked := r.URL.Query().Get("project")
	if asked != "" {
		if err := store.CheckProject(asked); err != nil {
			return scope{}, false, badf("parameter project: %v", err)
		}
	}
	p := principal(r)
	if p.AllProjects() {
		return scope{project: asked}, true, nil
	}
	own := store.ProjectOrDefault(p.Project)
	if asked != "" && asked != own {
		return scope{}, false, nil
	}
	return scope{project: own}, true, nil
}

// all reports whether the scope covers every project.
func (sc scope) all() bool { return sc.project == "" }

// has reports whether the entry or row of full name (or of project, for
// a row that carries it) is in the scope.
func (sc scope) has(full string) bool { return store.InProject(full, sc.project) }

// hasProject reports whether project is in the scope.
func (sc scope) hasProject(project string) bool {
	return sc.all() || store.ProjectOrDefault(project) == sc.project
}

// qualify returns the full name of name as the request means it: short
// names are in the request's project (a full name must be in it too);
// without a project (an admin of all) a name is taken as full. ok is
// false when name cannot be in the scope, which callers answer as not
// found.
func (sc scope) qualify(name string) (string, bool) {
	if sc.all() {
		return name, store.CheckName(name) == nil || store.CheckConnectionID(name) == nil
	}
	full, err := store.Qualify(sc.project, name)
	return full, err == nil
}

// entryProject sets *project, the project an entry in a request body
// names, to the request's when it names none, and checks that a
// principal of one project names only its own.
func (sc scope) entryProject(project *string) error {
	switch {
	case *project == "":
		*project = sc.project
	case sc.all():
		if err := store.CheckProject(*project); err != nil {
			return badf("project: %v", err)
		}
	case *project != sc.project:
		return badf("project: %q is not the project this request acts in (%q)", *project, sc.project)
	}
	return nil
}

// scopeOrFail returns r's scope, or answers 400 for a malformed project
// parameter or 404 (with notFound) for another project's, and returns
// false.
func (a *Server) scopeOrFail(w http.ResponseWriter, r *http.Request, notFound string) (scope, bool) {
	sc, found, err := scopeOf(r)
	if err != nil {
		a.fail(w, r, err, "")
		return sc, false
	}
	if !found {
		writeError(w, http.StatusNotFound, notFound)
		return sc, false
	}
	return sc, true
}
