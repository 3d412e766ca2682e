package sqlite

import (
	"context"
	"testing"
)

// TestSearchColumnsParseOnce: migration 15's trigger (searchColumnsJSONB,
// one JSON parse per object) indexes exactly what migration 14's
// (searchColumns, one parse per json_* call) did, for objects with every
// member the index reads, with none, with members of unexpected types,
// and for text that is not JSON.
func TestSearchColumnsParseOnce(t *testing.T) {
	ctx := context.Background()
	db := openDefault(t, t.TempDir())
	defer db.Close()
	raws := []string{
		`{"id":"malware--1","name":"Emotet","aliases":["Geodo","Heodo"],"description":"Banking trojan, then loader.","labels":["botnet","trojan"],"object_marking_refs":["marking-definition--x"]}`,
		`{"id":"indicator--2","name":"C2 10.0.0.1","pattern":"[ipv4-addr:value = '10.0.0.1']","granular_markings":[{"marking_ref":"marking-definition--g","selectors":["name"]},{"lang":"fr","selectors":["description"]}]}`,
		`{"id":"relationship--3","source_ref":"malware--1","target_ref":"tool--3"}`,
		`{"id":"sighting--4","sighting_of_ref":"indicator--2","observed_data_refs":["observed-data--5"],"where_sighted_refs":["identity--6","identity--7"]}`,
		`{"id":"report--8","name":"Ünïcödé — naïve","object_refs":["malware--1","indicator--2"],"labels":"not-a-list","aliases":7}`,
		`{"id":"x--9","name":12,"description":null,"pattern":true,"labels":[1,"two",{"three":3}]}`,
		`{}`,
		`[1,2,3]`,
		`not json at all`,
		``,
	}
	for _, raw := range raws {
		var old, oldFacets, now, nowFacets string
		if err := db.w.QueryRowContext(ctx, `SELECT `+searchColumns+` FROM (SELECT 7 AS k, 'indicator' AS ty, CAST(? AS TEXT) AS t)`, []byte(raw)).Scan(&old, &oldFacets); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if err := db.w.QueryRowContext(ctx, `SELECT `+searchColumnsJSONB+` FROM (SELECT 7 AS k, 'indicator' AS ty,
			CASE WHEN json_valid(CAST(? AS TEXT)) THEN jsonb(CAST(? AS TEXT)) END AS j)`, []byte(raw), []byte(raw)).Scan(&now, &nowFacets); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if old != now || oldFacets != nowFacets {
			t.Errorf("%s:\nmigration 14: %q %q\nmigration 15: %q %q", raw, old, oldFacets, now, nowFacets)
		}
	}
}
