package multiinstance

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/postgres/pgtest"
)

// pgSchemaURL is an empty schema for one test (pgtest.Schema).
func pgSchemaURL(t testing.TB) string { t.Helper(); return pgtest.Schema(t, "parley_e2e_") }

// serveStore runs a server on an open store until the test ends and
// returns its base URL. It signs a checkpoint every 200 ms, so tests see
// several.
func serveStore(t testing.TB, st store.Store) (string, *server.Server) {
	t.Helper()
	return serveStoreEvery(t, st, 200*time.Millisecond)
}

// serveStoreEvery is serveStore signing a checkpoint every interval (0:
// the server's default).
func serveStoreEvery(t testing.TB, st store.Store, checkpoints time.Duration) (string, *server.Server) {
	t.Helper()
	return serveStoreLogged(t, st, checkpoints, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// serveStoreLogged is serveStoreEvery logging to logger.
func serveStoreLogged(t testing.TB, st store.Store, checkpoints time.Duration, logger *slog.Logger) (string, *server.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := server.Config{Listen: "127.0.0.1:0", Logger: logger, CheckpointInterval: checkpoints}
	srv, err := server.New(ctx, cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + ln.Addr().(*net.TCPAddr).String(), srv
}
