package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// stixKeysVersion is the migration that keys objects and owners by
// stix_ids (24); the tests below build databases one version before it.
var stixKeysVersion = func() int {
	for i, m := range migrations {
		if strings.Contains(m, "CREATE TABLE stix_ids") {
			return i + 1
		}
	}
	return 0
}()

// openAtVersion opens the database in dir migrated to version v only.
func openAtVersion(t *testing.T, dir string, v int) *DB {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(dir, FileName)
	w, err := sql.Open(DriverName, dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	if err := migrateTo(ctx, w, true, v); err != nil {
		w.Close()
		t.Fatal(err)
	}
	r, err := sql.Open(DriverName, dsn(path, true))
	if err != nil {
		w.Close()
		t.Fatal(err)
	}
	return newDB(w, r, path)
}

// putBeforeKeys stores objs in collection the way Put did before
// migration 24 (rows keyed by id; the search trigger of that schema
// fills object_search), then elects each id's first and last version.
func putBeforeKeys(t *testing.T, db *DB, collection string, objs []store.Object) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		if _, err := db.w.ExecContext(ctx, `INSERT INTO objects(coll, id, type, spec_version, version, date_added, is_first, is_last, raw)
			VALUES ((SELECT pk FROM collections WHERE id = ?), ?, ?, ?, ?, ?, 0, 0, ?)`,
			collection, o.ID, o.Type, o.SpecVersion, micros(o.Version), micros(o.DateAdded), o.Raw); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.w.ExecContext(ctx, `UPDATE objects SET
		is_first = (version = (SELECT min(version) FROM objects o2 WHERE o2.coll = objects.coll AND o2.id = objects.id)),
		is_last  = (version = (SELECT max(version) FROM objects o2 WHERE o2.coll = objects.coll AND o2.id = objects.id))`); err != nil {
		t.Fatal(err)
	}
}

// ownBeforeKeys records owners as the schema before migration 24 did.
func ownBeforeKeys(t *testing.T, db *DB, collection, owner string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := db.w.ExecContext(context.Background(), `INSERT INTO object_owners(coll, id, party_id)
			VALUES ((SELECT pk FROM collections WHERE id = ?), ?, ?)`, collection, id, owner); err != nil {
			t.Fatal(err)
		}
	}
}

// keysFixture is what both databases of TestStixKeysMigration hold.
type keysFixture struct {
	puts   []keysPut            // in order
	owners map[string][2]string // id → collection, owner
	ids    map[string][]string  // collection → every id stored there
	t0     time.Time
	search []store.SearchQuery
}

type keysPut struct {
	coll string
	objs []store.Object
}

func keysObject(id string, version, added time.Time, fields map[string]any) store.Object {
	m := map[string]any{"type": id[:strings.Index(id, "--")], "id": id, "spec_version": "2.1", "modified": version.Format(time.RFC3339Nano)}
	for k, v := range fields {
		m[k] = v
	}
	raw, _ := json.Marshal(m)
	return store.Object{ID: id, Type: m["type"].(string), SpecVersion: "2.1", Version: version, DateAdded: added, Raw: raw}
}

