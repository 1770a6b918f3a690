// Package catalog keeps the compiled, in-memory view of the sources,
// destinations and connections held in the store: verifiers built, CEL
// filters and dedup keys compiled once per change rather than once per
// request. It owns no pipeline step; ingest reads its current [Snapshot].
package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/transform"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// DefaultRefresh is how often [Catalog.Run] reloads even without a
// notification, to pick up changes another instance made.
const DefaultRefresh = 30 * time.Second

// Source is a source ready to serve: its verifier built and its
// expressions compiled.
type Source struct {
	*store.Source
	// Provider is the row of the source's verify type.
	Provider *verify.Provider
	Verifier verify.Verifier
	// DedupKey yields the dedup key; nil means no deduplication.
	DedupKey *route.Program
	// DedupWindow is the effective window.
	DedupWindow time.Duration
	// EventType yields the provider's event type; nil when the scheme has
	// no known place for it.
	EventType *route.Program
	// MaxBodyBytes is the effective body limit.
	MaxBodyBytes int64
}

// Snapshot is one immutable version of the catalog.
type Snapshot struct {
	// Sources, Destinations: by full name ([store.FullName]).
	Sources map[string]*Source
	// Projects are the projects other than the default one that have
	// sources: the first segments of /e/{project}/{source}.
	Projects     map[string]bool
	Destinations map[string]*store.Destination
	Connections  []*store.Connection
	Router       *route.Router
	LoadedAt     time.Time
	// transforms are the compiled transformations, by connection id.
	transforms map[string]*compiledTransform
	// connByID are the Connections by id.
	connByID map[string]*store.Connection
}

// Connection returns the connection id of this snapshot, or nil when it
// has none of that id (or one that does not compile).
func (s *Snapshot) Connection(id string) *store.Connection { return s.connByID[id] }

// Deliveries returns the deliveries that in makes under this snapshot: one
// per connection of in's source whose filter passes and whose destination
// exists, in connection order, with Destination and ConnectionID set and
// the rest for the store to fill. Ingest and replay both fan out through
// it, so an event and its replay go to the same places. It returns nil
// when nothing matches.
func (s *Snapshot) Deliveries(in *route.Input) []*store.Delivery {
	var out []*store.Delivery
	for _, conn := range s.Router.Match(in) {
		if _, ok := s.Destinations[conn.Destination]; !ok {
			continue
		}
		out = append(out, &store.Delivery{Destination: conn.Destination, ConnectionID: conn.ID})
	}
	return out
}

// Options tunes a Catalog.
type Options struct {
	// Logger receives reload errors. If nil, they are discarded.
	Logger *slog.Logger
	// Refresh is the periodic reload interval. If zero, [DefaultRefresh].
	Refresh time.Duration
	// Verify tunes the verifiers built. If nil, their defaults.
	Verify *verify.Options
	// Transform bounds the runs of the connections' transformations. If
	// nil, the defaults of package transform.
	Transform *transform.Options
}

// Store is what a [Catalog] reads: the catalog's rows and the
// notifications that say they changed.
type Store interface {
	store.Catalog
	store.Notifier
}

// Catalog holds the current snapshot and reloads it when the store says the
// catalog changed. It is safe for concurrent use.
type Catalog struct {
	store    Store
	compiler *route.Compiler
	log      *slog.Logger
	refresh  time.Duration
	verify   *verify.Options
	tfOpts   *transform.Options
	cur      atomic.Pointer[Snapshot]
}

// New returns a catalog with an empty snapshot; call Load before serving.
func New(s Store, c *route.Compiler, opts *Options) *Catalog {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	cat := &Catalog{store: s, compiler: c, log: o.Logger, refresh: o.Refresh, verify: o.Verify, tfOpts: o.Transform}
	r, _ := route.NewRouter(c, nil)
	cat.cur.Store(&Snapshot{Sources: map[string]*Source{}, Destinations: map[string]*store.Destination{}, Router: r})
	return cat
}

