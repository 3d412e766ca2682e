package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// WAL housekeeping of an embedded database: SQLite's own checkpoints copy
// the write-ahead log into the database but never shrink its file, so a
// log that once grew (a burst of writes, a disk-full episode during which
// checkpoints could not run) kept its size for good, restarts included.
const (
	// walLimit is the WAL size above which the server truncates it.
	walLimit = 16 << 20
	// lowSpace is the free space under which the server warns.
	lowSpace = 256 << 20
)

// maintainStorage watches a store that manages its own files: at start and
// then every interval it truncates a WAL grown past walLimit, and warns
// while free space is low. Space and WAL size are also metrics.
//
// It truncates only between bursts of writes: when the store committed at
// most one write transaction a second since the last look. Truncating
// copies what is left of the log and waits for every reader in it, on the
// writer's connection, so each write meanwhile waited: under 64 clients
// the truncation of an 88 MB log took 106–584 ms, and up to 2.8 s on a
// loaded machine, every 30 s (docs/BENCHMARKS.md). While writes go on, the
// store bounds the file itself (SQLite's journal_size_limit cuts it back
// when the log starts over, internal/store/sqlite/checkpoint.go).
func (s *Server) maintainStorage(ctx context.Context, every time.Duration) {
	sp, ok := s.Store.(store.Spacer)
	if !ok {
		return
	}
	gc, _ := s.Store.(store.GroupCommitter)
	var commits int64
	if gc != nil {
		commits = gc.CommitStats().Transactions
	}
	t := time.NewTicker(every)
	defer t.Stop()
	first := true
	for {
		busy := false
		if gc != nil {
			n := gc.CommitStats().Transactions
			busy = float64(n-commits) > every.Seconds()
			commits = n
		}
		if u, err := sp.Space(ctx); err == nil {
			if (u.WALBytes > walLimit && !busy) || (first && u.WALBytes > 0) {
				if err := sp.TruncateWAL(ctx); err != nil {
					s.log.WarnContext(ctx, "could not truncate the write-ahead log", slog.Int64("wal_bytes", u.WALBytes), slog.Any("err", err))
				} else if u.WALBytes > walLimit {
					s.log.InfoContext(ctx, "write-ahead log checkpointed and truncated", slog.Int64("wal_bytes_before", u.WALBytes))
				}
			}
			if u.FreeBytes < lowSpace {
				s.log.WarnContext(ctx, "low disk space for the database", slog.Int64("free_bytes", u.FreeBytes),
					slog.Int64("database_bytes", u.DatabaseBytes), slog.Int64("wal_bytes", u.WALBytes))
			}
		}
		first = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
