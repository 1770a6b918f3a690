package store

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migration is one versioned schema change that a driver embeds, read
// from a file named NNNN_what.sql.
type Migration struct {
	// Version is the file name's leading number; versions only grow.
	Version int
	// Name is the file name (0003_retention.sql).
	Name string
	// SQL is the file's content, run in one transaction.
	SQL string
}

// ReadMigrations returns the *.sql files in dir of fsys as migrations,
// sorted by version. A file whose name does not start with a number, or two
// files with one version, are an error.
func ReadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, name := range names {
		base := path.Base(name)
		num, _, _ := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", base)
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same version %d", other, base, version)
		}
		seen[version] = base
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", base, err)
		}
		ms = append(ms, Migration{Version: version, Name: base, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// SchemaStatus compares the migrations a database records as applied with
// the ones this binary embeds.
type SchemaStatus struct {
	// Applied maps each version recorded in the database to when it was
	// applied. Empty for a database mailroom has not migrated yet.
	Applied map[int]time.Time
	// Known are the binary's migrations, sorted by version.
	Known []Migration
}

// NewSchemaStatus reads the migrations in dir of fsys (see
// [ReadMigrations]) into a status with none applied yet, for a driver to
// fill Applied from its schema_migrations table.
func NewSchemaStatus(fsys fs.FS, dir string) (*SchemaStatus, error) {
	known, err := ReadMigrations(fsys, dir)
	if err != nil {
		return nil, err
	}
	return &SchemaStatus{Applied: map[int]time.Time{}, Known: known}, nil
}

// Current is the highest applied version, or 0.
func (s *SchemaStatus) Current() int {
	cur := 0
	for v := range s.Applied {
		cur = max(cur, v)
	}
	return cur
}

// Latest is the highest version the binary knows, or 0.
func (s *SchemaStatus) Latest() int {
	if len(s.Known) == 0 {
		return 0
	}
	return s.Known[len(s.Known)-1].Version
}

// Pending are the known migrations not applied yet, in order.
func (s *SchemaStatus) Pending() []Migration {
	var p []Migration
	for _, m := range s.Known {
		if _, ok := s.Applied[m.Version]; !ok {
			p = append(p, m)
		}
	}
	return p
}

// Check returns a [*SchemaTooNewError] when the database records a
// version this binary does not know (it was migrated by a newer mailroom),
// and nil otherwise.
func (s *SchemaStatus) Check() error {
	if cur, latest := s.Current(), s.Latest(); cur > latest {
		return &SchemaTooNewError{Database: cur, Binary: latest}
	}
	return nil
}

// SchemaTooNewError is returned by a driver's Open (and so by serve) when
// the database was migrated by a newer mailroom: this binary would not
// know its tables, so it refuses rather than read or write them wrongly.
type SchemaTooNewError struct {
	// Database is the highest schema version the database records.
	Database int
	// Binary is the highest version this binary embeds.
	Binary int
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema is at version %d but this mailroom knows versions up to %d: "+
		"it was upgraded by a newer mailroom; run that release (or a newer one), or restore a backup taken before the upgrade",
		e.Database, e.Binary)
}

// SchemaBehindError is returned by a driver's Open when migrations are
// pending and the caller asked it not to apply them.
type SchemaBehindError struct {
	// Database is the highest schema version the database records.
	Database int
	// Binary is the highest version this binary embeds.
	Binary int
}

func (e *SchemaBehindError) Error() string {
	return fmt.Sprintf("database schema is at version %d and this mailroom needs version %d: run `mailroom migrate up` first "+
		"(or start serve without --migrate=false)", e.Database, e.Binary)
}
