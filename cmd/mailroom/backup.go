package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/config"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
)

func newBackupCommand() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "backup PATH",
		Short: "Write a consistent copy of the SQLite database to a new file, while serve runs",
		Long: `Write a consistent copy of the embedded SQLite database to the new file
PATH. It is safe while "mailroom serve" runs on the same database: the copy
is one snapshot (VACUUM INTO on a read-only connection) holding every
webhook acknowledged before the backup started, and the server keeps
ingesting meanwhile. Restore by stopping serve and putting the file in place
of the database, or start serve on the copy (--db sqlite://PATH).

PostgreSQL is backed up with its own tools (pg_dump, or your operator's
base backups and WAL archiving); see docs/deploy.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dsn, err := storageOf(f)
			if err != nil {
				return err
			}
			driver, target, err := config.ParseStorage(dsn)
			if err != nil {
				return err
			}
			if driver != "sqlite" {
				return fmt.Errorf("backup copies the embedded SQLite database; storage is %s: use pg_dump or your PostgreSQL tooling (docs/deploy.md)", driver)
			}
			start := time.Now()
			if err := sqlite.Backup(cmd.Context(), target, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backed up %s to %s in %s\n", target, args[0], time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	addStorageFlags(cmd, &f)
	return cmd
}
