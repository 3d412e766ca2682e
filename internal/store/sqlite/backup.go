package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrBackupExists: the backup's or the restore's target file exists; a
// backup never overwrites one.
var ErrBackupExists = errors.New("sqlite: the target file exists")

// Backup writes a consistent copy of the whole database to path, which must
// not exist, while the database stays in use: VACUUM INTO reads one snapshot
// (a read transaction), so writers go on and the copy holds exactly the
// commits before it started, WAL included. The copy is a complete SQLite
// database, compacted, with its own pages synced.
func (db *DB) Backup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%w: %s", ErrBackupExists, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	// A connection of its own, not the read pool's: the pool is query_only,
	// which refuses VACUUM, and the writer must stay free for the server.
	conn, err := sql.Open(DriverName, dsn(db.path, false))
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `VACUUM INTO ?`, abs); err != nil {
		os.Remove(abs)
		return fmt.Errorf("sqlite: backup into %s: %w", path, mapErr(err))
	}
	return syncFile(abs)
}

// Restore puts a backup made by Backup into dir as its database, after
// checking it is an intact parley database this binary can read. dir must
// not hold a database already: restoring over live data is refused.
func Restore(ctx context.Context, from, dir string) error {
	target := filepath.Join(dir, FileName)
	for _, p := range []string{target, target + "-wal"} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%w: %s (restore into an empty data directory)", ErrBackupExists, p)
		}
	}
	// Check the backup where it is, read-only, before copying anything.
	if err := checkBackup(ctx, from); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	// A search index left in dir belongs to what was there before; the
	// restored database builds its own (searchdb.go).
	if err := removeSearchFiles(filepath.Join(dir, SearchFileName)); err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	tmp := target + ".restoring"
	if err := copyFile(from, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// checkBackup opens a backup file read-only and checks its integrity and
// that its schema is one this binary knows.
func checkBackup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	c, err := sql.Open(DriverName, "file:"+path+"?mode=ro&_pragma=query_only(1)")
	if err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	defer c.Close()
	var res string
	if err := c.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return fmt.Errorf("sqlite: restore: %s is not a SQLite database: %w", path, mapErr(err))
	}
	if res != "ok" {
		return fmt.Errorf("sqlite: restore: %s fails its integrity check: %s", path, res)
	}
	have, err := currentVersion(ctx, c)
	if err != nil {
		return fmt.Errorf("sqlite: restore: %s is not a parley database: %w", path, err)
	}
	if have == 0 || have > len(migrations) {
		return fmt.Errorf("sqlite: restore: %s has schema version %d; this parley knows 1 to %d", path, have, len(migrations))
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