func newKeysFixture() keysFixture {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	id := func(typ string, n int) string { return fmt.Sprintf("%s--00000000-0000-4000-8000-%012d", typ, n) }
	f := keysFixture{t0: t0, owners: map[string][2]string{}, ids: map[string][]string{}}
	add := func(coll string, objs ...store.Object) {
		f.puts = append(f.puts, keysPut{coll, objs})
		for _, o := range objs {
			if !slices.Contains(f.ids[coll], o.ID) {
				f.ids[coll] = append(f.ids[coll], o.ID)
			}
		}
	}
	// Versions stored out of order, in separate writes.
	a := id("indicator", 1)
	add("c1", keysObject(a, t0.Add(2*time.Hour), at(1), map[string]any{"name": "Emotet C2", "pattern": "[ipv4-addr:value = '10.0.0.1']", "labels": []string{"botnet"}}))
	add("c1", keysObject(a, t0, at(2), map[string]any{"name": "first"}), keysObject(a, t0.Add(time.Hour), at(2), map[string]any{"name": "middle"}))
	add("c1", keysObject(a, t0.Add(3*time.Hour), at(3), map[string]any{"name": "Emotet C2 last", "labels": []string{"botnet", "c2"}}))
	// The same id in two collections; a 2.0 spec version.
	b := id("malware", 2)
	add("c1", keysObject(b, t0, at(4), map[string]any{"name": "Emotet", "aliases": []string{"Heodo"}, "description": "A banking trojan."}))
	add("c2", keysObject(b, t0.Add(time.Minute), at(1), map[string]any{"name": "Other Emotet"}))
	old := keysObject(id("tool", 3), t0, at(5), map[string]any{"name": "Old tool"})
	old.SpecVersion = "2.0"
	add("c1", old)
	add("c1", keysObject(id("relationship", 4), t0, at(6), map[string]any{"relationship_type": "indicates", "source_ref": a, "target_ref": b}))
	// Enough for pages, equal date_added (ties broken by seq), and an id
	// list longer than the short-list index choice.
	var many []store.Object
	for i := 0; i < 300; i++ {
		many = append(many, keysObject(id("indicator", 100+i), t0, at(10+i/7), map[string]any{"name": fmt.Sprintf("bulk %d", i)}))
	}
	add("c1", many...)
	f.owners[a] = [2]string{"c1", "party--alpha"}
	f.owners[b] = [2]string{"c1", "party--bravo"}
	f.owners[id("indicator", 100)] = [2]string{"c1", "party--alpha"}
	// An owner whose object is gone: the id stays owned.
	f.owners[id("indicator", 999)] = [2]string{"c1", "party--bravo"}
	f.search = []store.SearchQuery{
		{Text: "emotet"}, {Types: []string{"malware"}}, {Labels: []string{"botnet"}}, {Refs: []string{a}},
		{IDs: []string{a, b, id("indicator", 150)}}, {Text: "bulk", Limit: 10}, {}, {Limit: 25},
		{Collection: "c2", Text: "emotet"},
	}
	return f
}

