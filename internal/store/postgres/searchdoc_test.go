package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/postgres"
)

// searchDocRaws exercise what the JSON path queries of object_search_doc
// read differently from plain JSON operators: scalars where lists belong,
// nested lists, nulls, empty lists, duplicate keys, escapes, long text,
// and documents that are not objects (left to object_search_doc).
var searchDocRaws = []string{
	`{"id":"malware--1","name":"Emotet","aliases":["Geodo","Heodo"],"description":"Banking trojan, then loader.","labels":["botnet","trojan"],"object_marking_refs":["marking-definition--x"]}`,
	`{"id":"indicator--2","name":"C2 10.0.0.1","pattern":"[ipv4-addr:value = '10.0.0.1']","granular_markings":[{"marking_ref":"marking-definition--g","selectors":["name"]},{"lang":"fr","selectors":["description"]}]}`,
	`{"id":"relationship--3","source_ref":"malware--1","target_ref":"tool--3"}`,
	`{"id":"sighting--4","sighting_of_ref":"indicator--2","observed_data_refs":["observed-data--5"],"where_sighted_refs":["identity--6","identity--7"]}`,
	`{"id":"report--8","name":"Ünïcödé — naïve 日本","object_refs":["malware--1","indicator--2"],"labels":"not-a-list","aliases":[]}`,
	" \t\r\n{ \"name\" : \"spaced\" , \"labels\" : [ \"a\" , \"\" ] , \"n\" : [ 1 , -0.5e+3 , true , false , null , { \"x\" : [ ] } ] } \n",
	`{"name":"esc \"q\" \\ \/ \b\f\n\r\t \u00e9\u4e2d","description":"tab\there"}`,
	`{"name":"pair \ud83d\ude00 in a member read"}`,
	`{"name":"nul \u0000 inside","labels":["a\u0000b"]}`,
	`{"name":"first","name":"second"}`,
	`{"na\u006de":"escaped key"}`,
	`{"id":"x--9","name":12,"description":null,"pattern":true,"labels":[1,"two",{"three":3},null,[4,"five"]]}`,
	`{"labels":null,"aliases":null,"object_refs":null,"source_ref":null}`,
	`{"aliases":["a",["b","c"],{"d":1}],"object_marking_refs":"m--2","where_sighted_refs":{"k":"v"}}`,
	`{"aliases":"one alias","observed_data_refs":7,"object_refs":[]}`,
	`{"source_ref":["x--1","x--2"],"target_ref":{"a":[1]},"sighting_of_ref":3.5}`,
	`{"granular_markings":[{}, {"marking_ref":"m--1","x":{"y":[1,{"z":"w"}]}}],"object_marking_refs":"m--2"}`,
	`{"granular_markings":[{"marking_ref":1}, "not an object", [{"marking_ref":"nested"}]]}`,
	`{"granular_markings":{"marking_ref":"m"}}`,
	`{"granular_markings":[{"marking_ref":["a","b"]}]}`,
	`{"name":"` + strings.Repeat("ü", 70000) + `","pattern":"cut off"}`,
	`{"description":"` + strings.Repeat("ab ", 30000) + `"}`,
	`{}`,
	`{"x":12,"y":0,"z":-0,"w":1.25E-7}`,
	`[{"name":"in an array","labels":["x"]}]`,
	`"just a string"`,
	`42`,
	`null`,
}

// TestSearchDocMatchesFunction: the search trigger (migration 32) writes
// for every stored object exactly the document object_search_doc (the
// function of migration 14) computes, for the cases above and for every
// object of the shared STIX test data as posted and compacted.
func TestSearchDocMatchesFunction(t *testing.T) {
	ctx := context.Background()
	u := freshSchema(t)
	db := open(t, u, postgres.Options{Migrate: true})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	raws := append([]string(nil), searchDocRaws...)
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "testdata", "stix")
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
		for _, o := range bundle.Objects {
			var compact bytes.Buffer
			if json.Compact(&compact, o) == nil {
				raws = append(raws, string(o), compact.String())
			}
		}
		return nil
	})
	if len(raws) < len(searchDocRaws)+100 {
		t.Logf("only %d objects: the shared STIX test data was not found at %s", len(raws), dir)
	}
	for _, coll := range []string{"c1", "c2"} {
		if err := db.Collections().Create(ctx, store.Collection{ID: coll, APIRoot: "shared", Title: coll, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		var objs []store.Object
		for i, raw := range raws {
			ty := "indicator"
			if i%2 == 1 {
				ty = "x-ünï"
			}
			objs = append(objs, store.Object{ID: fmt.Sprintf("%s--00000000-0000-4000-8000-%012d", ty, i), Type: ty, SpecVersion: "2.1",
				Version: t0, DateAdded: t0.Add(time.Duration(i) * time.Microsecond), Raw: []byte(raw)})
		}
		// One Put of them all, and one per case: the trigger runs per
		// statement, over one row or many.
		if coll == "c1" {
			if _, err := db.Objects().Put(ctx, coll, objs); err != nil {
				t.Fatal(err)
			}
		} else {
			for _, o := range objs[:len(searchDocRaws)] {
				if _, err := db.Objects().Put(ctx, coll, []store.Object{o}); err != nil {
					t.Fatalf("%.80q: %v", o.Raw, err)
				}
			}
		}
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored, indexed int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM objects), (SELECT count(*) FROM object_search)`).Scan(&stored, &indexed); err != nil {
		t.Fatal(err)
	}
	if want := len(raws) + len(searchDocRaws); stored != want || indexed != stored {
		t.Fatalf("%d objects stored, %d indexed; want %d of each", stored, indexed, want)
	}
	rows, err := conn.Query(ctx, `SELECT o.raw, f.doc::text, object_search_doc(o.coll, o.type, o.raw)::text
		FROM objects o JOIN object_search f ON f.seq = o.seq
		WHERE f.doc IS DISTINCT FROM object_search_doc(o.coll, o.type, o.raw)`)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	var got, want string
	n := 0
	if _, err := pgx.ForEachRow(rows, []any{&raw, &got, &want}, func() error {
		if n++; n <= 10 {
			t.Errorf("%.120q:\ntrigger  %.300s\nfunction %.300s", raw, got, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		t.Errorf("%d of %d documents differ", n, stored)
	}
	t.Logf("%d objects compared", stored)
}
