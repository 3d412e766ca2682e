package server

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// busyLog is an embedded store whose log is always past walLimit and whose
// writer commits a transaction at every look while busy is set.
type busyLog struct {
	*sqlite.DB
	busy      atomic.Bool
	commits   atomic.Int64
	looks     atomic.Int64
	truncates atomic.Int64
}

func (b *busyLog) CommitStats() store.CommitStats {
	if b.busy.Load() {
		b.commits.Add(1)
	}
	return store.CommitStats{Transactions: b.commits.Load()}
}

func (b *busyLog) Space(ctx context.Context) (store.Space, error) {
	b.looks.Add(1)
	return store.Space{DatabaseBytes: 1 << 30, WALBytes: 4 * walLimit, FreeBytes: 1 << 40}, nil
}

func (b *busyLog) TruncateWAL(ctx context.Context) error {
	b.truncates.Add(1)
	return nil
}

// TestStorageTruncatesBetweenBursts: the housekeeping truncates a grown log
// at start and once writes pause, never while they go on (each truncation
// held the writer for 0.1–2.8 s under load).
func TestStorageTruncatesBetweenBursts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := &busyLog{DB: db}
	srv, err := New(ctx, Config{Data: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, st)
	if err != nil {
		t.Fatal(err)
	}
	st.busy.Store(true)
	done := make(chan struct{})
	go func() { defer close(done); srv.maintainStorage(ctx, 10*time.Millisecond) }()
	waitLooks := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for st.looks.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("the housekeeping looked %d times in 30 s, want %d", st.looks.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitLooks(6)
	if n := st.truncates.Load(); n != 1 {
		t.Fatalf("%d truncations in 6 looks while writes went on, want only the one at start", n)
	}
	st.busy.Store(false)
	waitLooks(st.looks.Load() + 3)
	if n := st.truncates.Load(); n < 2 {
		t.Fatalf("%d truncations after writes paused, want another one", n)
	}
	cancel()
	<-done
}
