package sqlite

import (
	"context"
	"strings"
	"testing"
)

// TestIDLookupsReadNoWholeTable: every statement that finds ids' keys
// reaches stix_ids by key from the hash tables' primary keys, never by
// walking a table: the plan of each names no SCAN of those tables.
func TestIDLookupsReadNoWholeTable(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir(), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, q := range map[string]string{
		"lookup of 3 ids":  lookupKeysSQL(3),
		"key of one id":    `SELECT ` + keyOfID,
		"owner of one id":  `SELECT o.party_id FROM object_owners o JOIN collections c ON c.pk = o.coll WHERE c.id = 'c' AND o.key = ` + keyOfID,
		"credit of one id": `SELECT ord FROM agreement_credits WHERE ag = ` + creditName + ` AND key = ` + keyOfID + ` AND pa = ` + creditName,
	} {
		args := make([]any, strings.Count(q, "?"))
		for i := range args {
			args[i] = int64(i)
		}
		rows, err := db.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, "stix_id_hashes") {
			t.Errorf("%s: the plan does not read the hash tables:\n%s", name, text)
		}
		for _, line := range plan {
			if strings.HasPrefix(line, "SCAN ") && (strings.Contains(line, "stix_id") || strings.HasPrefix(line, "SCAN s")) {
				t.Errorf("%s: walks a table: %q in\n%s", name, line, text)
			}
		}
	}
}
