package sqlite

import (
	"context"
	"os"
	"syscall"

	"github.com/parley-cti/parley/internal/store"
)

// Space reports the database file, its write-ahead log and the free space
// left on their filesystem. A missing -wal counts as 0 bytes.
func (db *DB) Space(ctx context.Context) (store.Space, error) {
	var sp store.Space
	if fi, err := os.Stat(db.path); err == nil {
		sp.DatabaseBytes = fi.Size()
	}
	if fi, err := os.Stat(db.path + "-wal"); err == nil {
		sp.WALBytes = fi.Size()
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(db.path, &fs); err != nil {
		return sp, err
	}
	sp.FreeBytes = int64(fs.Bavail) * int64(fs.Bsize)
	return sp, nil
}

// TruncateWAL copies every committed page of the write-ahead log into the
// database and truncates the log to zero bytes (PRAGMA
// wal_checkpoint(TRUNCATE)). SQLite's automatic checkpoints copy but never
// shrink the file, so a WAL that once grew large keeps its size, and after
// a disk-full episode it may hold the space the database needs. It waits
// for the writer connection, so no transaction of this process is cut;
// a reader of another process can keep it from finishing (it then
// truncates what it can and reports it).
func (db *DB) TruncateWAL(ctx context.Context) error {
	if err := db.guard.Check(ctx); err != nil {
		return err
	}
	var busy, logFrames, done int
	if err := db.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
		return mapErr(err)
	}
	if busy != 0 {
		return store.ErrUnavailable
	}
	return nil
}
