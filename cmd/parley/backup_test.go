package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// testServer runs a real server on dir until the test ends.
func testServer(t *testing.T, dir string) (*server.Server, string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(ctx, server.Config{Data: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db)
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
	t.Cleanup(func() { stop(); <-done; db.Close() })
	return srv, srv.URL(ln)
}

func indicatorJSON(n int) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--%08x-0000-4000-8000-%012x","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.0.%d.%d']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`,
		n, n, n/250, n%250)
}

// TestBackupWhileServingAndRestore: parley backup copies a database the
// server keeps writing to; the copy holds every batch acknowledged before
// it started and no part of a batch (each is one transaction); restore puts
// it into an empty directory, where a new server serves it, and refuses a
// directory that holds a database.
func TestBackupWhileServingAndRestore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	srv, base := testServer(t, dir)
	p, token, err := srv.Parties.Create(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	coll, err := srv.Ex.CreateCollection(ctx, "feed", "", []string{p.ID}, []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	objects := "/taxii2/" + exchange.OperatorRoot + "/collections/" + coll.ID + "/objects/"
	const batch = 20
	post := func(k int) {
		var objs []string
		for i := range batch {
			objs = append(objs, indicatorJSON(k*batch+i))
		}
		req, _ := http.NewRequest("POST", base+objects, strings.NewReader(`{"objects":[`+strings.Join(objs, ",")+`]}`))
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
	for k := range 5 {
		post(k)
	}
	// Keep writing while the backup runs.
	var wg sync.WaitGroup
	stopWriting := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 5; ; k++ {
			select {
			case <-stopWriting:
				return
			default:
				post(k)
			}
		}
	}()
	backup := filepath.Join(t.TempDir(), "parley-backup.db")
	var out, errb lockedBuf
	code := run(ctx, []string{"backup", "--data", dir, "--to", backup}, &out, &errb)
	close(stopWriting)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errb.String())
	}
	// A second backup to the same file is refused.
	if code := run(ctx, []string{"backup", "--data", dir, "--to", backup}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "exists") {
		t.Errorf("backup over an existing file: exit %d, %q", code, errb.String())
	}

	restored := filepath.Join(t.TempDir(), "restored")
	errb.b.Reset()
	if code := run(ctx, []string{"restore", "--from", backup, "--data", restored}, &out, &errb); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errb.String())
	}
	errb.b.Reset()
	if code := run(ctx, []string{"restore", "--from", backup, "--data", restored}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "empty data directory") {
		t.Errorf("restore over a database: exit %d, %q", code, errb.String())
	}
	errb.b.Reset()
	if code := run(ctx, []string{"restore", "--from", filepath.Join(dir, "nothing.db"), "--data", t.TempDir()}, &out, &errb); code == 0 {
		t.Errorf("restore of a missing file succeeded")
	}

	_, base2 := testServer(t, restored)
	seen := map[string]bool{}
	next := ""
	for {
		u := base2 + objects + "?limit=1000"
		if next != "" {
			u += "&next=" + next
		}
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			More    bool
			Next    string
			Objects []struct{ ID string }
		}
		json.NewDecoder(res.Body).Decode(&env)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET on the restored server: %d (the token must work there too)", res.StatusCode)
		}
		for _, o := range env.Objects {
			seen[o.ID] = true
		}
		if !env.More {
			break
		}
		next = env.Next
	}
	if len(seen) < 5*batch || len(seen)%batch != 0 {
		t.Fatalf("the restored database holds %d objects: want the %d acknowledged before the backup and whole batches of %d", len(seen), 5*batch, batch)
	}
	for n := range len(seen) {
		var id struct{ ID string }
		json.Unmarshal([]byte(indicatorJSON(n)), &id)
		if !seen[id.ID] {
			t.Fatalf("object %d missing from the restored database, which holds %d", n, len(seen))
		}
	}
	t.Logf("backup taken while writing held %d objects (%d batches)", len(seen), len(seen)/batch)
}
