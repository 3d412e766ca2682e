package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/postgres"
	"github.com/parley-cti/parley/internal/store/postgres/pgtest"
	"github.com/parley-cti/parley/internal/store/storetest"
)

// baseURL is the test database (pgtest.Base).
func baseURL(tb testing.TB) string { tb.Helper(); return pgtest.Base(tb) }

// freshSchema is an empty schema for one test (pgtest.Schema).
func freshSchema(tb testing.TB) string { tb.Helper(); return pgtest.Schema(tb, "parley_test_") }

func withSearchPath(tb testing.TB, base, schema string) string {
	tb.Helper()
	return pgtest.WithSearchPath(tb, base, schema)
}

func open(tb testing.TB, u string, opt postgres.Options) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), u, opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	baseURL(t) // skip here, on the parent: a skip inside the suite's subtests fails the parent
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, freshSchema(t), postgres.Options{Migrate: true})
	})
}

// TestStoreReadCommitted runs the suite with Update at READ COMMITTED: the
// contracts must not depend on SERIALIZABLE.
func TestStoreReadCommitted(t *testing.T) {
	baseURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, freshSchema(t), postgres.Options{Migrate: true, Isolation: postgres.ReadCommitted})
	})
}

func TestSchemaVersions(t *testing.T) {
	ctx := context.Background()
	u := freshSchema(t)
	if _, err := postgres.Open(ctx, u, postgres.Options{}); !errors.Is(err, store.ErrSchemaOutdated) {
		t.Fatalf("open without migrate on an empty database: %v, want ErrSchemaOutdated", err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var created bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&created); err != nil || created {
		t.Fatalf("a refused Open created schema_migrations (%v, %v)", created, err)
	}

	db, err := postgres.Open(ctx, u, postgres.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	have, known, err := db.SchemaVersion(ctx)
	db.Close()
	if err != nil || have != known || known < 1 {
		t.Fatalf("SchemaVersion = %d, %d, %v", have, known, err)
	}
	// Up to date: Open needs no Migrate.
	db, err = postgres.Open(ctx, u, postgres.Options{})
	if err != nil {
		t.Fatalf("open of an up-to-date schema without Migrate: %v", err)
	}
	db.Close()

	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES($1, 0)`, known+1); err != nil {
		t.Fatal(err)
	}
	for _, migrate := range []bool{false, true} {
		if _, err := postgres.Open(ctx, u, postgres.Options{Migrate: migrate}); !errors.Is(err, store.ErrSchemaTooNew) {
			t.Errorf("open of a newer schema (Migrate %v): %v, want ErrSchemaTooNew", migrate, err)
		}
	}
}

// TestConcurrentMigration starts three instances on one empty schema at
// once: all must come up and each migration must be recorded once.
func TestConcurrentMigration(t *testing.T) {
	ctx := context.Background()
	u := freshSchema(t)
	const instances = 3
	var wg sync.WaitGroup
	errs := make([]error, instances)
	start := make(chan struct{})
	for i := range instances {
		wg.Go(func() {
			<-start
			db, err := postgres.Open(ctx, u, postgres.Options{Migrate: true})
			errs[i] = err
			if err == nil {
				db.Close()
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	db := open(t, u, postgres.Options{})
	have, known, err := db.SchemaVersion(ctx)
	if err != nil || have != known {
		t.Fatalf("SchemaVersion = %d, %d, %v", have, known, err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, distinct int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != known || distinct != known {
		t.Fatalf("schema_migrations has %d rows (%d versions), want %d", rows, distinct, known)
	}
}

// TestUnavailable needs no server: nothing listens on port 1.
func TestUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://parley:secret@127.0.0.1:1/parley?sslmode=disable&connect_timeout=5", postgres.Options{Migrate: true})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open against a closed port: %v, want ErrUnavailable", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("error %q does not say which server it could not reach", msg)
	}
	if strings.Contains(msg, "secret") {
		t.Errorf("error %q shows the password", msg)
	}
}

func TestOpenRejectsBadURL(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:secret@[::1/db", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open of a malformed URL = %v; want an error not showing the password", err)
	}
}

// TestUpdateRetriesSerializationFailure makes two SERIALIZABLE Updates read
// a token and then both revoke it: the second to write fails with 40001,
// and Update must run its function again and succeed.
func TestUpdateRetriesSerializationFailure(t *testing.T) {
	ctx := context.Background()
	db := open(t, freshSchema(t), postgres.Options{Migrate: true})
	p := store.Party{ID: "party--a", Name: "a", CreatedAt: time.UnixMicro(1).UTC()}
	tok := store.Token{ID: "tok", PartyID: p.ID, Hash: [32]byte{1}, CreatedAt: p.CreatedAt}
	if err := db.Parties().Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := db.Tokens().Create(ctx, tok); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	var bothRead sync.WaitGroup
	bothRead.Add(2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			first := true
			errs[i] = db.Update(ctx, func(tx store.Handle) error {
				calls.Add(1)
				if _, err := tx.Tokens().ByHash(ctx, tok.Hash); err != nil {
					return err
				}
				if first {
					// Both snapshots are taken before either writes.
					first = false
					bothRead.Done()
					bothRead.Wait()
				}
				return tx.Tokens().Revoke(ctx, tok.ID, time.UnixMicro(int64(100+i)).UTC())
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Update %d: %v", i, err)
		}
	}
	if n := calls.Load(); n < 3 || db.Retries() < 1 {
		t.Fatalf("fn ran %d times, %d retries; want at least 3 runs (one Update retried after 40001)", n, db.Retries())
	}
	got, err := db.Tokens().ByHash(ctx, tok.Hash)
	if err != nil || got.RevokedAt.IsZero() {
		t.Fatalf("token after both revocations = %+v, %v", got, err)
	}
}

// TestRawBytesKept: raw JSON must come back byte for byte, which JSONB would
// not do (key order, whitespace, duplicate keys, escapes).
func TestRawBytesKept(t *testing.T) {
	ctx := context.Background()
	db := open(t, freshSchema(t), postgres.Options{Migrate: true})
	if err := db.Collections().Create(ctx, store.Collection{ID: "c", APIRoot: "r", Title: "c", CreatedAt: time.UnixMicro(1)}); err != nil {
		t.Fatal(err)
	}
	raw := []byte("{ \"z\":1,\n\"a\" : \"\\u00e9\\ud83d\\ude00\", \"a\":2.50e0 }")
	o := store.Object{ID: "indicator--1", Type: "indicator", SpecVersion: "2.1", Version: time.UnixMicro(5).UTC(), DateAdded: time.UnixMicro(7).UTC(), Raw: raw}
	if _, err := db.Objects().Put(ctx, "c", []store.Object{o}); err != nil {
		t.Fatal(err)
	}
	p, err := db.Objects().Query(ctx, store.ObjectQuery{Collection: "c", Limit: 1})
	if err != nil || len(p.Objects) != 1 {
		t.Fatalf("Query = %+v, %v", p, err)
	}
	if got := p.Objects[0]; !bytes.Equal(got.Raw, raw) || !got.Version.Equal(o.Version) || !got.DateAdded.Equal(o.DateAdded) {
		t.Fatalf("stored %q @%v/%v, got back %q @%v/%v", raw, o.Version, o.DateAdded, got.Raw, got.Version, got.DateAdded)
	}
}

// TestConcurrentPutAcrossInstances has two instances (two pools) put
// versions of overlapping objects in shuffled orders, both directly and
// inside Update: each object keeps exactly one first and one last version,
// and no batch fails with a deadlock.
func TestConcurrentPutAcrossInstances(t *testing.T) {
	ctx := context.Background()
	u := freshSchema(t)
	a := open(t, u, postgres.Options{Migrate: true})
	b := open(t, u, postgres.Options{})
	if err := a.Collections().Create(ctx, store.Collection{ID: "c", APIRoot: "r", Title: "c", CreatedAt: time.UnixMicro(1)}); err != nil {
		t.Fatal(err)
	}
	const workers, rounds, objectsN = 4, 8, 20
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		db := []*postgres.DB{a, b}[w%2]
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for round := range rounds {
				batch := make([]store.Object, 0, objectsN)
				for _, i := range r.Perm(objectsN) {
					v := base.Add(time.Duration(r.IntN(1000)) * time.Second)
					if round == rounds-1 && w == 0 {
						v = base.Add(time.Hour) // the known last version
					}
					batch = append(batch, store.Object{ID: fmt.Sprintf("indicator--%d", i), Type: "indicator", SpecVersion: "2.1",
						Version: v, DateAdded: time.Now().UTC().Truncate(time.Microsecond), Raw: []byte(`{}`)})
				}
				var err error
				if round%2 == 0 {
					_, err = db.Objects().Put(ctx, "c", batch)
				} else {
					err = db.Update(ctx, func(tx store.Handle) error {
						_, err := tx.Objects().Put(ctx, "c", batch)
						return err
					})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("retried transactions: %d and %d", a.Retries(), b.Retries())
	all, err := a.Objects().Query(ctx, store.ObjectQuery{Collection: "c", Versions: store.VersionFilter{All: true}, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	minV, maxV := map[string]time.Time{}, map[string]time.Time{}
	for _, o := range all.Objects {
		if m, ok := minV[o.ID]; !ok || o.Version.Before(m) {
			minV[o.ID] = o.Version
		}
		if m, ok := maxV[o.ID]; !ok || o.Version.After(m) {
			maxV[o.ID] = o.Version
		}
	}
	for _, tc := range []struct {
		f    store.VersionFilter
		want map[string]time.Time
	}{{store.VersionFilter{First: true}, minV}, {store.VersionFilter{Last: true}, maxV}} {
		p, err := a.Objects().Query(ctx, store.ObjectQuery{Collection: "c", Versions: tc.f, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Objects) != objectsN {
			t.Fatalf("filter %+v: %d rows, want %d", tc.f, len(p.Objects), objectsN)
		}
		for _, o := range p.Objects {
			if !o.Version.Equal(tc.want[o.ID]) {
				t.Fatalf("filter %+v: %s at %v, want %v", tc.f, o.ID, o.Version, tc.want[o.ID])
			}
		}
	}
}
