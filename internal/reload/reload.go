// Package reload applies the config file to a running mailroom. At start
// and at each reload (SIGHUP, POST /api/v1/reload) it makes the catalog
// entries the file owns exactly the file's, in one store transaction
// ([store.Store.CatalogSync]), and reports what is then active, by owner.
//
// A reload reads and validates the whole file first and refuses it, changing
// nothing, when it is invalid or when it changes a setting that is read only
// at start ([config.Config.CheckReload]). Only the catalog and log.level
// change on a reload. Requests and deliveries in flight are not touched:
// ingest and the dispatcher pick up the new catalog through the store's
// catalog notification, as they do for an API change; an attempt already
// sent completes with the destination settings it started with.
//
// It does not read files or signals itself: cmd/mailroom hands it a
// [Loader] and the signal channel.
package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/project"
	"github.com/mailroomhq/mailroom/internal/store"
)

// Outcomes of a reload, as given to [Options.OnReload].
const (
	OutcomeSuccess = "success"
	OutcomeError   = "error"
)

// ErrNoFile is the reason a reload is refused when mailroom runs without
// a config file, so there is nothing to read again.
var ErrNoFile = errors.New("mailroom was started without --config: there is no config file to reload")

// RefusedError is a reload refused for the file's sake (it is invalid,
// changes a setting read only at start, or there is no file), as opposed
// to storage failing. Nothing changed.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return e.Err.Error() }

// Unwrap returns the reason.
func (e *RefusedError) Unwrap() error { return e.Err }

// Loader reads the config file, applies the environment and flags exactly
// as at start, and validates the result; errors name file:line:field.
type Loader func() (*config.Config, error)

// Store is what the reloader needs from storage.
type Store interface {
	CatalogSync(ctx context.Context, p *store.CatalogSyncParams) (*store.CatalogSyncResult, error)
	SourceList(ctx context.Context) ([]*store.Source, error)
	DestinationList(ctx context.Context) ([]*store.Destination, error)
	ConnectionList(ctx context.Context) ([]*store.Connection, error)
}

// Catalog is the in-memory catalog that serves ingest on this instance.
type Catalog interface {
	Load(ctx context.Context) error
}

// Options tunes [New]. The zero value is ready to use.
type Options struct {
	// File is the config file's path, named in logs and in the last error
	// of the deliveries a removed destination leaves. Empty means mailroom
	// runs without a file: [Reloader.Reload] returns [ErrNoFile].
	File string
	// Logger receives the outcome of each sync. If nil, nothing is logged.
	Logger *slog.Logger
	// Level, if non-nil, is set to log.level of each config applied.
	Level *slog.LevelVar
	// OnReload, if non-nil, is called after each reload (not the sync at
	// start) with its outcome, [OutcomeSuccess] or [OutcomeError], and
	// when the config in force was applied.
	OnReload func(outcome string, applied time.Time)
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Reloader holds the config in force and applies new ones. It is safe for
// concurrent use; reloads run one at a time.
type Reloader struct {
	store   Store
	catalog Catalog
	load    Loader
	opts    Options
	log     *slog.Logger

	mu  sync.Mutex
	cur *config.Config
	// lastSuccess is when the config in force was applied.
	lastSuccess time.Time
}

// New returns a Reloader whose config in force is running, the one
// mailroom started with. Call [Reloader.Apply] before serving.
func New(s Store, cat Catalog, load Loader, running *config.Config, opts *Options) *Reloader {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reloader{store: s, catalog: cat, load: load, opts: o, log: log, cur: running}
}

// Counts are catalog entries by owner ([store.ManagedByConfig],
// [store.ManagedByAPI]).
type Counts map[string]int

// Active is what the catalog holds after a sync, by kind and owner.
type Active struct {
	Sources      Counts `json:"sources"`
	Destinations Counts `json:"destinations"`
	Connections  Counts `json:"connections"`
}

// Result says what one sync changed and what is active after it.
type Result struct {
	// File is the config file applied; empty for none.
	File string `json:"file,omitempty"`
	// Written, Adopted and Removed are as in [store.CatalogSyncResult].
	Written store.CatalogNames `json:"written"`
	Adopted store.CatalogNames `json:"adopted"`
	Removed store.CatalogNames `json:"removed"`
	// DeadDeliveries counts the pending deliveries of removed
	// destinations, now dead with the reason in their last error.
	DeadDeliveries int    `json:"dead_deliveries"`
	Active         Active `json:"active"`
	// AppliedAt is when the config in force was applied.
	AppliedAt time.Time `json:"applied_at"`
}

// Apply syncs the catalog of the config in force into the store: at
// start, before serving, so that an entry the file no longer declares is
// gone before the first request.
func (r *Reloader) Apply(ctx context.Context) (*Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, err := r.sync(ctx, r.cur)
	if err != nil {
		return nil, err
	}
	r.lastSuccess = r.opts.Now()
	res.AppliedAt = r.lastSuccess
	r.logResult("config applied", res)
	return res, nil
}

// LastSuccess returns when the config in force was applied (at start or
// by the last successful reload); zero before [Reloader.Apply].
func (r *Reloader) LastSuccess() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastSuccess
}

