package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mailroomhq/mailroom/internal/audit"
	"github.com/mailroomhq/mailroom/internal/store"
)

// resource describes one catalog kind (sources, destinations, connections)
// to the generic CRUD handlers, which hold what the kinds share: decoding,
// path/body key agreement, 409 on a create that exists, 409 on a change to
// an entry the config file owns, name checks, the catalog lock and reload,
// and 201 with a Location on creation.
type resource[T any] struct {
	kind string // "source", in messages
	path string // "sources", in URLs
	key  string // "name" or "id": the path value and body field

	keyOf  func(*T) string
	setKey func(*T, string)
	// owner points at the entry's ManagedBy.
	owner func(*T) *string
	// checkKey checks the name or id of a new entry, as the config file
	// does ([store.CheckName], [store.CheckConnectionID]).
	checkKey func(string) error

	get    func(context.Context, string) (*T, error)
	list   func(context.Context) ([]*T, error)
	upsert func(context.Context, *T) error
	del    func(context.Context, string) error
	// view masks secrets for output; nil shows the stored value.
	view func(*T) *T
	// defaults completes a created resource (a connection's id).
	defaults func(*T)
	// prepare checks in and carries over what old keeps (masked secrets);
	// old is nil for a new resource. It also clears output-only fields.
	prepare func(ctx context.Context, in, old *T) error
	// scope puts an entry of a request body in the request's project:
	// its project set (or checked) and its names made full
	// ([store.Source.Scope]).
	scope func(in *T, sc scope) error
}

// notFound is the answer to a key that is missing, or in another project.
func (res *resource[T]) notFound(key string) string {
	return fmt.Sprintf("%s %q not found", res.kind, key)
}

// pathKey returns the full name the path's key means in the request's
// scope, or answers 404 (another project's entry is missing to this
// request) and returns false.
func (res *resource[T]) pathKey(a *Server, w http.ResponseWriter, r *http.Request) (string, scope, bool) {
	given := r.PathValue(res.key)
	sc, ok := a.scopeOrFail(w, r, res.notFound(given))
	if !ok {
		return "", sc, false
	}
	key, ok := sc.qualify(given)
	if !ok {
		writeError(w, http.StatusNotFound, res.notFound(given))
		return "", sc, false
	}
	audit.Target(r.Context(), key)
	audit.Project(r.Context(), store.ProjectOf(key))
	return key, sc, true
}

// scopeIn puts in, a request body, in the request's project.
func (res *resource[T]) scopeIn(in *T, sc scope) error {
	if err := res.scope(in, sc); err != nil {
		var bad *badRequest
		if errors.As(err, &bad) {
			return err
		}
		return invalid(err)
	}
	return nil
}

func (res *resource[T]) show(v *T) *T {
	if res.view == nil {
		return v
	}
	return res.view(v)
}

func (res *resource[T]) handleList(a *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sc, ok := a.scopeOrFail(w, r, "project not found")
		if !ok {
			return
		}
		vs, err := res.list(r.Context())
		if err != nil {
			a.fail(w, r, err, "")
			return
		}
		out := list[*T]{Data: make([]*T, 0, len(vs))}
		for _, v := range vs {
			if sc.has(res.keyOf(v)) {
				out.Data = append(out.Data, res.show(v))
			}
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (res *resource[T]) handleGet(a *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, _, ok := res.pathKey(a, w, r)
		if !ok {
			return
		}
		v, err := res.get(r.Context(), key)
		if err != nil {
			a.fail(w, r, err, res.notFound(r.PathValue(res.key)))
			return
		}
		writeJSON(w, http.StatusOK, res.show(v))
	}
}

func (res *resource[T]) handleCreate(a *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sc, ok := a.scopeOrFail(w, r, "project not found")
		if !ok {
			return
		}
		var in T
		if err := decode(w, r, &in, false); err != nil {
			a.fail(w, r, err, "")
			return
		}
		if err := res.scopeIn(&in, sc); err != nil {
			a.fail(w, r, err, "")
			return
		}
		if res.defaults != nil {
			res.defaults(&in)
		}
		res.write(a, w, r, &in, true)
	}
}

