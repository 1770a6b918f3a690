package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// ReadSchemaStatus compares the migrations in dir of fsys (see
// [store.ReadMigrations]) with the versions the schema_migrations table,
// which must exist, records through q.
func ReadSchemaStatus(ctx context.Context, q Querier, fsys fs.FS, dir string) (*store.SchemaStatus, error) {
	st, err := store.NewSchemaStatus(fsys, dir)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var at int64
		if err := rows.Scan(&v, &at); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		st.Applied[v] = time.UnixMicro(at).UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return st, nil
}

// PendingMigrations returns the migrations in dir of fsys that the
// database has not applied, in order, after refusing a database migrated
// by a newer mailroom ([store.SchemaTooNewError]). With apply false,
// pending migrations are a [store.SchemaBehindError] instead.
func PendingMigrations(ctx context.Context, q Querier, fsys fs.FS, dir string, apply bool) ([]store.Migration, error) {
	st, err := ReadSchemaStatus(ctx, q, fsys, dir)
	if err != nil {
		return nil, err
	}
	if err := st.Check(); err != nil {
		return nil, err
	}
	pending := st.Pending()
	if len(pending) > 0 && !apply {
		return nil, &store.SchemaBehindError{Database: st.Current(), Binary: st.Latest()}
	}
	return pending, nil
}
