package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/postgres"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
)

// addStorageFlags adds the flags that say which database a maintenance
// command (migrate, backup) works on: the same --config and --db as serve,
// with MAILROOM_* applied in between.
func addStorageFlags(cmd *cobra.Command, f *serveFlags) {
	cmd.Flags().StringVarP(&f.configPath, "config", "c", "", "YAML config file whose storage to use (default: embedded default config)")
	cmd.Flags().StringVar(&f.db, "db", "", "storage DSN: sqlite://PATH or postgres://... (overrides the config)")
}

// configOf returns the config serve would run with these flags, for the
// commands that act beside it (migrate, backup, healthcheck).
func configOf(f serveFlags) (*config.Config, error) {
	compiler, err := route.NewCompiler()
	if err != nil {
		return nil, err
	}
	return loadConfig(f, compiler)
}

// storageOf returns the storage DSN serve would use with these flags.
func storageOf(f serveFlags) (string, error) {
	cfg, err := configOf(f)
	if err != nil {
		return "", err
	}
	return cfg.Storage, nil
}

func newMigrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Show or apply the database schema migrations",
		Long: `Show or apply the database schema migrations.

serve applies pending migrations itself when it starts (unless started with
--migrate=false), so "migrate up" is only needed to upgrade the schema as a
separate step, e.g. before rolling out a new release to several instances.
A database migrated by a newer mailroom is refused by every command.`,
	}
	var f serveFlags
	status := &cobra.Command{
		Use:   "status",
		Short: "List the migrations this binary knows and which the database has applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, err := storageOf(f)
			if err != nil {
				return err
			}
			st, err := schemaStatus(cmd.Context(), dsn)
			if err != nil {
				return err
			}
			return printSchemaStatus(cmd.OutOrStdout(), st)
		},
	}
	addStorageFlags(status, &f)
	up := &cobra.Command{
		Use:   "up",
		Short: "Apply the pending migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, err := storageOf(f)
			if err != nil {
				return err
			}
			before, err := schemaStatus(cmd.Context(), dsn)
			if err != nil {
				return err
			}
			if err := before.Check(); err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), dsn, slog.New(slog.DiscardHandler), f)
			if err != nil {
				return fmt.Errorf("open storage: %w", err)
			}
			if err := st.Close(); err != nil {
				return fmt.Errorf("close storage: %w", err)
			}
			after, err := schemaStatus(cmd.Context(), dsn)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "applied %d migration(s): schema version %d -> %d\n",
				len(before.Pending()), before.Current(), after.Current())
			return nil
		},
	}
	addStorageFlags(up, &f)
	up.Flags().BoolVar(&f.createDirs, "create-dirs", false, "create the SQLite file's missing parent directories")
	cmd.AddCommand(status, up)
	return cmd
}

// schemaStatus asks the driver the DSN names, without migrating.
func schemaStatus(ctx context.Context, dsn string) (*store.SchemaStatus, error) {
	driver, target, err := config.ParseStorage(dsn)
	if err != nil {
		return nil, err
	}
	switch driver {
	case "sqlite":
		return sqlite.Status(ctx, target)
	case "postgres":
		return postgres.Status(ctx, target)
	default:
		return nil, fmt.Errorf("storage %q: driver %s is not available in this build", dsn, driver)
	}
}

// printSchemaStatus writes one line per migration, then a summary.
func printSchemaStatus(w io.Writer, st *store.SchemaStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tMIGRATION\tAPPLIED")
	for _, m := range st.Known {
		applied := "pending"
		if at, ok := st.Applied[m.Version]; ok {
			applied = at.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, m.Name, applied)
	}
	for v, at := range st.Applied {
		if v > st.Latest() {
			fmt.Fprintf(tw, "%d\t(unknown to this binary)\t%s\n", v, at.Format(time.RFC3339))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case st.Check() != nil:
		fmt.Fprintf(w, "\nschema version %d: NEWER than this binary (%d); %v\n", st.Current(), st.Latest(), st.Check())
	case len(st.Pending()) > 0:
		fmt.Fprintf(w, "\nschema version %d of %d: %d pending (applied by `mailroom migrate up`, or by serve when it starts)\n",
			st.Current(), st.Latest(), len(st.Pending()))
	default:
		fmt.Fprintf(w, "\nschema version %d: up to date\n", st.Current())
	}
	return nil
}
