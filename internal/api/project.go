package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/mailroomhq/mailroom/internal/access"
	"github.com/mailroomhq/mailroom/internal/audit"
	"github.com/mailroomhq/mailroom/internal/project"
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

// scopeList narrows a list's parameters to r's scope: its project, and
// source and destination filters read as names in it. When a filter
// names what cannot be in the scope it answers the empty list itself; on
// a bad or foreign project parameter it answers 400 or 404. It returns
// false when it answered.
func (a *Server) scopeList(w http.ResponseWriter, r *http.Request, p *listParams) bool {
	sc, ok := a.scopeOrFail(w, r, "project not found")
	if !ok {
		return false
	}
	p.Project = sc.project
	for _, f := range []*string{&p.Source, &p.Destination} {
		if *f == "" {
			continue
		}
		full, ok := sc.qualify(*f)
		if !ok {
			writeJSON(w, http.StatusOK, list[struct{}]{Data: []struct{}{}})
			return false
		}
		*f = full
	}
	return true
}

// visible reports whether a row of project is in r's scope; when it is
// not (or the project parameter is bad) it answers 404 with notFound, as
// for a missing row, and returns false.
func (a *Server) visible(w http.ResponseWriter, r *http.Request, project, notFound string) bool {
	sc, ok := a.scopeOrFail(w, r, notFound)
	if !ok {
		return false
	}
	if !sc.hasProject(project) {
		writeError(w, http.StatusNotFound, notFound)
		return false
	}
	audit.Project(r.Context(), store.ProjectOrDefault(project))
	return true
}

// scopedEvent returns the event id if it exists and is in r's scope.
// Otherwise it answers as for a missing event (404 "event … not found",
// or the store's failure) and returns false: a row out of scope is not
// told apart from a missing one.
func (a *Server) scopedEvent(w http.ResponseWriter, r *http.Request, id string) (*store.Event, bool) {
	notFound := fmt.Sprintf("event %q not found", id)
	ev, err := a.store.EventGetByID(r.Context(), id)
	if err != nil {
		a.fail(w, r, err, notFound)
		return nil, false
	}
	if !a.visible(w, r, ev.Project, notFound) {
		return nil, false
	}
	return ev, true
}

// scopedDelivery is [Server.scopedEvent] for a delivery.
func (a *Server) scopedDelivery(w http.ResponseWriter, r *http.Request, id string) (*store.Delivery, bool) {
	notFound := fmt.Sprintf("delivery %q not found", id)
	d, err := a.store.DeliveryGetByID(r.Context(), id)
	if err != nil {
		a.fail(w, r, err, notFound)
		return nil, false
	}
	if !a.visible(w, r, d.Project, notFound) {
		return nil, false
	}
	return d, true
}

// checkIngestPath refuses a new source (full name) whose ingest path
// another source's could take, by [store.CheckIngestPaths] over the
// stored sources and the new one, with the declared projects and those
// of the catalog.
func (a *Server) checkIngestPath(ctx context.Context, full string) error {
	stored, err := a.store.SourceList(ctx)
	if err != nil {
		return err
	}
	names := []string{full}
	for _, s := range stored {
		if s.Name != full {
			names = append(names, s.Name)
		}
	}
	var projects []string
	for _, c := range a.projects.Declared() {
		projects = append(projects, c.Name)
	}
	for p := range a.catalog.Current().Projects {
		projects = append(projects, p)
	}
	if err := store.CheckIngestPaths(names, projects); err != nil {
		return badf("name: %v", err)
	}
	return nil
}

// checkDestinationLimit refuses a new destination in a project that has
// reached its max_destinations.
func (a *Server) checkDestinationLimit(ctx context.Context, proj string) error {
	c, _ := a.projects.Get(proj)
	if c.MaxDestinations == 0 {
		return nil
	}
	ds, err := a.store.DestinationList(ctx)
	if err != nil {
		return err
	}
	have := 0
	for _, d := range ds {
		if store.ProjectOf(d.Name) == c.Name {
			have++
		}
	}
	return a.projects.CheckNewDestination(c.Name, have)
}

// projectView is a project as GET /projects shows it: its limits (zero:
// none) and what it holds.
type projectView struct {
	project.Config
	// Declared reports whether the config file declares the project.
	Declared     bool `json:"declared"`
	Sources      int  `json:"sources"`
	Destinations int  `json:"destinations"`
	Connections  int  `json:"connections"`
}

// projectList answers GET /projects: the projects in the request's scope
// (the default one, the declared ones and those that hold entries for an
// admin of all; its own for a principal of one), with their limits and
// counts.
func (a *Server) projectList(w http.ResponseWriter, r *http.Request) {
	sc, ok := a.scopeOrFail(w, r, "project not found")
	if !ok {
		return
	}
	for key := range r.URL.Query() {
		if key != "project" {
			a.fail(w, r, badf("unknown parameter %q for projects (accepted: project)", key), "")
			return
		}
	}
	ctx := r.Context()
	views := map[string]*projectView{}
	view := func(name string) *projectView {
		if v := views[name]; v != nil {
			return v
		}
		c, declared := a.projects.Get(name)
		v := &projectView{Config: c, Declared: declared}
		views[name] = v
		return v
	}
	view(store.DefaultProject)
	for _, c := range a.projects.Declared() {
		view(c.Name)
	}
	srcs, err := a.store.SourceList(ctx)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	for _, s := range srcs {
		view(store.ProjectOf(s.Name)).Sources++
	}
	dsts, err := a.store.DestinationList(ctx)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	for _, d := range dsts {
		view(store.ProjectOf(d.Name)).Destinations++
	}
	conns, err := a.store.ConnectionList(ctx)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	for _, c := range conns {
		view(store.ProjectOf(c.ID)).Connections++
	}
	out := list[*projectView]{Data: []*projectView{}}
	for _, name := range slices.Sorted(maps.Keys(views)) {
		if sc.hasProject(name) {
			out.Data = append(out.Data, views[name])
		}
	}
	if !sc.all() && len(out.Data) == 0 {
		out.Data = append(out.Data, view(sc.project))
	}
	writeJSON(w, http.StatusOK, out)
}