// Reload reads the file again and applies it whole, or changes nothing
// and returns why: a [*RefusedError] with every problem of an invalid file
// (file:line: field: reason) or each restart-only setting it changes, or
// the store's error.
// The outcome is logged and given to [Options.OnReload].
func (r *Reloader) Reload(ctx context.Context) (*Result, error) {
	res, err := r.reload(ctx)
	outcome := OutcomeSuccess
	if err != nil {
		outcome = OutcomeError
		r.log.Error("config reload refused; nothing changed", "file", r.opts.File, "err", err)
	} else {
		r.logResult("config reloaded", res)
	}
	if r.opts.OnReload != nil {
		r.opts.OnReload(outcome, r.LastSuccess())
	}
	return res, err
}

func (r *Reloader) reload(ctx context.Context) (*Result, error) {
	if r.opts.File == "" {
		return nil, &RefusedError{ErrNoFile}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := r.load()
	if err != nil {
		return nil, &RefusedError{err}
	}
	if err := next.CheckReload(r.cur); err != nil {
		return nil, &RefusedError{err}
	}
	res, err := r.sync(ctx, next)
	if err != nil {
		return nil, err
	}
	r.cur = next
	r.lastSuccess = r.opts.Now()
	res.AppliedAt = r.lastSuccess
	if r.opts.Level != nil {
		var level slog.Level
		if err := level.UnmarshalText([]byte(next.Log.Level)); err == nil {
			r.opts.Level.Set(level)
		}
	}
	return res, nil
}

// Run reloads at each value received from signals (SIGHUP) until ctx
// ends. A refused reload is logged and counted, never fatal.
func (r *Reloader) Run(ctx context.Context, signals <-chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-signals:
			_, _ = r.Reload(ctx) // logged and counted by Reload
		}
	}
}

// sync writes cfg's catalog and reloads this instance's in-memory catalog.
func (r *Reloader) sync(ctx context.Context, cfg *config.Config) (*Result, error) {
	p := &store.CatalogSyncParams{RemovedReason: "destination removed from the config file"}
	if r.opts.File != "" {
		p.RemovedReason += " " + r.opts.File
	}
	// The file names entries by short name and project; the store by
	// full name (store.FullName). The file was validated, so scoping
	// cannot fail here.
	for i := range cfg.Sources {
		s := cfg.Sources[i]
		if err := s.Scope(); err != nil {
			return nil, fmt.Errorf("sources[%d]: %w", i, err)
		}
		p.Sources = append(p.Sources, &s)
	}
	for i := range cfg.Destinations {
		d := cfg.Destinations[i]
		if err := d.Scope(); err != nil {
			return nil, fmt.Errorf("destinations[%d]: %w", i, err)
		}
		p.Destinations = append(p.Destinations, &d)
	}
	for i := range cfg.Connections {
		c := cfg.Connections[i]
		if err := c.Scope(); err != nil {
			return nil, fmt.Errorf("connections[%d]: %w", i, err)
		}
		p.Connections = append(p.Connections, &c)
	}
	if err := r.checkIngestPaths(ctx, p.Sources, cfg.Projects); err != nil {
		return nil, &RefusedError{err}
	}
	sr, err := r.store.CatalogSync(ctx, p)
	if err != nil {
		return nil, err
	}
	// The store notifies every instance of the change; loading here too
	// makes this one serve it before Reload returns.
	if err := r.catalog.Load(ctx); err != nil {
		r.log.Error("some catalog entries were left out", "err", err)
	}
	res := &Result{File: r.opts.File, Written: sr.Written, Adopted: sr.Adopted, Removed: sr.Removed, DeadDeliveries: sr.DeadDeliveries}
	if res.Active, err = r.active(ctx); err != nil {
		// The sync is done; only the report is short.
		r.log.Warn("config applied, but the active entries could not be counted", "err", err)
	}
	return res, nil
}

