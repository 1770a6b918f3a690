package store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/mailroomhq/mailroom/internal/access"
)

// Projects. A project owns its sources, destinations and connections and
// everything that flows through them (requests, events, deliveries,
// attempts) and its tasks. A name is unique within its project: outside
// the default project, the name mailroom knows an entry by everywhere
// (storage, the ingest path /e/{name}, history rows, the dispatcher,
// logs) is its full name "project/name"; in the default project it is the
// short name alone, so a single-project setup reads as it always did.
// Names hold no '/', so a full name says its project unambiguously, and
// every row's project follows from the source or destination it names:
// [ProjectOf] is that one rule.

// DefaultProject is the project of entries that name none.
const DefaultProject = access.DefaultProject

// FullName returns the name an entry called name in project is known by:
// name itself in the default project (or an empty one), "project/name"
// otherwise.
func FullName(project, name string) string {
	if project == "" || project == DefaultProject {
		return name
	}
	return project + "/" + name
}

// SplitName returns the project and the short name of a full name.
func SplitName(full string) (project, name string) {
	if p, n, ok := strings.Cut(full, "/"); ok {
		return p, n
	}
	return DefaultProject, full
}

// ProjectOf returns the project of the entry (or connection id) full names.
func ProjectOf(full string) string {
	p, _ := SplitName(full)
	return p
}

// ShortName returns full without its project.
func ShortName(full string) string {
	_, n := SplitName(full)
	return n
}

// IngestPath returns the path a source of full name receives on:
// /e/{name}, or /e/{project}/{name} outside the default project.
func IngestPath(full string) string {
	project, name := SplitName(full)
	if project == DefaultProject {
		return "/e/" + url.PathEscape(name)
	}
	return "/e/" + url.PathEscape(project) + "/" + url.PathEscape(name)
}

// ProjectOrDefault returns project, or [DefaultProject] when it is empty.
func ProjectOrDefault(project string) string {
	if project == "" {
		return DefaultProject
	}
	return project
}

// CheckProject checks a project name: what a name may be ([CheckName]).
func CheckProject(project string) error {
	if project == "" {
		return errors.New("required")
	}
	if !nameRE.MatchString(project) {
		return fmt.Errorf("invalid project %q: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", project)
	}
	return nil
}

// Qualify returns the full name of name in project (empty: the default
// one), the form the config file and the API accept: name may be short,
// or full in that same project. A full name in another project is an
// error, so a caller of one project cannot name another's entries.
func Qualify(project, name string) (string, error) {
	project = ProjectOrDefault(project)
	if p, n, ok := strings.Cut(name, "/"); ok {
		if p != project {
			return "", fmt.Errorf("%q is in project %q, not %q", name, p, project)
		}
		name = n
	}
	return FullName(project, name), nil
}

// InProject reports whether the entry (or row) whose full name is full
// belongs to project. An empty project matches every project.
func InProject(full, project string) bool {
	return project == "" || ProjectOf(full) == project
}

// Scope fills an entry's Project from its full name, or qualifies its
// short name with the Project it names: after it, Name is the full name
// and Project its project. It is how the config file and the API bring an
// entry (short name, project) to its stored form.
func (s *Source) Scope() error {
	full, err := Qualify(s.Project, s.Name)
	if err != nil && s.Project == "" {
		full, err = s.Name, nil // a full name without a project names its project
	}
	if err != nil {
		return &FieldError{Field: "name", Err: err}
	}
	s.Name, s.Project = full, ProjectOf(full)
	return nil
}

// Scope does for a destination what [Source.Scope] does for a source.
func (d *Destination) Scope() error {
	full, err := Qualify(d.Project, d.Name)
	if err != nil && d.Project == "" {
		full, err = d.Name, nil
	}
	if err != nil {
		return &FieldError{Field: "name", Err: err}
	}
	d.Name, d.Project = full, ProjectOf(full)
	return nil
}

// Scope qualifies a connection's ends and id with its Project (or, when
// it names none, the project its source's full name says), so that every
// part of it is in one project; an end in another project is a
// [*FieldError].
func (c *Connection) Scope() error {
	project := c.Project
	if project == "" {
		project = ProjectOf(c.Source)
	}
	var p problems
	for _, f := range []struct {
		field string
		v     *string
	}{{"source", &c.Source}, {"destination", &c.Destination}, {"id", &c.ID}} {
		if *f.v == "" {
			continue
		}
		full, err := Qualify(project, *f.v)
		if err != nil {
			p.add(f.field, "%v", err)
			continue
		}
		*f.v = full
	}
	c.Project = ProjectOrDefault(project)
	return p.err()
}

// CheckIngestPaths checks that every source of sources (full names) has
// an ingest path of its own: /e/{a}/{b} is project a's source b, so a
// default-project source may not have the name of a project, whether the
// project is declared (projects) or only holds sources. It is the one rule
// the config file, a reload (with the API's sources it keeps) and the API
// (with the source it adds) apply.
func CheckIngestPaths(sources, projects []string) error {
	isProject := map[string]bool{}
	for _, p := range projects {
		isProject[p] = true
	}
	for _, s := range sources {
		if p := ProjectOf(s); p != DefaultProject {
			isProject[p] = true
		}
	}
	var errs []error
	for _, s := range sources {
		if ProjectOf(s) == DefaultProject && isProject[s] {
			errs = append(errs, IngestPathClash(s))
		}
	}
	return errors.Join(errs...)
}

// IngestPathClash is the error of the default project's source name,
// which is also the name of a project ([CheckIngestPaths]).
func IngestPathClash(name string) error {
	return fmt.Errorf("%q is the name of a project: /e/%s/{source} would be both the default project's source %q and that project's sources; rename that source first, or choose another project name", name, name, name)
}
