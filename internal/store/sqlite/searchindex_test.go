package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// sqlSearchColumns computes the two columns as migration 15's trigger did.
func sqlSearchColumns(t testing.TB, db *DB, pk int64, typ string, raw []byte) (string, string) {
	t.Helper()
	var body, facets string
	if err := db.w.QueryRowContext(context.Background(), `SELECT `+searchColumnsJSONB+` FROM (SELECT ? AS k, ? AS ty,
		CASE WHEN json_valid(CAST(? AS TEXT)) THEN jsonb(CAST(? AS TEXT)) END AS j)`, pk, typ, raw, raw).Scan(&body, &facets); err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	return body, facets
}

// searchRaws are objects the Go path must read (plain) and objects it must
// leave to SQL, each with what it exercises.
var searchRaws = []struct {
	raw   string
	plain bool
}{
	{`{"id":"malware--1","name":"Emotet","aliases":["Geodo","Heodo"],"description":"Banking trojan, then loader.","labels":["botnet","trojan"],"object_marking_refs":["marking-definition--x"]}`, true},
	{`{"id":"indicator--2","name":"C2 10.0.0.1","pattern":"[ipv4-addr:value = '10.0.0.1']","granular_markings":[{"marking_ref":"marking-definition--g","selectors":["name"]},{"lang":"fr","selectors":["description"]}]}`, true},
	{`{"id":"relationship--3","source_ref":"malware--1","target_ref":"tool--3"}`, true},
	{`{"id":"sighting--4","sighting_of_ref":"indicator--2","observed_data_refs":["observed-data--5"],"where_sighted_refs":["identity--6","identity--7"]}`, true},
	{`{"id":"report--8","name":"Ünïcödé — naïve 日本","object_refs":["malware--1","indicator--2"],"labels":"not-a-list","aliases":[]}`, true},
	{" \t\r\n{ \"name\" : \"spaced\" , \"labels\" : [ \"a\" , \"\" ] , \"n\" : [ 1 , -0.5e+3 , true , false , null , { \"x\" : [ ] } ] } \n", true},
	{`{"name":"esc \"q\" \\ \/ \b\f\n\r\t \u00e9\u4e2d","description":"tab\there"}`, true},
	{`{"name":"plain","x":"an escaped pair \ud83d\ude00 anywhere"}`, false},
	{`{"name":"dup ignored elsewhere","id":"a","id":"b"}`, true},
	{`{"granular_markings":[{}, {"marking_ref":"m--1","x":{"y":[1,{"z":"w"}]}}],"object_marking_refs":"m--2"}`, true},
	{`{"name":"` + strings.Repeat("ü", 70000) + `","pattern":"cut off"}`, true},
	{`{"description":"` + strings.Repeat("ab ", 30000) + `"}`, true},
	{`{}`, true},
	{`{"x":12,"y":0,"z":-0,"w":1.25E-7}`, true},
	// left to SQL
	{`{"id":"x--9","name":12,"description":null,"pattern":true,"labels":[1,"two",{"three":3}]}`, false},
	{`{"name":"first","name":"second"}`, false},
	{`{"na\u006de":"escaped key"}`, false},
	{`{"name":"lone \ud800 surrogate"}`, false},
	{`{"name":"pair \ud83d\ude00 in a member read"}`, false},
	{`{"name":"nul \u0000 inside"}`, false},
	{`{"labels":null}`, false},
	{`{"aliases":["a",["b"]]}`, false},
	{`{"granular_markings":[{"marking_ref":1}]}`, false},
	{`{"granular_markings":[{"marking_ref":"a","marking_ref":"b"}]}`, false},
	{`{"granular_markings":["not an object"]}`, false},
	{`{"granular_markings":{"marking_ref":"m"}}`, false},
	{`{"x":01}`, false},
	{`{"x":1.}`, false},
	{`{"x":.5}`, false},
	{`{"x":+1}`, false},
	{`{"x":[1,]}`, false},
	{`{"x":1,}`, false},
	{`{'x':1}`, false},
	{`{"x":"raw` + "\x01" + `control"}`, false},
	{"{\"name\":\"bad utf-8 \xff\"}", false},
	{"\ufeff{\"name\":\"bom\"}", false},
	{`{"x":Infinity}`, false},
	{`{"x":[` + strings.Repeat(`[`, 70) + strings.Repeat(`]`, 70) + `]}`, false},
	{`{} {}`, false},
	{`[1,2,3]`, false},
	{`"just a string"`, false},
	{`not json at all`, false},
	{``, false},
}

