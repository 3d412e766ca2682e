package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/store/sqlite"
	"github.com/parley-cti/parley/internal/store/storecopy"
	"github.com/parley-cti/parley/internal/taxii"
)

func init() {
	register(command{"copy", "copy a deployment into an empty database: copy --from sqlite:DIR --to postgres://...", cmdCopy})
}

// addDBFlags registers --data and --db on fs, both naming the database an
// operator command works on, into one string: a SQLite data directory, or a
// postgres:// URL (or sqlite:DIR) given with --db. The later flag wins;
// PARLEY_DB, when set, is the default over PARLEY_DATA.
func addDBFlags(fs *flag.FlagSet) *string {
	loc := env("db", "")
	if loc == "" {
		loc = env("data", "./parley-data")
	}
	p := &loc
	fs.StringVar(p, "data", loc, "data directory of the embedded SQLite database (env PARLEY_DATA)")
	fs.Func("db", "database URL: postgres://... selects PostgreSQL; overrides --data (env PARLEY_DB)", func(v string) error {
		if !isPostgres(v) && !strings.HasPrefix(v, "sqlite:") {
			return errors.New("--db must be a postgres:// URL or sqlite:DIR")
		}
		*p = v
		return nil
	})
	return p
}

// openLocation opens what addDBFlags named. Operator commands migrate a
// SQLite database they open, as they always have; a PostgreSQL schema is
// upgraded only by `parley migrate`, never as a side effect.
func openLocation(ctx context.Context, loc string, migrate bool) (store.Store, error) {
	cfg := server.Config{Data: loc, Migrate: migrate}
	if isPostgres(loc) || strings.HasPrefix(loc, "sqlite:") {
		cfg = server.Config{DB: loc, Migrate: migrate && !isPostgres(loc)}
	}
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return nil, explainOpen(err, loc)
	}
	return st, nil
}

func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

func backendName(db string) string {
	if isPostgres(db) {
		return "postgres"
	}
	return "sqlite"
}

// serveMigrates decides whether serve applies migrations. SQLite has one
// process per data directory, so it migrates unless told not to. Several
// instances share one PostgreSQL: an upgraded instance must not change the
// schema under older ones still serving, so it migrates only when asked.
func serveMigrates(db string, migrate, noMigrate bool) bool {
	if isPostgres(db) {
		return migrate && !noMigrate
	}
	return !noMigrate
}

// explainOpen adds what the operator should do to the store's errors.
func explainOpen(err error, db string) error {
	switch {
	case errors.Is(err, store.ErrSchemaTooNew):
		return fmt.Errorf("%w; this parley is older than the database: upgrade parley", err)
	case errors.Is(err, store.ErrSchemaOutdated) && isPostgres(db):
		return fmt.Errorf("%w: run `parley migrate --db URL` once (or start one instance with --migrate), then start or roll the instances", err)
	case errors.Is(err, store.ErrUnavailable):
		return fmt.Errorf("%w; check that the database runs and the address and credentials are right", err)
	}
	return err
}

// versioned is what both backends report about their schema.
type versioned interface {
	SchemaVersion(ctx context.Context) (have, known int, err error)
}

// migrateDB applies pending migrations explicitly; a database migrated by
// a newer parley is refused, never touched.
func migrateDB(ctx context.Context, loc string, stdout io.Writer) error {
	cfg := server.Config{Data: loc, Migrate: true}
	if isPostgres(loc) || strings.HasPrefix(loc, "sqlite:") {
		cfg = server.Config{DB: loc, Migrate: true}
	}
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return explainOpen(err, loc)
	}
	defer st.Close()
	v, ok := st.(versioned)
	if !ok {
		return fmt.Errorf("store %T does not report its schema version", st)
	}
	have, known, err := v.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d (this parley knows %d)\n", have, known)
	return nil
}

// cmdCopy moves a SQLite deployment into an empty PostgreSQL database and
// verifies the result; the source is only read.
func cmdCopy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("copy", stderr)
	from := fs.String("from", "", "the source deployment: sqlite:DIR")
	to := fs.String("to", "", "the target: an empty PostgreSQL database, postgres://... (migrated here if new)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	dir, ok := strings.CutPrefix(*from, "sqlite:")
	if len(pos) != 0 || !ok || dir == "" || !isPostgres(*to) {
		return fmt.Errorf("%w: copy --from sqlite:DIR --to postgres://...", errUsage)
	}
	dst, err := postgres.Open(ctx, *to, postgres.Options{Migrate: true})
	if err != nil {
		return explainOpen(err, *to)
	}
	defer dst.Close()
	counts, err := storecopy.Copy(ctx, dir, dst)
	if err != nil {
		return err
	}
	src, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	checked, err := storecopy.Verify(ctx, src, dst, taxii.CursorKeySetting)
	if err != nil {
		return fmt.Errorf("copied, but the copy does not match the source: %w", err)
	}
	fmt.Fprintf(stdout, "copied %d parties, %d agreements, %d collections, %d object versions, %d ledger entries (%d tables, %d rows)\n",
		checked.Parties, checked.Agreements, checked.Collections, checked.Objects, checked.LedgerEntries, len(counts), counts.Total())
	if checked.CheckpointSize > 0 {
		fmt.Fprintf(stdout, "ledger verified at checkpoint %d on the copy\n", checked.CheckpointSize)
	}
	return nil
}