func (res *resource[T]) handlePut(a *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, sc, ok := res.pathKey(a, w, r)
		if !ok {
			return
		}
		var in T
		if err := decode(w, r, &in, false); err != nil {
			a.fail(w, r, err, "")
			return
		}
		if res.keyOf(&in) == "" {
			res.setKey(&in, key)
		}
		if err := res.scopeIn(&in, sc); err != nil {
			a.fail(w, r, err, "")
			return
		}
		if err := checkPathName(res.key, res.keyOf(&in), key); err != nil {
			a.fail(w, r, err, "")
			return
		}
		res.setKey(&in, key)
		res.write(a, w, r, &in, false)
	}
}

// write creates (create set: 409 if it exists) or upserts in.
func (res *resource[T]) write(a *Server, w http.ResponseWriter, r *http.Request, in *T, create bool) {
	ctx := r.Context()
	key := res.keyOf(in)
	a.catalogMu.Lock()
	defer a.catalogMu.Unlock()
	old, err := res.get(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		old = nil
	case err != nil:
		a.fail(w, r, err, "")
		return
	case *res.owner(old) == store.ManagedByConfig:
		res.refuseConfigOwned(w, key, "change")
		return
	case create:
		writeError(w, http.StatusConflict, fmt.Sprintf("%s %q already exists; PUT %s%s/%s replaces it", res.kind, key, Prefix, res.path, key))
		return
	}
	switch owner := res.owner(in); *owner {
	case "", store.ManagedByAPI:
		*owner = store.ManagedByAPI
	default:
		a.fail(w, r, badf("managed_by: %q cannot be set through the API; entries created here are %q, the config file declares the others", *owner, store.ManagedByAPI), "")
		return
	}
	if err := res.prepare(ctx, in, old); err != nil {
		a.fail(w, r, err, "")
		return
	}
	if old == nil {
		if err := res.checkKey(key); err != nil {
			a.fail(w, r, badf("%s: %v", res.key, err), "")
			return
		}
	}
	if old != nil {
		audit.Before(ctx, res.show(old))
	}
	audit.Target(ctx, key)
	audit.Project(ctx, store.ProjectOf(key))
	if err := res.upsert(ctx, in); err != nil {
		a.fail(w, r, err, "")
		return
	}
	a.reload(r)
	a.writeStored(w, r, old == nil, res.path+"/"+key, func(ctx context.Context) (any, error) {
		v, err := res.get(ctx, key)
		if err != nil {
			return nil, err
		}
		return res.show(v), nil
	})
}

func (res *resource[T]) handleDelete(a *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, _, ok := res.pathKey(a, w, r)
		if !ok {
			return
		}
		a.catalogMu.Lock()
		defer a.catalogMu.Unlock()
		old, err := res.get(r.Context(), key)
		if err != nil {
			a.fail(w, r, err, res.notFound(r.PathValue(res.key)))
			return
		}
		if *res.owner(old) == store.ManagedByConfig {
			res.refuseConfigOwned(w, key, "delete")
			return
		}
		audit.Before(r.Context(), res.show(old))
		if err := res.del(r.Context(), key); err != nil {
			a.fail(w, r, err, fmt.Sprintf("%s %q not found", res.kind, key))
			return
		}
		a.reload(r)
		w.WriteHeader(http.StatusNoContent)
	}
}

// refuseConfigOwned answers 409 to a change of an entry that the config
// file declares: the file would undo it at the next start or reload.
func (res *resource[T]) refuseConfigOwned(w http.ResponseWriter, key, verb string) {
	writeError(w, http.StatusConflict, fmt.Sprintf("%s %q is declared in the config file (managed_by %q): %s it there and reload (SIGHUP or POST %sreload); the API changes only entries it created",
		res.kind, key, store.ManagedByConfig, verb, Prefix))
}

