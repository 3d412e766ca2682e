package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/parley-cti/parley/internal/store/sqlite"
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
		return fmt.Errorf("%w: backup copies a SQLite deployment; for PostgreSQL use pg_dump (see docs/operations.md, Backup and restore)", errUsage)
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
	if isPostgres(*loc) {
		return fmt.Errorf("%w: restore fills a SQLite data directory; to move a backup into PostgreSQL, restore it into a directory and run parley copy --from sqlite:DIR --to postgres://...", errUsage)
	}
	dir := strings.TrimPrefix(*loc, "sqlite:")
	if err := sqlite.Restore(ctx, *from, dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s; start parley serve --data %s\n", *from, dir, dir)
	return nil
}
