package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/auth"
	"github.com/mailroomhq/mailroom/internal/buildinfo"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/health"
	"github.com/mailroomhq/mailroom/internal/httpguard"
	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/logx"
	"github.com/mailroomhq/mailroom/internal/mcpauth"
	"github.com/mailroomhq/mailroom/internal/metrics"
	"github.com/mailroomhq/mailroom/internal/project"
	"github.com/mailroomhq/mailroom/internal/reload"
	"github.com/mailroomhq/mailroom/internal/retention"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/postgres"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/task"
	"github.com/mailroomhq/mailroom/internal/transform"
	"github.com/mailroomhq/mailroom/internal/verify"
	"github.com/mailroomhq/mailroom/internal/web"
)

// serveFlags are the command-line overrides of the config file.
type serveFlags struct {
	configPath string
	listen     string
	db         string
	// noMigrate refuses a database with pending schema migrations
	// instead of applying them at start (--migrate=false).
	noMigrate bool
	// createDirs creates a SQLite file's missing parent directories
	// (--create-dirs); without it a missing directory is refused.
	createDirs bool
	// started, if non-nil, is called once the listener is open, with its
	// address and the open store (used by `mailroom bench --embedded`).
	started func(addr string, st store.Store)
	// wrapStore, if non-nil, wraps the opened store before anything uses
	// it (`mailroom bench --backlog` times the dispatcher's claims).
	wrapStore func(store.Store) store.Store
}