// keysSetup creates the parties and collections through the store API,
// whose tables migration 24 does not change.
func keysSetup(t *testing.T, db *DB, f keysFixture) {
	t.Helper()
	ctx := context.Background()
	for _, n := range []string{"alpha", "bravo"} {
		if err := db.Parties().Create(ctx, store.Party{ID: "party--" + n, Name: n, CreatedAt: f.t0}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"c1", "c2"} {
		if err := db.Collections().Create(ctx, store.Collection{ID: c, APIRoot: "shared", Title: c, CreatedAt: f.t0,
			Readers: []string{"party--alpha"}, Writers: []string{"party--alpha", "party--bravo"}}); err != nil {
			t.Fatal(err)
		}
	}
}

// keysReads is every read of the objects and owners of f, written out.
func keysReads(t *testing.T, db *DB, f keysFixture) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	page := func(what string, q store.ObjectQuery) {
		t.Helper()
		for n := 0; ; n++ {
			p, err := db.Objects().Query(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			fmt.Fprintf(&b, "%s page %d more=%v:", what, n, p.More)
			for _, o := range p.Objects {
				fmt.Fprintf(&b, " [%d %s %s %s %d %d %s]", o.Seq, o.ID, o.Type, o.SpecVersion, micros(o.Version), micros(o.DateAdded), o.Raw)
			}
			b.WriteString("\n")
			if !p.More {
				return
			}
			last := p.Objects[len(p.Objects)-1]
			q.After = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
		}
	}
	for _, coll := range []string{"c1", "c2"} {
		n, err := db.Objects().Count(ctx, coll)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s count %d\n", coll, n)
		ids := f.ids[coll]
		for _, id := range ids {
			for _, v := range []store.VersionFilter{{}, {All: true}, {First: true}, {At: []time.Time{f.t0, f.t0.Add(time.Hour)}}} {
				page(fmt.Sprintf("%s %s %+v", coll, id, v), store.ObjectQuery{Collection: coll, IDs: []string{id}, Versions: v, Limit: 100})
			}
		}
		// The manifest and the pages: every version, in pages of 7, with
		// and without added_after; and by type, spec version and id list.
		page(coll+" manifest", store.ObjectQuery{Collection: coll, Versions: store.VersionFilter{All: true}, Limit: 7})
		page(coll+" last", store.ObjectQuery{Collection: coll, Limit: 50})
		page(coll+" added_after", store.ObjectQuery{Collection: coll, AddedAfter: f.t0.Add(20 * time.Second), Limit: 9})
		page(coll+" types", store.ObjectQuery{Collection: coll, Types: []string{"malware", "tool"}, Versions: store.VersionFilter{All: true}, Limit: 5})
		page(coll+" 2.0", store.ObjectQuery{Collection: coll, SpecVersions: []string{"2.0"}, Limit: 5})
		page(coll+" all ids", store.ObjectQuery{Collection: coll, IDs: append(ids, "indicator--00000000-0000-4000-8000-000000000998"), Limit: 40})
		owned := make([]string, 0, len(f.owners))
		for id := range f.owners {
			owned = append(owned, id)
		}
		slices.Sort(owned)
		for _, id := range owned {
			o := f.owners[id]
			got, err := db.Objects().Owner(ctx, coll, id)
			if errors.Is(err, store.ErrNotFound) {
				got = "none"
			} else if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s owner of %s (recorded in %s): %s\n", coll, id, o[0], got)
		}
	}
	for _, q := range f.search {
		if q.Collection == "" {
			q.Collection = "c1"
		}
		if q.Limit == 0 {
			q.Limit = 100
		}
		for n := 0; ; n++ {
			p, err := db.Objects().Search(ctx, q)
			if err != nil {
				t.Fatalf("search %+v: %v", q, err)
			}
			fmt.Fprintf(&b, "search %+v page %d more=%v:", q, n, p.More)
			for _, o := range p.Objects {
				fmt.Fprintf(&b, " [%d %s %d]", o.Seq, o.ID, micros(o.Version))
			}
			b.WriteString("\n")
			if !p.More {
				break
			}
			last := p.Objects[len(p.Objects)-1]
			q.Before = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
		}
	}
	return b.String()
}

// TestStixKeysMigration: a database holding objects (several versions,
// stored out of order, one id in two collections), owners (one of an id
// whose versions are gone) and search rows from before migration 24 reads
// exactly as a database written with the compact keys from the start, by
// id, versions, manifest, pages with added_after and cursors, owners and
// search; and both take the same writes afterwards.
func TestStixKeysMigration(t *testing.T) {
	if stixKeysVersion == 0 {
		t.Fatal("no migration creates stix_ids")
	}
	ctx := context.Background()
	f := newKeysFixture()

	oldDir := t.TempDir()
	old := openAtVersion(t, oldDir, stixKeysVersion-1)
	keysSetup(t, old, f)
	for _, p := range f.puts {
		putBeforeKeys(t, old, p.coll, p.objs)
	}
	for id, o := range f.owners {
		ownBeforeKeys(t, old, o[0], o[1], id)
	}
	var searchRows int
	if err := old.w.QueryRowContext(ctx, `SELECT count(*) FROM object_search WHERE object_search MATCH 'emotet'`).Scan(&searchRows); err != nil || searchRows != 4 {
		t.Fatalf("before the migration, %d search rows match emotet (%v); want 4", searchRows, err)
	}
	old.Close()
	migrated, err := Open(ctx, oldDir, Options{Migrate: true})
	if err != nil {
		t.Fatalf("migrating: %v", err)
	}
	defer migrated.Close()

	fresh, err := Open(ctx, t.TempDir(), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	keysSetup(t, fresh, f)
	for _, p := range f.puts {
		if _, err := fresh.Objects().Put(ctx, p.coll, p.objs); err != nil {
			t.Fatal(err)
		}
	}
	for id, o := range f.owners {
		if _, err := fresh.Objects().Claim(ctx, o[0], o[1], []string{id}); err != nil {
			t.Fatal(err)
		}
	}

	want := keysReads(t, fresh, f)
	// The reference itself reads what was stored.
	for _, s := range []string{
		"c1 count 307\n", "c2 count 1\n",
		"c1 owner of indicator--00000000-0000-4000-8000-000000000999 (recorded in c1): party--bravo\n",
		"c2 owner of indicator--00000000-0000-4000-8000-000000000001 (recorded in c1): none\n",
		"c1 manifest page 43 more=false",
	} {
		if !strings.Contains(want, s) {
			t.Fatalf("the database written with keys does not read %q:\n%s", s, want)
		}
	}
	if got := keysReads(t, migrated, f); got != want {
		t.Fatalf("the migrated database reads differently:\n%s", firstDiff(got, want))
	}
	var n int
	var check string
	if err := migrated.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity check of the migrated database: %q, %v", check, err)
	}
	if err := migrated.r.QueryRowContext(ctx, `SELECT count(*) FROM stix_ids`).Scan(&n); err != nil || n != 305 {
		t.Fatalf("stix_ids holds %d ids (%v), want 305: 304 stored, one owned only", n, err)
	}

	// Both take the same writes afterwards: a new last version and a new
	// first one of an old id, a duplicate, a new id, a claim of an owned
	// id, and deletions.
	a := "indicator--00000000-0000-4000-8000-000000000001"
	later := []store.Object{
		keysObject(a, f.t0.Add(4*time.Hour), f.t0.Add(time.Hour), map[string]any{"name": "Emotet newest"}),
		keysObject(a, f.t0.Add(-time.Hour), f.t0.Add(time.Hour), map[string]any{"name": "oldest"}),
		keysObject(a, f.t0, f.t0.Add(time.Hour), map[string]any{"name": "first"}),
		keysObject("indicator--00000000-0000-4000-8000-000000000777", f.t0, f.t0.Add(time.Hour), map[string]any{"name": "Emotet new"}),
	}
	f.ids["c1"] = append(f.ids["c1"], later[3].ID)
	for _, db := range []*DB{fresh, migrated} {
		out, err := db.Objects().Put(ctx, "c1", append([]store.Object(nil), later...))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(out) != fmt.Sprint([]store.PutOutcome{store.Added, store.Added, store.Duplicate, store.Added}) {
			t.Fatalf("outcomes %v", out)
		}
		owners, err := db.Objects().Claim(ctx, "c1", "party--bravo", []string{a, later[3].ID, a})
		if err != nil {
			t.Fatal(err)
		}
		if owners[a] != "party--alpha" || owners[later[3].ID] != "party--bravo" || len(owners) != 2 {
			t.Fatalf("claims: %v", owners)
		}
		if n, err := db.Objects().Delete(ctx, "c1", "indicator--00000000-0000-4000-8000-000000000100", store.VersionFilter{All: true}, nil); err != nil || n != 1 {
			t.Fatalf("delete: %d, %v", n, err)
		}
		if n, err := db.Objects().Delete(ctx, "c1", a, store.VersionFilter{Last: true}, nil); err != nil || n != 1 {
			t.Fatalf("delete last: %d, %v", n, err)
		}
		if n, err := db.Objects().Delete(ctx, "c1", "indicator--00000000-0000-4000-8000-000000000555", store.VersionFilter{All: true}, nil); err != nil || n != 0 {
			t.Fatalf("delete of an id never stored: %d, %v", n, err)
		}
	}
	want = keysReads(t, fresh, f)
	if !strings.Contains(want, "c1 count 308\n") {
		t.Fatalf("after the writes the reference does not count 308 versions:\n%s", want)
	}
	if got := keysReads(t, migrated, f); got != want {
		t.Fatalf("after the same writes the migrated database reads differently:\n%s", firstDiff(got, want))
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d\n got: %s\nwant: %s", i+1, gl, wl)
		}
	}
	return "(equal)"
}