// Current returns the current snapshot. Never nil.
func (c *Catalog) Current() *Snapshot { return c.cur.Load() }

// Compiler returns the CEL compiler the catalog uses.
func (c *Catalog) Compiler() *route.Compiler { return c.compiler }

// Load reads the catalog from the store and swaps it in. A source or
// connection that does not compile is left out and reported in the
// returned error, while the rest is served.
func (c *Catalog) Load(ctx context.Context) error {
	srcs, err := c.store.SourceList(ctx)
	if err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	dsts, err := c.store.DestinationList(ctx)
	if err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	conns, err := c.store.ConnectionList(ctx)
	if err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	snap := &Snapshot{Sources: map[string]*Source{}, Projects: map[string]bool{}, Destinations: map[string]*store.Destination{}, LoadedAt: time.Now()}
	var errs []error
	for _, s := range srcs {
		cs, err := CompileSource(c.compiler, s, c.verify)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		snap.Sources[s.Name] = cs
		if p := store.ProjectOf(s.Name); p != store.DefaultProject {
			snap.Projects[p] = true
		}
	}
	for _, d := range dsts {
		snap.Destinations[d.Name] = d
	}
	var good []*store.Connection
	for _, conn := range conns {
		if _, err := route.NewRouter(c.compiler, []*store.Connection{conn}); err != nil {
			errs = append(errs, err)
			continue
		}
		good = append(good, conn)
	}
	snap.Connections = good
	snap.connByID = make(map[string]*store.Connection, len(good))
	for _, conn := range good {
		snap.connByID[conn.ID] = conn
	}
	snap.transforms = c.compileTransforms(good)
	snap.Router, err = route.NewRouter(c.compiler, good)
	if err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	c.cur.Store(snap)
	if len(errs) > 0 {
		return fmt.Errorf("load catalog: %w", errors.Join(errs...))
	}
	return nil
}

// Run reloads on every catalog notification and every Refresh, until ctx
// ends. It returns nil on a clean stop.
func (c *Catalog) Run(ctx context.Context) error {
	notes := c.store.Subscribe(ctx)
	ticker := time.NewTicker(c.refresh)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case n, ok := <-notes:
			if !ok {
				return nil
			}
			if n.Kind != store.NotifyCatalogChanged {
				continue
			}
		case <-ticker.C:
		}
		if err := c.Load(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("reload catalog", "err", err)
		}
	}
}

// genericEventType is tried for schemes without a known place.
const genericEventType = `has(body.type) ? body.type : ""`

// CompileSource builds a source's verifier (with opts, which may be nil)
// and compiles its expressions; the dedup key and event type default to
// those of the source's provider row. The error names the source and the
// field at fault.
func CompileSource(c *route.Compiler, s *store.Source, opts *verify.Options) (*Source, error) {
	row, err := verify.Lookup(s.Verify.Type)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", s.Name, err)
	}
	v, err := verify.New(s.Verify, opts)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", s.Name, err)
	}
	cs := &Source{Source: s, Provider: row, Verifier: v, DedupWindow: s.Dedup.Window.D(), MaxBodyBytes: s.MaxBodyBytes}
	if cs.DedupWindow <= 0 {
		cs.DedupWindow = store.DefaultDedupWindow
	}
	if cs.MaxBodyBytes <= 0 {
		cs.MaxBodyBytes = store.DefaultMaxBodyBytes
	}
	keyExpr := s.Dedup.Key
	if keyExpr == "" {
		keyExpr = row.DedupKey
	}
	if keyExpr != "" && !s.Dedup.Disabled {
		if cs.DedupKey, err = c.Compile(keyExpr); err != nil {
			return nil, fmt.Errorf("source %s: dedup.key: %w", s.Name, err)
		}
	}
	typeExpr := row.EventType
	if typeExpr == "" {
		typeExpr = genericEventType
	}
	if cs.EventType, err = c.Compile(typeExpr); err != nil {
		return nil, fmt.Errorf("source %s: event type: %w", s.Name, err)
	}
	return cs, nil
}