// sourcesResource, destinationsResource and connectionsResource describe
// the three catalog kinds.
func (a *Server) sourcesResource() *resource[store.Source] {
	return &resource[store.Source]{
		kind: "source", path: "sources", key: "name",
		keyOf: func(s *store.Source) string { return s.Name }, setKey: func(s *store.Source, k string) { s.Name = k },
		owner: func(s *store.Source) *string { return &s.ManagedBy }, checkKey: store.CheckName,
		get: a.store.SourceGet, list: a.store.SourceList, upsert: a.store.SourceUpsert, del: a.store.SourceDelete,
		view: viewSource,
		scope: func(s *store.Source, sc scope) error {
			if err := sc.entryProject(&s.Project); err != nil {
				return err
			}
			return s.Scope()
		},
		prepare: func(ctx context.Context, in, old *store.Source) error {
			if err := restoreSourceSecrets(in, old); err != nil {
				return err
			}
			if old == nil {
				if err := a.checkIngestPath(ctx, in.Name); err != nil {
					return err
				}
			}
			if err := a.validateSource(in); err != nil {
				return err
			}
			in.CreatedAt, in.UpdatedAt = time.Time{}, time.Time{}
			return nil
		},
	}
}

func (a *Server) destinationsResource() *resource[store.Destination] {
	return &resource[store.Destination]{
		kind: "destination", path: "destinations", key: "name",
		keyOf: func(d *store.Destination) string { return d.Name }, setKey: func(d *store.Destination, k string) { d.Name = k },
		owner: func(d *store.Destination) *string { return &d.ManagedBy }, checkKey: store.CheckName,
		get: a.store.DestinationGet, list: a.store.DestinationList, upsert: a.store.DestinationUpsert, del: a.store.DestinationDelete,
		view: viewDestination,
		scope: func(d *store.Destination, sc scope) error {
			if err := sc.entryProject(&d.Project); err != nil {
				return err
			}
			return d.Scope()
		},
		prepare: func(ctx context.Context, in, old *store.Destination) error {
			if err := restoreDestinationSecrets(in, old); err != nil {
				return err
			}
			if old == nil {
				if err := a.checkDestinationLimit(ctx, in.Project); err != nil {
					return err
				}
			}
			if err := validateDestination(in); err != nil {
				return err
			}
			// Paused state is not written here: it has its own actions.
			in.Paused, in.PausedAt, in.PauseReason = false, time.Time{}, ""
			in.CreatedAt, in.UpdatedAt = time.Time{}, time.Time{}
			return nil
		},
	}
}

func (a *Server) connectionsResource() *resource[store.Connection] {
	return &resource[store.Connection]{
		kind: "connection", path: "connections", key: "id",
		keyOf: func(c *store.Connection) string { return c.ID }, setKey: func(c *store.Connection, k string) { c.ID = k },
		owner: func(c *store.Connection) *string { return &c.ManagedBy }, checkKey: store.CheckConnectionID,
		get: a.store.ConnectionGet, list: a.store.ConnectionList, del: a.store.ConnectionDelete,
		upsert: func(ctx context.Context, c *store.Connection) error {
			err := a.store.ConnectionUpsert(ctx, c)
			if errors.Is(err, store.ErrNotFound) { // an end was deleted between the check and the write
				return badf("source %q or destination %q does not exist", c.Source, c.Destination)
			}
			return err
		},
		scope: func(c *store.Connection, sc scope) error {
			if err := sc.entryProject(&c.Project); err != nil {
				return err
			}
			return c.Scope()
		},
		defaults: func(c *store.Connection) {
			if c.ID == "" && c.Source != "" && c.Destination != "" {
				c.ID = store.ConnectionID(c.Source, c.Destination)
			}
		},
		prepare: func(ctx context.Context, in, _ *store.Connection) error {
			if err := a.validateConnection(ctx, in); err != nil {
				return err
			}
			in.CreatedAt, in.UpdatedAt = time.Time{}, time.Time{}
			return nil
		},
	}
}
