package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// TestServeRefusesEmptyDatabase: `parley serve` on a zero-byte parley.db
// exits 1 saying to restore it, instead of starting a fresh deployment
// (new ledger key, no parties, every token 401).
func TestServeRefusesEmptyDatabase(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, sqlite.FileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(parleyBin(t), "serve", "--data", data, "--listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 || !strings.Contains(string(out), "empty (0 bytes)") || !strings.Contains(string(out), "backup") {
		t.Fatalf("serve on an empty parley.db: exit %d, %v:\n%s", code, err, out)
	}
	if fi, _ := os.Stat(filepath.Join(data, sqlite.FileName)); fi.Size() != 0 {
		t.Fatalf("serve wrote %d bytes into the empty file it refused", fi.Size())
	}
}

// TestDamagedDatabaseSeenWhileServing: a server started on a damaged
// database without the integrity check (--skip-integrity-check) answers
// the reads that hit damage 500, and from then on fails /readyz and
// refuses writes with 503, saying the database needs restoring.
func TestDamagedDatabaseSeenWhileServing(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s, stop := startOn(t, data)
	p, token, err := s.Srv.Parties.Create(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	coll, err := s.Srv.Ex.CreateCollection(ctx, "feed", "", []string{p.ID}, []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(s.URL+"/taxii2/", client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := c.AddObjects(ctx, exchange.OperatorRoot, coll.ID, Indicators(i*300, 300)); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	// Move everything into parley.db, so the damage below hits the objects
	// and not a copy the WAL still holds.
	db, err := sqlite.Open(ctx, data, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.TruncateWAL(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	path := filepath.Join(data, sqlite.FileName)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Damage the pages that hold the objects themselves, wherever the
	// schema of the day puts them: a fixed offset from the end of the file
	// misses them as soon as another table grows.
	raw, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() > 0 {
		t.Fatalf("the stopped server left %d bytes of WAL; the damage would miss what it holds", wal.Size())
	}
	const pageSize = 4096
	var holding []int64
	for pg := int64(1); (pg+1)*pageSize <= int64(len(raw)); pg++ {
		if bytes.Contains(raw[pg*pageSize:(pg+1)*pageSize], []byte(`"pattern"`)) {
			holding = append(holding, pg)
		}
	}
	if len(holding) < 10 {
		t.Fatalf("only %d pages of parley.db hold indicators; cannot damage the collection", len(holding))
	}
	junk := bytes.Repeat([]byte{0xA5}, pageSize)
	for _, pg := range holding[len(holding)/3 : len(holding)/3+len(holding)/3] {
		if _, err := f.WriteAt(junk, pg*pageSize); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	s, _ = startOn(t, data)
	if c, err = client.New(s.URL+"/taxii2/", client.WithToken(token)); err != nil {
		t.Fatal(err)
	}
	get := func(u string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if status, body := get(s.URL + "/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz before any damage was read: %d %s", status, body)
	}
	objects := s.URL + "/taxii2/" + exchange.OperatorRoot + "/collections/" + coll.ID + "/objects/"
	failed := false
	for _, q := range []string{"?limit=1000", "?limit=1000&added_after=" + time.Unix(0, 0).UTC().Format(time.RFC3339), "?match[id]=indicator--00000000-0000-4000-8000-000000002999"} {
		if status, _ := get(objects + q); status == http.StatusInternalServerError {
			failed = true
		}
	}
	for next := ""; !failed; {
		page, err := c.GetObjects(ctx, exchange.OperatorRoot, coll.ID, client.Filter{Limit: 200, Next: next})
		if err != nil {
			failed = true
			break
		}
		if !page.More {
			t.Fatal("every object of the damaged collection was read back; the damage missed it")
		}
		next = page.Next
	}
	status, body := get(s.URL + "/readyz")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "damaged") || !strings.Contains(body, "backup") {
		t.Fatalf("/readyz after a read hit damage: %d %q; want 503 saying the database is damaged", status, body)
	}
	_, err = c.AddObjects(ctx, exchange.OperatorRoot, coll.ID, Indicators(90_000, 1))
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a write after damage was seen: %v; want 503", err)
	}
}
