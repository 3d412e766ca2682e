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
func (s *Server) maintainStorage(ctx context.Context, every time.Duration) {
	sp, ok := s.Store.(store.Spacer)
	if !ok {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	first := true
	for {
		if u, err := sp.Space(ctx); err == nil {
			if u.WALBytes > walLimit || (first && u.WALBytes > 0) {
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
