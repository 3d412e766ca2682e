package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/store/sqlite"
	"github.com/parley-cti/parley/internal/store/storecopy"
)

func init() {
	register(command{"backup", "consistent online backup of the database: backup --to FILE [--data DIR]", cmdBackup})
	register(command{"restore", "restore a backup into an empty data directory: restore --from FILE --data DIR", cmdRestore})
}

// cmdBackup writes a consistent copy of a running deployment's database.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup", stderr)
	loc := addDBFlags(fs)
	to := fs.String("to", "", "file to write the backup to (must not exist)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *to == "" {
		return fmt.Errorf("%w: backup --to FILE [--data DIR]", errUsage)
	}
	if isPostgres(*loc) {
		if !isPostgres(*to) {
			return fmt.Errorf("%w: a PostgreSQL deployment is backed up into another, empty PostgreSQL database: backup --db postgres://... --to postgres://...", errUsage)
		}
		return copyPostgres(ctx, *loc, *to, "backed up", stdout)
	}
	if isPostgres(*to) {
		return fmt.Errorf("%w: to move a SQLite deployment into PostgreSQL use parley copy --from sqlite:DIR --to postgres://...", errUsage)
	}
	dir := strings.TrimPrefix(*loc, "sqlite:")
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err != nil {
		return fmt.Errorf("no parley database in %s: %w", dir, err)
	}
	db, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		return explainOpen(err, *loc)
	}
	defer db.Close()
	if err := db.Backup(ctx, *to); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", db.Path(), *to)
	return nil
}

// cmdRestore puts a backup into an empty data directory.
func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("restore", stderr)
	loc := addDBFlags(fs)
	from := fs.String("from", "", "backup file written by parley backup")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *from == "" {
		return fmt.Errorf("%w: restore --from FILE --data DIR", errUsage)
	}
	if isPostgres(*loc) != isPostgres(*from) {
		return fmt.Errorf("%w: restore a backup file into a SQLite data directory (--data DIR), or a PostgreSQL backup database into an empty PostgreSQL database (--db postgres://...); to move SQLite into PostgreSQL, restore into a directory and run parley copy --from sqlite:DIR --to postgres://...", errUsage)
	}
	if isPostgres(*loc) {
		return copyPostgres(ctx, *from, *loc, "restored", stdout)
	}
	dir := strings.TrimPrefix(*loc, "sqlite:")
	if err := sqlite.Restore(ctx, *from, dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s; start parley serve --data %s\n", *from, dir, dir)
	return nil
}

// copyPostgres makes a logical copy of the PostgreSQL deployment at from in
// the empty database at to (migrated here if new), from one snapshot of from,
// which may keep serving.
func copyPostgres(ctx context.Context, from, to, verb string, stdout io.Writer) error {
	src, err := postgres.Open(ctx, from, postgres.Options{})
	if err != nil {
		return explainOpen(err, from)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, to, postgres.Options{Migrate: true})
	if err != nil {
		return explainOpen(err, to)
	}
	defer dst.Close()
	counts, err := storecopy.CopyPostgres(ctx, src, dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %d rows of %d tables (%d object versions, %d ledger entries) into %s\n", verb, counts.Total(), len(counts),
		counts["objects"], counts["ledger_entries"], redactURL(to))
	return nil
}

// redactURL drops the password from a database URL before it is printed.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the target database"
	}
	return u.Redacted()
}