func newServeCommand() *cobra.Command {
	var f serveFlags
	var migrate bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway: ingest, delivery, and the admin API on one listener",
		Long: `Run the gateway: ingest endpoints (POST /e/{source}), the delivery
dispatcher, the admin API (/api/v1) and health checks (/healthz, /readyz).

Without --config it starts on the embedded default: SQLite in ./mailroom.db,
listening on 127.0.0.1:8080, no sources yet (add them through the API).
MAILROOM_* environment variables override the file (every setting has one);
flags override both.

The sources, destinations and connections the file declares are its own:
those it no longer declares are removed at start. Those created through the
API are kept. SIGHUP (or POST /api/v1/reload) re-reads the file and applies
it whole or not at all; settings other than the catalog and log.level need
a restart.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.noMigrate = !migrate
			return runServe(cmd.Context(), f)
		},
	}
	cmd.Flags().StringVarP(&f.configPath, "config", "c", "", "YAML config file (default: embedded default config)")
	cmd.Flags().StringVar(&f.listen, "listen", "", "listen address, host:port (overrides the config)")
	cmd.Flags().StringVar(&f.db, "db", "", "storage DSN: sqlite://PATH or postgres://... (overrides the config)")
	cmd.Flags().BoolVar(&f.createDirs, "create-dirs", false, "create the SQLite file's missing parent directories (without it a missing directory is an error, so that a mistyped path does not start an empty database)")
	cmd.Flags().BoolVar(&migrate, "migrate", true, "apply pending schema migrations at start; with --migrate=false a database that is behind is refused (see mailroom migrate)")
	return cmd
}

// loadConfig reads the file (or the default), applies the environment and
// the flags, and validates the result.
func loadConfig(f serveFlags, compiler *route.Compiler) (*config.Config, error) {
	opts := &config.Options{
		CheckVerify: func(v verify.Config) error { _, err := verify.New(v, nil); return err },
		CheckExpr:   compiler.Check,
		CheckFilter: compiler.CheckFilter,
		CheckTransform: func(script string, b config.TransformationsConfig) error {
			_, err := transform.Compile(script, transformOptions(b))
			return err
		},
		CheckMCPOAuth: func(o config.MCPOAuthConfig) error {
			_, err := mcpauth.New(oauthOptions(o, nil))
			return err
		},
	}
	var cfg *config.Config
	if f.configPath == "" {
		cfg = config.Default()
	} else {
		var err error
		if cfg, err = config.Load(f.configPath, opts); err != nil {
			return nil, err
		}
	}
	if err := cfg.ApplyEnv(os.LookupEnv); err != nil {
		return nil, err
	}
	if f.listen != "" {
		cfg.Listen = f.listen
	}
	if f.db != "" {
		cfg.Storage = f.db
	}
	if err := cfg.Validate(opts); err != nil {
		return nil, err
	}
	return cfg, nil
}

// warnEvery is how often one warning or error line (same message, same
// source, destination, ...) may be written; the repeats in between are
// counted on the next one (see logx.RateLimit).
const warnEvery = time.Minute

// newLogger returns the logger cfg asks for. When level is non-nil it is
// set to cfg's level and the logger follows it, so that a reload can
// change the level. Repeated warnings and errors are rate-limited.
func newLogger(cfg *config.Config, level *slog.LevelVar) *slog.Logger {
	if level == nil {
		level = new(slog.LevelVar)
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		l = slog.LevelInfo
	}
	level.Set(l)
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, hopts)
	}
	return slog.New(logx.RateLimit(h, warnEvery, nil))
}

// openStore opens the driver the DSN names. Pending migrations are applied
// unless f.noMigrate is set, when they make it fail instead; a SQLite
// file's missing directory is created only with f.createDirs.
func openStore(ctx context.Context, dsn string, log *slog.Logger, f serveFlags) (store.Store, error) {
	driver, target, err := config.ParseStorage(dsn)
	if err != nil {
		return nil, err
	}
	noMigrate := f.noMigrate
	switch driver {
	case "sqlite":
		st, err := sqlite.Open(ctx, target, &sqlite.Options{Logger: log, NoMigrate: noMigrate, CreateDirs: f.createDirs})
		if errors.Is(err, sqlite.ErrNoDirectory) {
			return nil, fmt.Errorf("%w (check the path; to create the directory, start with --create-dirs)", err)
		}
		if err != nil {
			return nil, err
		}
		return st, nil
	case "postgres":
		return postgres.Open(ctx, target, &postgres.Options{Logger: log, NoMigrate: noMigrate})
	default:
		return nil, fmt.Errorf("storage %q: driver %s is not available in this build", dsn, driver)
	}
}

func isLoopback(addr string) bool { return httpguard.IsLoopback(addr) }

func runServe(ctx context.Context, f serveFlags) error {
	compiler, err := route.NewCompiler()
	if err != nil {
		return err
	}
	cfg, err := loadConfig(f, compiler)
	if err != nil {
		return err
	}
	// SIGHUP reloads the config; caught from here on, so that one sent
	// during start-up waits for the reloader instead of ending the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	level := new(slog.LevelVar)
	log := newLogger(cfg, level)
	source := "config file " + f.configPath
	if f.configPath == "" {
		source = "embedded default config (no --config given)"
	}
	build := buildinfo.Read()
	// What the catalog holds, by owner, is logged once the file is applied.
	log.Info("mailroom starting on "+source, "version", build.Version, "commit", build.Commit, "built", build.Date, "go", build.GoVersion,
		"listen", cfg.Listen, "storage", cfg.Storage)

	tp, flushTraces, err := newTracerProvider(ctx, os.Getenv)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := flushTraces(fctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()
	if tp != nil {
		log.Info("tracing on: exporting spans over OTLP/HTTP (OTEL_* environment)")
	}

	st, err := openStore(ctx, cfg.Storage, log, f)
	if err != nil {
		return fmt.Errorf("open storage: %w", err)
	}
	if f.wrapStore != nil {
		st = f.wrapStore(st)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close storage", "err", err)
		}
	}()
	projects := project.New(cfg.Projects)
	met := metrics.New(st, &metrics.Options{Logger: log})
	cat := catalog.New(st, compiler, &catalog.Options{Logger: log, Transform: transformOptions(cfg.Transformations)})
	reloader := reload.New(st, cat, func() (*config.Config, error) { return loadConfig(f, compiler) }, cfg,
		&reload.Options{File: f.configPath, Logger: log, Level: level, OnReload: met.ObserveConfigReload})
	applied, err := reloader.Apply(ctx)
	if err != nil {
		return fmt.Errorf("apply the config file's sources, destinations and connections: %w", err)
	}
	met.SetConfigApplied(applied.AppliedAt)

	guard, err := deliveryGuard(cfg, log)
	if err != nil {
		return err
	}
	alerts := newAlertMonitor(st, cfg, log)
	mux := http.NewServeMux()
	ingest.New(st, cat, &ingest.Options{Logger: log, OnRequest: met.ObserveIngest, OnDedupError: met.ObserveDedupError, TracerProvider: tp, RejectedBodyBytes: cfg.Ingest.RejectedBodyBytes, Projects: projects}).Register(mux)
	authn := newAuthenticator(st, cfg, log)
	opGuard := auth.NewGuard(authn, &auth.GuardOptions{Audit: st, Logger: log})
	mux.Handle("GET /metrics", metricsHandler(met.Handler(), opGuard, cfg.API.Token, cfg.Listen))
	closeDashboard := func() {}
	streamsCtx, endStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer endStreams()
	// Tasks complete and expire whether the MCP server is on or off.
	tasks := task.New(st, cat, &task.Options{Logger: log.With("component", "tasks"),
		OnComplete: func(t *store.Task) { met.ObserveTaskCompletion(t.UpdatedAt.Sub(t.CreatedAt)) }})
	if cfg.API.Token == "" && !isLoopback(cfg.Listen) {
		log.Warn("no api.token set and the listener is not loopback: the admin API and the dashboard are disabled")
		const why = "set api.token (or MAILROOM_API_TOKEN) to serve it on a non-loopback listener"
		api.RegisterDisabled(mux, why)
		web.RegisterDisabled(mux, why)
	} else {
		if cfg.API.Token == "" {
			log.Warn("no api.token set: the admin API is open to anyone who can reach " + cfg.Listen + " (loopback only)")
		}
		api.New(st, cat, &api.Options{Guard: opGuard, Logger: log, Alerts: alerts, Streams: streamsCtx, Reload: reloader.Reload, Tasks: tasks, Projects: projects}).Register(mux)
		dash := web.New(st, cat, &web.Options{Guard: opGuard, Logger: log})
		dash.Register(mux)
		closeDashboard = dash.Close
	}
	mcpSrv, err := mountMCP(mux, st, cat, tasks, cfg, authn, log, streamsCtx)
	if err != nil {
		return err
	}
	health.Register(mux, st, &health.Options{Build: build})

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           operatorGuard(cfg, log).Handler(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	srv.RegisterOnShutdown(endStreams) // long-lived MCP streams end on shutdown
	srv.RegisterOnShutdown(closeDashboard)
	log.Info("listening", "addr", ln.Addr().String())
	if f.started != nil {
		f.started(ln.Addr().String(), st)
	}

	grace := cfg.Shutdown.Grace.D()
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		return deliver.New(st, &deliver.Options{Logger: log, GracePeriod: grace, Guard: guard,
			Proxy: cfg.Delivery.Proxy, NoProxy: cfg.Delivery.NoProxy,
			OnAttempt: onAttempts(met.ObserveAttempt, alerts.ObserveAttempt), TracerProvider: tp,
			Transforms: func(conn string) (*transform.Program, error) { return cat.Current().Transform(conn) },
			Connection: func(id string) *store.Connection { return cat.Current().Connection(id) },
			OnCircuit: func(dest, transition string, c store.CircuitState) {
				met.ObserveCircuit(dest, transition, c)
				alerts.ObserveCircuit(dest, transition, c)
			}}).Run(gctx)
	})
	g.Go(func() error { return cat.Run(gctx) })
	g.Go(func() error { return reloader.Run(gctx, hup) })
	g.Go(func() error { return tasks.Run(gctx) })
	g.Go(func() error { return alerts.Run(gctx) })
	g.Go(func() error {
		return retention.New(st, &retention.Options{Retention: cfg.Retention.D(), AuditRetention: cfg.API.AuditRetention.D(), Projects: projects.Retentions(), Logger: log}).Run(gctx)
	})
	if mcpSrv != nil {
		g.Go(func() error { return mcpSrv.Run(gctx) })
	}
	g.Go(func() error {
		select {
		case <-ctx.Done():
			// A second signal now ends the process at once.
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			log.Info("shutting down", "grace", grace)
		case <-gctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		err := srv.Shutdown(sctx)
		cancelRun()
		if err != nil {
			return fmt.Errorf("shut down http: %w", err)
		}
		return nil
	})
	err = g.Wait()
	log.Info("stopped")
	return err
}

// transformOptions returns the bounds of the transformations section.
func transformOptions(c config.TransformationsConfig) *transform.Options {
	return &transform.Options{Timeout: c.Timeout.D(), MaxOutputBytes: c.MaxOutputBytes, MaxLogBytes: c.MaxLogBytes}
}
