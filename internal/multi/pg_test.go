package multi

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store"
)

// pgSchemaURL creates an empty PostgreSQL schema for one test, dropped when
// it ends, and returns a URL whose connections use it. It skips only when
// PARLEY_TEST_POSTGRES is unset, so CI that sets it makes the test
// mandatory.
func pgSchemaURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("PARLEY_TEST_POSTGRES")
	if base == "" {
		t.Skip("PARLEY_TEST_POSTGRES not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to PARLEY_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	crand.Read(b[:])
	schema := "parley_e2e_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("PARLEY_TEST_POSTGRES must be a postgres:// URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

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
	ctx, cancel := context.WithCancel(context.Background())
	cfg := server.Config{Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CheckpointInterval: checkpoints}
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
