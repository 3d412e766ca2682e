package server_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// slowSpace is the embedded store whose storage check is still running
// when the server is told to stop: it returns only some time after its
// context ends, as a WAL truncation under load does.
type slowSpace struct {
	*sqlite.DB
	entered  chan struct{}
	finished atomic.Bool
}

func (s *slowSpace) Space(ctx context.Context) (store.Space, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	time.Sleep(200 * time.Millisecond)
	s.finished.Store(true)
	return store.Space{}, ctx.Err()
}

// TestServeWaitsForItsWorkers: Serve returns only once every background
// worker it started has returned, because its caller closes the store
// next. A worker still running then wrote through a closing store, and on
// SQLite left files in a data directory being removed (a test's TempDir
// cleanup failed with "directory not empty").
func TestServeWaitsForItsWorkers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := &slowSpace{DB: db, entered: make(chan struct{}, 1)}
	srv, err := server.New(ctx, server.Config{Data: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, st)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	select {
	case <-st.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the storage check never ran")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !st.finished.Load() {
		t.Fatal("Serve returned while its storage check was still running")
	}
}