// TestSearchColumnsGoMatchSQL: wherever the Go path reads an object it
// computes exactly the columns the trigger's SQL does; it reads the plain
// objects (every object of the shared STIX test data among them, valid or
// not, when present) and leaves the rest to SQL.
func TestSearchColumnsGoMatchSQL(t *testing.T) {
	db := openDefault(t, t.TempDir())
	defer db.Close()
	// pks and types vary only the facets' C and T tokens, whatever the
	// object: the hand-made inputs try each pair, the shared data (each
	// object twice, under -race the package's longest test) one.
	pks, typs := []int64{1, 12345}, []string{"indicator", "x-ünï"}
	check := func(name string, raw []byte, wantPlain bool) {
		t.Helper()
		for _, pk := range pks {
			for _, typ := range typs {
				body, facets, ok := searchColumnsGo(pk, typ, raw)
				if ok != wantPlain {
					t.Errorf("%s: read in Go %v, want %v", name, ok, wantPlain)
				}
				if !ok {
					continue
				}
				sb, sf := sqlSearchColumns(t, db, pk, typ, raw)
				if body != sb || facets != sf {
					t.Errorf("%s (C%d, %s):\nGo  %.200q %.300q\nSQL %.200q %.300q", name, pk, typ, body, facets, sb, sf)
				}
			}
		}
	}
	for _, r := range searchRaws {
		check(fmt.Sprintf("%.60q", r.raw), []byte(r.raw), r.plain)
	}
	pks, typs = []int64{12345}, []string{"x-ünï"}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "testdata", "stix")
	n := 0
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(path, ".json") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Objects []json.RawMessage `json:"objects"`
		}
		if json.Unmarshal(data, &bundle) != nil {
			return nil
		}
		for i, o := range bundle.Objects {
			var compact bytes.Buffer
			if json.Compact(&compact, o) != nil {
				continue
			}
			// As stored (compacted by the client or not): both forms.
			check(fmt.Sprintf("%s #%d", path, i), o, true)
			check(fmt.Sprintf("%s #%d compact", path, i), compact.Bytes(), true)
			n++
		}
		return nil
	})
	t.Logf("%d objects of the shared test data", n)
}

// FuzzSearchColumns: whatever the input, the Go path either leaves it to
// SQL or computes what SQL computes.
func FuzzSearchColumns(f *testing.F) {
	for _, r := range searchRaws {
		f.Add([]byte(r.raw))
	}
	db := openDefault(f, f.TempDir())
	f.Cleanup(func() { db.Close() })
	f.Fuzz(func(t *testing.T, raw []byte) {
		body, facets, ok := searchColumnsGo(7, "indicator", raw)
		if !ok {
			return
		}
		sb, sf := sqlSearchColumns(t, db, 7, "indicator", raw)
		if body != sb || facets != sf {
			t.Errorf("%q:\nGo  %q %q\nSQL %q %q", raw, body, facets, sb, sf)
		}
	})
}

