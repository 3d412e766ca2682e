package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/store/postgres/pgtest"
)

// pgSchema is an empty schema for one test on base (pgtest.SchemaOn).
func pgSchema(t *testing.T, base string) string {
	t.Helper()
	return pgtest.SchemaOn(t, base, "parley_backup_")
}

// TestBackupPostgresWhileServing: parley backup copies a PostgreSQL
// deployment that keeps taking writes into another database, from one
// snapshot (whole batches only, every batch acknowledged before); parley
// restore copies the backup into a new database, where a server serves it.
func TestBackupPostgresWhileServing(t *testing.T) {
	base := os.Getenv("PARLEY_TEST_POSTGRES")
	if base == "" {
		t.Skip("PARLEY_TEST_POSTGRES not set: the PostgreSQL backup runs only against a database")
	}
	ctx := context.Background()
	srcURL, backupURL, restoredURL := pgSchema(t, base), pgSchema(t, base), pgSchema(t, base)
	src, err := postgres.Open(ctx, srcURL, postgres.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	serve := func(st *postgres.DB) (*server.Server, string) {
		srv, err := server.New(ctx, server.Config{Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, st)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := srv.Listen()
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { srv.Serve(sctx, ln); close(done) }()
		t.Cleanup(func() { stop(); <-done })
		return srv, srv.URL(ln)
	}
	srv, baseURL := serve(src)
	p, token, err := srv.Parties.Create(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	coll, err := srv.Ex.CreateCollection(ctx, "feed", "", []string{p.ID}, []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	objects := "/taxii2/" + exchange.OperatorRoot + "/collections/" + coll.ID + "/objects/"
	const batch = 10
	post := func(k int) {
		var objs []string
		for i := range batch {
			objs = append(objs, indicatorJSON(k*batch+i))
		}
		req, _ := http.NewRequest("POST", baseURL+objects, strings.NewReader(`{"objects":[`+strings.Join(objs, ",")+`]}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			t.Errorf("POST: %d", res.StatusCode)
		}
	}
	for k := range 3 {
		post(k)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 3; ; k++ {
			select {
			case <-stop:
				return
			default:
				post(k)
			}
		}
	}()
	var out, errb lockedBuf
	code := run(ctx, []string{"backup", "--db", srcURL, "--to", backupURL}, &out, &errb)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errb.String())
	}
	if strings.Contains(out.String(), "password") {
		t.Errorf("backup printed a password: %s", out.String())
	}
	// The backup database is not empty any more: a second backup into it is refused.
	if code := run(ctx, []string{"backup", "--db", srcURL, "--to", backupURL}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "not empty") {
		t.Errorf("a backup into a non-empty database: exit %d, %q", code, errb.String())
	}
	errb.b.Reset()
	if code := run(ctx, []string{"restore", "--from", backupURL, "--db", restoredURL}, &out, &errb); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errb.String())
	}
	restored, err := postgres.Open(ctx, restoredURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	_, base2 := serve(restored)
	seen := map[string]bool{}
	req, _ := http.NewRequest("GET", base2+objects+"?limit=10000", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		More    bool
		Objects []struct{ ID string }
	}
	json.NewDecoder(res.Body).Decode(&env)
	res.Body.Close()
	if res.StatusCode != 200 || env.More {
		t.Fatalf("GET on the restored server: %d, more %v", res.StatusCode, env.More)
	}
	for _, o := range env.Objects {
		seen[o.ID] = true
	}
	if len(seen) < 3*batch || len(seen)%batch != 0 {
		t.Fatalf("the restored database holds %d objects: want the %d acknowledged before the backup and whole batches of %d", len(seen), 3*batch, batch)
	}
	for n := range len(seen) {
		var id struct{ ID string }
		json.Unmarshal([]byte(indicatorJSON(n)), &id)
		if !seen[id.ID] {
			t.Fatalf("object %d missing from the restored database, which holds %d", n, len(seen))
		}
	}
	t.Logf("PostgreSQL backup taken while writing held %d objects", len(seen))
}
