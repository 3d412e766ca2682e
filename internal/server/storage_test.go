package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// TestStorageGauges: /metrics reports the embedded database's size, its
// write-ahead log's size and the free space beside them, so that an
// operator sees a disk filling before writes fail.
func TestStorageGauges(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, err := server.New(ctx, server.Config{Data: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, name := range []string{"parley_db_bytes", "parley_db_wal_bytes", "parley_db_free_bytes"} {
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("/metrics has no %s:\n%s", name, body)
		}
		if v, err := strconv.ParseFloat(m[1], 64); err != nil || v < 0 || (name != "parley_db_wal_bytes" && v == 0) {
			t.Fatalf("%s = %s", name, m[1])
		}
	}
}