// TestPutIndexesAsTheTriggerDid: the search index the indexer writes for
// what Put stored (Go path and SQL path mixed in one batch, duplicates and
// new versions included) holds, term by term and position by position,
// what migration 15's trigger wrote for the same rows.
func TestPutIndexesAsTheTriggerDid(t *testing.T) {
	ctx := context.Background()
	put := openDefault(t, t.TempDir())
	defer put.Close()
	trig := openDefault(t, t.TempDir())
	defer trig.Close()
	coll := benchCollection(t, put)
	benchCollection(t, trig)
	if _, err := trig.w.ExecContext(ctx, `CREATE VIRTUAL TABLE object_search USING fts5(body, facets, content='', contentless_delete=1,
	tokenize='unicode61 remove_diacritics 0')`); err != nil {
		t.Fatal(err)
	}
	if _, err := trig.w.ExecContext(ctx, `CREATE TRIGGER object_search_insert AFTER INSERT ON objects BEGIN
	INSERT INTO object_search(rowid, body, facets)
	SELECT s, `+searchColumnsJSONB+` FROM (SELECT NEW.seq AS s, NEW.coll AS k, NEW.type AS ty,
		CASE WHEN json_valid(CAST(NEW.raw AS TEXT)) THEN jsonb(CAST(NEW.raw AS TEXT)) END AS j);
END`); err != nil {
		t.Fatal(err)
	}
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	objs := benchObjects(0, 450, added)
	for i, r := range searchRaws {
		var b, f string
		if trig.w.QueryRowContext(ctx, `SELECT `+searchColumnsJSONB+` FROM (SELECT 1 AS k, 'x' AS ty,
			CASE WHEN json_valid(CAST(? AS TEXT)) THEN jsonb(CAST(? AS TEXT)) END AS j)`, r.raw, r.raw).Scan(&b, &f) != nil {
			continue // the trigger refused it too (a granular marking that is not an object)
		}
		objs = append(objs, store.Object{ID: fmt.Sprintf("x-odd--%08d-0000-4000-8000-000000000000", i), Type: "x-odd",
			SpecVersion: "2.1", Version: added, DateAdded: added, Raw: []byte(r.raw)})
	}
	again := benchObjects(100, 3, added) // duplicates of stored versions
	newer := benchObjects(200, 2, added)
	for i := range newer {
		newer[i].Version = newer[i].Version.Add(time.Hour)
	}
	// New ids in two versions each, and one version twice.
	twice := benchObjects(1000, 64, added)
	for _, o := range benchObjects(1000, 64, added) {
		o.Version = o.Version.Add(time.Hour)
		twice = append(twice, o)
	}
	twice = append(twice, twice[0])
	for _, batch := range [][]store.Object{objs, append(again, newer...), twice} {
		if _, err := put.Objects().Put(ctx, coll, batch); err != nil {
			t.Fatal(err)
		}
		for _, o := range batch {
			if _, err := trig.w.ExecContext(ctx, `INSERT INTO objects(coll, key, id, type, spec_version, version, date_added, is_first, is_last, raw)
				SELECT 1, coalesce((SELECT max(key) FROM objects), 0) + 1, ?, ?, ?, ?, ?, 0, 0, ?
				WHERE NOT EXISTS (SELECT 1 FROM objects WHERE id = ? AND version = ?)`,
				o.ID, o.Type, o.SpecVersion, micros(o.Version), micros(o.DateAdded), o.Raw, o.ID, micros(o.Version)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// dump lists the index's term instances of db's rows: index is the
	// connection that holds object_search in its main schema.
	dump := func(db *DB, index *sql.DB) []string {
		t.Helper()
		versions := map[int64]string{}
		rows, err := db.w.QueryContext(ctx, `SELECT seq, id, version FROM objects`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var seq, version int64
			var id string
			if err := rows.Scan(&seq, &id, &version); err != nil {
				t.Fatal(err)
			}
			versions[seq] = fmt.Sprint(id, " ", version)
		}
		rows.Close()
		if _, err := index.ExecContext(ctx, `CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_terms USING fts5vocab(main, object_search, instance)`); err != nil {
			t.Fatal(err)
		}
		rows, err = index.QueryContext(ctx, `SELECT v.doc, v.term, v.col, v.offset FROM temp.search_terms v`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var doc, off int64
			var term, col string
			if err := rows.Scan(&doc, &term, &col, &off); err != nil {
				t.Fatal(err)
			}
			v, ok := versions[doc]
			if !ok {
				t.Fatalf("the index holds seq %d, which no object has", doc)
			}
			out = append(out, fmt.Sprint(v, " ", col, " ", off, " ", term))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	if err := put.search.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got, want := dump(put, put.search.w), dump(trig, trig.w)
	if len(want) < 450*5 {
		t.Fatalf("the trigger indexed only %d terms", len(want))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Put indexed %d term instances, the trigger %d; they differ", len(got), len(want))
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("first difference at %d: Put %q, trigger %q", i, got[i], want[i])
				break
			}
		}
	}
}

// TestSearchIndexMergeWidth: the search index merges its segments eight
// at a time (as migration 35 set it when it was in parley.db), not FTS5's
// default four.
func TestSearchIndexMergeWidth(t *testing.T) {
	db, err := Open(context.Background(), t.TempDir(), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.search.w.QueryRow(`SELECT v FROM object_search_config WHERE k = 'automerge'`).Scan(&v); err != nil || v != 8 {
		t.Fatalf("object_search automerge = %d, %v; want 8", v, err)
	}
}
