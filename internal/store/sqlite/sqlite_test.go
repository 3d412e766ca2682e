package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
	"github.com/parley-cti/parley/internal/store/storetest"
)

// openStore is a migrated store in a directory of the test's own, as
// each run of the store suite opens them.
func openStore(t *testing.T) store.Store {
	db, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestStore runs the suite with every STIX id hashing to one value and
// the small hash table merged into the large one every third new id
// (stixids.go): an id must then be told from the others by itself, in
// either table, and never get a second key. The store's other settings
// are the defaults, which every other package's tests also use; the real
// hash is in TestStoreMergingFingerprints. (Two runs of the suite, not
// three, each with its tests in parallel: under -race a run took over two
// minutes one test at a time, and with three the package passed go
// test's 10-minute timeout on a slower machine.)
func TestStore(t *testing.T) {
	t.Cleanup(sqlite.SetIDHashingForTest(true, 3)) // not defer: RunParallel
	storetest.RunParallel(t, openStore)
}

// TestStoreMergingFingerprints runs the suite with the writer's sets of
// known contents (fpfilter.go) merging their latest fingerprints into
// their sorted part every second one, so that content is found, and taken
// back, in either part; and with the writer's filter of stored ids
// (idfilter.go) in use from each store's first write on, in parts of 4,
// 8, 16 … ids, the id hashes merged every fifth new id: an id the filter
// skips the lookup of must be new, whatever the suite does. (One run of
// the suite for both: under -race each run takes minutes.)
func TestStoreMergingFingerprints(t *testing.T) {
	t.Cleanup(sqlite.SetFingerprintMergeForTest(2)) // not defer: RunParallel
	t.Cleanup(sqlite.SetIDFilterForTest(4, 5))
	storetest.RunParallel(t, openStore)
}

func TestRefusesUnmigratedAndNewerSchema(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := sqlite.Open(ctx, dir, sqlite.Options{}); !errors.Is(err, store.ErrSchemaOutdated) {
		t.Fatalf("open without migrate on an empty database: %v, want ErrSchemaOutdated", err)
	}
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	have, known, err := db.SchemaVersion(ctx)
	if err != nil || have != known {
		t.Fatalf("SchemaVersion = %d, %d, %v", have, known, err)
	}
	if err := sqlite.SetSchemaVersionForTest(ctx, db, known+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true}); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// TestOpenRefusesDamagedDatabase: an empty parley.db (with no -wal that
// could hold its content) is refused rather than turned into a fresh
// deployment, and a file with overwritten pages fails the integrity check;
// --skip-integrity-check (IntegrityCheck false) opens it anyway.
func TestOpenRefusesDamagedDatabase(t *testing.T) {
	ctx := context.Background()
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, sqlite.FileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, check := range []bool{true, false} {
		_, err := sqlite.Open(ctx, empty, sqlite.Options{Migrate: true, IntegrityCheck: check})
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "empty (0 bytes)") || !strings.Contains(err.Error(), "backup") {
			t.Fatalf("open of a zero-byte parley.db (integrity check %v): %v; want ErrCorrupt saying it is empty and to restore", check, err)
		}
	}

	dir := DamagedCopy(t)
	_, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true, IntegrityCheck: true})
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "integrity check") {
		t.Fatalf("open of a file with overwritten pages: %v; want ErrCorrupt from the integrity check", err)
	}
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatalf("open without the check: %v", err)
	}
	db.Close()
}

// DamagedCopy returns a data directory whose database holds a few
// thousand objects and then has pages near its end overwritten.
func DamagedCopy(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Parties().Create(ctx, store.Party{ID: "party--a", Name: "a", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.Collections().Create(ctx, store.Collection{ID: "c", APIRoot: "shared", Title: "c", CreatedAt: time.Now(), Readers: []string{"party--a"}, Writers: []string{"party--a"}}); err != nil {
		t.Fatal(err)
	}
	var objs []store.Object
	for i := range 3000 {
		objs = append(objs, store.Object{ID: fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i), Type: "indicator", SpecVersion: "2.1",
			Version: time.Unix(1, 0).UTC(), DateAdded: time.Unix(int64(i+2), 0).UTC(), Raw: []byte(fmt.Sprintf(`{"id":"%d","pad":"%0400d"}`, i, i))})
	}
	if _, err := db.Objects().Put(ctx, "c", objs); err != nil {
		t.Fatal(err)
	}
	db.Close()
	path := filepath.Join(dir, sqlite.FileName)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	junk := bytes.Repeat([]byte{0xA5}, 4096)
	for p := fi.Size()/4096 - 40; p < fi.Size()/4096-20; p++ {
		if _, err := f.WriteAt(junk, p*4096); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestTruncateWAL: the write-ahead log, which SQLite's automatic
// checkpoints never shrink, is folded into the database and truncated to
// nothing; Space measures both files and the free space beside them.
func TestTruncateWAL(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Collections().Create(ctx, store.Collection{ID: "c", APIRoot: "shared", Title: "c", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for b := range 20 {
		var objs []store.Object
		for i := range 200 {
			n := b*200 + i
			objs = append(objs, store.Object{ID: fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", n), Type: "indicator", SpecVersion: "2.1",
				Version: time.Unix(1, 0).UTC(), DateAdded: time.Unix(int64(n+2), 0).UTC(), Raw: []byte(fmt.Sprintf(`{"pad":"%01000d"}`, n))})
		}
		if _, err := db.Objects().Put(ctx, "c", objs); err != nil {
			t.Fatal(err)
		}
	}
	before, err := db.Space(ctx)
	if err != nil || before.WALBytes < 1<<20 || before.FreeBytes <= 0 {
		t.Fatalf("space after 4,000 objects: %+v, %v; want a WAL of more than 1 MiB and free space", before, err)
	}
	if err := db.TruncateWAL(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := db.Space(ctx)
	if err != nil || after.WALBytes != 0 || after.DatabaseBytes < 4_000_000 {
		t.Fatalf("after TruncateWAL: %+v, %v; want an empty WAL and the objects in the database", after, err)
	}
	page, err := db.Objects().Query(ctx, store.ObjectQuery{Collection: "c", Limit: 5000})
	if err != nil || len(page.Objects) != 4000 {
		t.Fatalf("objects after truncating: %d, %v", len(page.Objects), err)
	}
}