// checkIngestPaths checks the sources there will be after the sync (the
// file's, and those created through the API, which it keeps) with
// [store.CheckIngestPaths]: the API refuses a source that would share an
// ingest path, and so must the file.
func (r *Reloader) checkIngestPaths(ctx context.Context, file []*store.Source, declared []project.Config) error {
	stored, err := r.store.SourceList(ctx)
	if err != nil {
		return fmt.Errorf("list sources: %w", err)
	}
	var names []string
	for _, s := range file {
		names = append(names, s.Name)
	}
	for _, s := range stored {
		if s.ManagedBy != store.ManagedByConfig && !slices.Contains(names, s.Name) {
			names = append(names, s.Name)
		}
	}
	var projects []string
	for _, d := range declared {
		projects = append(projects, d.Name)
	}
	if err := store.CheckIngestPaths(names, projects); err != nil {
		return fmt.Errorf("sources: %w", err)
	}
	return nil
}

// active counts the stored catalog entries by kind and owner.
func (r *Reloader) active(ctx context.Context) (Active, error) {
	a := Active{Sources: Counts{}, Destinations: Counts{}, Connections: Counts{}}
	srcs, err := r.store.SourceList(ctx)
	if err != nil {
		return a, fmt.Errorf("count active sources: %w", err)
	}
	for _, s := range srcs {
		a.Sources[s.ManagedBy]++
	}
	dests, err := r.store.DestinationList(ctx)
	if err != nil {
		return a, fmt.Errorf("count active destinations: %w", err)
	}
	for _, d := range dests {
		a.Destinations[d.ManagedBy]++
	}
	conns, err := r.store.ConnectionList(ctx)
	if err != nil {
		return a, fmt.Errorf("count active connections: %w", err)
	}
	for _, c := range conns {
		a.Connections[c.ManagedBy]++
	}
	return a, nil
}

// logResult logs what a sync did and what is active, by owner.
func (r *Reloader) logResult(msg string, res *Result) {
	c, a := store.ManagedByConfig, store.ManagedByAPI
	attrs := []any{
		"file", res.File,
		"sources_config", res.Active.Sources[c], "sources_api", res.Active.Sources[a],
		"destinations_config", res.Active.Destinations[c], "destinations_api", res.Active.Destinations[a],
		"connections_config", res.Active.Connections[c], "connections_api", res.Active.Connections[a],
	}
	if n := res.Written.Len(); n > 0 {
		attrs = append(attrs, "written", n)
	}
	for _, x := range []struct {
		what  string
		names store.CatalogNames
	}{{"adopted", res.Adopted}, {"removed", res.Removed}} {
		if len(x.names.Sources) > 0 {
			attrs = append(attrs, x.what+"_sources", x.names.Sources)
		}
		if len(x.names.Destinations) > 0 {
			attrs = append(attrs, x.what+"_destinations", x.names.Destinations)
		}
		if len(x.names.Connections) > 0 {
			attrs = append(attrs, x.what+"_connections", x.names.Connections)
		}
	}
	if res.DeadDeliveries > 0 {
		attrs = append(attrs, "dead_deliveries", res.DeadDeliveries)
		r.log.Warn(msg+": pending deliveries of removed destinations are now dead (retry them once the destination is back)", attrs...)
		return
	}
	r.log.Info(msg, attrs...)
}
