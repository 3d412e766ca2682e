package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// creditKeysVersion is the migration that keys agreement_credits by the
// stix_ids key (26); TestCreditKeysMigration builds a database one
// version before it.
var creditKeysVersion = func() int {
	for i, m := range migrations {
		if strings.Contains(m, "CREATE TABLE agreement_credits_v26") {
			return i + 1
		}
	}
	return 0
}()

const (
	ckAgreement = "agreement--credkeys"
	ckAlpha     = "party--alpha"
	ckBravo     = "party--bravo"
)

func ckID(n int) string { return fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", n) }

// ckFill writes, through the store's API, two parties' contributions
// under one agreement (each in its own collection, with fingerprints, a
// duplicate by content, credits for an id the other party gave first and
// for an id never stored), releases to both, reaches and a contest.
func ckFill(t *testing.T, db *DB, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.Parties().Create(ctx, store.Party{ID: ckAlpha, Name: "alpha", CreatedAt: t0}))
	must(db.Parties().Create(ctx, store.Party{ID: ckBravo, Name: "bravo", CreatedAt: t0}))
	must(db.Agreements().Create(ctx, store.AgreementRecord{ID: ckAgreement, PartyA: ckAlpha, PartyB: ckBravo, CreatedAt: t0}))
	coll := map[string]string{ckAlpha: "contrib-a", ckBravo: "contrib-b"}
	for p, c := range coll {
		must(db.Collections().Create(ctx, store.Collection{ID: c, APIRoot: ckAgreement, Title: c, CreatedAt: t0, Agreement: ckAgreement, Contributor: p}))
	}
	fp := func(n int) []byte {
		b := make([]byte, 32)
		b[0], b[6], b[7] = 0x80, byte(n>>8), byte(n)
		return b
	}
	fpOf := func(n int) int {
		if n == 320 {
			return 120 // the same content as 120
		}
		return n
	}
	give := func(party string, at time.Time, ns ...int) {
		t.Helper()
		var objs []store.Object
		var items []store.Contribution
		for _, n := range ns {
			id := ckID(n)
			if n < 900 { // 900 and up are credited without being stored
				objs = append(objs, keysObject(id, t0, at, map[string]any{"name": fmt.Sprint(n)}))
			}
			typ, tlp := "indicator", n%3-1
			items = append(items, store.Contribution{ObjectID: id, Weight: float64(1 + n%2), Fingerprint: fp(fpOf(n)), Type: typ, TLP: tlp, Version: t0})
		}
		must(db.Update(ctx, func(tx store.Handle) error {
			if len(objs) > 0 {
				if _, err := tx.Objects().Put(ctx, coll[party], objs); err != nil {
					return err
				}
			}
			_, err := tx.Credits().Contribute(ctx, ckAgreement, party, items, at)
			return err
		}))
	}
	var first []int
	for n := 1; n <= 120; n++ {
		first = append(first, n)
	}
	give(ckAlpha, t0.Add(time.Minute), first...)
	give(ckBravo, t0.Add(2*time.Minute), 500, 501, 5, 6, 901, 502) // 5, 6: alpha's, not released to bravo yet
	must(db.Update(ctx, func(tx store.Handle) error {
		if err := tx.Credits().SetReleased(ctx, ckAgreement, ckBravo, 40); err != nil {
			return err
		}
		ids, err := tx.Credits().Range(ctx, ckAgreement, ckAlpha, 1, 40)
		if err != nil {
			return err
		}
		if err := tx.Credits().Reach(ctx, ckAgreement, ckBravo, ckAlpha, ids); err != nil {
			return err
		}
		return tx.Credits().SetReleased(ctx, ckAgreement, ckAlpha, 3)
	}))
	// 320 has 120's content: no credit.
	give(ckAlpha, t0.Add(3*time.Minute), 121, 320, 902, 1)
	must(db.Credits().Contest(ctx, store.Contest{ID: "contest--1", AgreementID: ckAgreement, Contester: ckBravo, Contributor: ckAlpha,
		ObjectID: ckID(7), Weight: 2, Reason: "junk", Statement: []byte("{}"), FiledAt: t0.Add(4 * time.Minute), LedgerIndex: 9}))
	must(db.Credits().Contest(ctx, store.Contest{ID: "contest--2", AgreementID: ckAgreement, Contester: ckAlpha, Contributor: ckBravo,
		ObjectID: ckID(501), Weight: 2, Reason: "junk", Statement: []byte("{}"), FiledAt: t0.Add(4 * time.Minute), LedgerIndex: 10}))
	_, err := db.Credits().WithdrawContest(ctx, ckAgreement, "contest--2", t0.Add(5*time.Minute), []byte("{}"), 11)
	must(err)
}

// ckReads is every read of the credits written out: balances (all time
// and in a window), releases and their bounds, ranges, each credit, the
// tallies, contests, and the released reads of objects (pages and by id)
// and of search.
func ckReads(t *testing.T, db *DB, t0 time.Time) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	coll := map[string]string{ckAlpha: "contrib-a", ckBravo: "contrib-b"}
	for _, p := range []string{ckAlpha, ckBravo} {
		other := ckBravo
		if p == ckBravo {
			other = ckAlpha
		}
		for _, since := range []time.Time{{}, t0.Add(90 * time.Second), t0.Add(150 * time.Second)} {
			bal, err := db.Credits().Balance(ctx, ckAgreement, p, since)
			must(err)
			fmt.Fprintf(&b, "%s balance since %v: %+v\n", p, since.IsZero(), bal)
		}
		rel, err := db.Credits().Released(ctx, ckAgreement, p)
		must(err)
		bound, err := db.Credits().Bound(ctx, ckAgreement, p, other)
		must(err)
		fmt.Fprintf(&b, "%s released %d bound up to %d reach %d/%d\n", p, rel, bound.UpTo, micros(bound.Reach.DateAdded), bound.Reach.Seq)
		ids, err := db.Credits().Range(ctx, ckAgreement, p, 1, 1000)
		must(err)
		fmt.Fprintf(&b, "%s range %v\n", p, ids)
		for _, n := range []int{1, 5, 6, 7, 121, 320, 500, 501, 901, 902, 999} {
			c, err := db.Credits().Credit(ctx, ckAgreement, p, ckID(n))
			fmt.Fprintf(&b, "%s credit %d: %+v %v\n", p, n, c, err)
		}
		for _, upTo := range []int64{1, 40, 1000} {
			tl, err := db.Credits().Tally(ctx, ckAgreement, p, upTo)
			must(err)
			fmt.Fprintf(&b, "%s tally to %d: %+v\n", p, upTo, tl)
		}
		marked, err := db.Credits().Marked(ctx, ckAgreement, p)
		must(err)
		fmt.Fprintf(&b, "%s marked %v\n", p, marked)
		// What p reads of the other's contributions.
		if bound.UpTo > 0 {
			q := store.ObjectQuery{Collection: coll[other], Limit: 7, Released: &bound}
			for n := 0; ; n++ {
				pg, err := db.Objects().Query(ctx, q)
				must(err)
				fmt.Fprintf(&b, "%s reads page %d more=%v:", p, n, pg.More)
				for _, o := range pg.Objects {
					fmt.Fprintf(&b, " %d:%s", o.Seq, o.ID)
				}
				b.WriteString("\n")
				if !pg.More {
					break
				}
				last := pg.Objects[len(pg.Objects)-1]
				q.After = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
			}
			byID := store.ObjectQuery{Collection: coll[other], Limit: 50, Released: &bound,
				IDs: []string{ckID(1), ckID(7), ckID(40), ckID(41), ckID(500), ckID(999)}}
			pg, err := db.Objects().Query(ctx, byID)
			must(err)
			fmt.Fprintf(&b, "%s reads by id:", p)
			for _, o := range pg.Objects {
				fmt.Fprintf(&b, " %s", o.ID)
			}
			sp, err := db.Objects().Search(ctx, store.SearchQuery{Collection: coll[other], Limit: 100, Released: &bound})
			must(err)
			fmt.Fprintf(&b, "\n%s searches:", p)
			for _, o := range sp.Objects {
				fmt.Fprintf(&b, " %s", o.ID)
			}
			b.WriteString("\n")
		}
	}
	cs, err := db.Credits().Contests(ctx, ckAgreement)
	must(err)
	for _, c := range cs {
		fmt.Fprintf(&b, "contest %s %s %s %v %d\n", c.ID, c.Contributor, c.ObjectID, c.WithdrawnAt.IsZero(), c.WithdrawIndex)
	}
	return b.String()
}

// TestCreditKeysMigration: a database whose credits were written before
// migration 26 (keyed by object id) reads, after it, exactly as one
// written with credits keyed by stix_ids from the start — balances,
// releases, ranges, credits, tallies, contests, released reads — and both
// take the same writes afterwards. The old database is the new one's
// rows, table by table, loaded into the schema of the version before; one credited
// id never stored has no stix_ids key there, so the migration gives it one.
func TestCreditKeysMigration(t *testing.T) {
	if creditKeysVersion == 0 {
		t.Fatal("no migration keys agreement_credits by stix_ids")
	}
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

	freshDir := t.TempDir()
	fresh, err := Open(ctx, freshDir, Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	ckFill(t, fresh, t0)
	want := ckReads(t, fresh, t0)
	// The reference itself reads what was written.
	for _, s := range []string{
		"party--alpha released 3 bound up to 3",
		"party--bravo released 40 bound up to 40",
		"party--alpha credit 320: {ObjectID: PartyID: Ord:0", // same content as 120: no credit
		"party--alpha credit 902: {ObjectID:indicator--00000000-0000-4000-8000-000000000902 PartyID:party--alpha Ord:122",
		"party--bravo credit 5: {ObjectID:indicator--00000000-0000-4000-8000-000000000005 PartyID:party--bravo Ord:3",
		"Contested:true", "contest contest--2 party--bravo",
	} {
		if !strings.Contains(want, s) {
			t.Fatalf("the database written with keys does not read %q:\n%s", s, want)
		}
	}
	if !strings.Contains(want, "party--bravo reads page 5 more=false") {
		t.Fatalf("bravo does not read 40 released objects in pages of 7:\n%s", want)
	}

	// The old database: the version before, every table's rows copied from fresh.
	oldDir := t.TempDir()
	old := openAtVersion(t, oldDir, creditKeysVersion-1)
	fresh.Close()
	if _, err := old.w.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.w.ExecContext(ctx, `ATTACH DATABASE ? AS f`, filepath.Join(freshDir, FileName)); err != nil {
		t.Fatal(err)
	}
	rows, err := old.w.QueryContext(ctx, `SELECT name FROM main.sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'object_search%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	for _, table := range tables {
		var cols []string
		cr, err := old.w.QueryContext(ctx, `SELECT name FROM pragma_table_info(?, 'main')`, table)
		if err != nil {
			t.Fatal(err)
		}
		for cr.Next() {
			var c string
			if err := cr.Scan(&c); err != nil {
				t.Fatal(err)
			}
			cols = append(cols, c)
		}
		cr.Close()
		if table == "agreement_credits" && strings.Contains(strings.Join(cols, " "), "key") {
			t.Fatalf("agreement_credits at version %d already has a key column: %v", creditKeysVersion-1, cols)
		}
		list := strings.Join(cols, ", ")
		src := `f.` + table
		switch table { // since migration 34 credits name their agreement and party by integers, and carry their marks
		case "agreement_credits":
			src = `f.agreement_credits_named`
		case "credit_marks":
			src = `(SELECT agreement_id, party_id, ord, object_id, mark_type AS type, mark_tlp AS tlp, mark_version AS version
				FROM f.agreement_credits_named WHERE mark_type IS NOT NULL)`
		}
		if _, err := old.w.ExecContext(ctx, `INSERT OR REPLACE INTO main.`+table+`(`+list+`) SELECT `+list+` FROM `+src); err != nil {
			t.Fatalf("copying %s: %v", table, err)
		}
	}
	if res, err := old.w.ExecContext(ctx, `DELETE FROM stix_ids WHERE id = ?`, ckID(902)); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("the credited, never stored id has %d stix_ids rows in the reference, want 1", n)
	}
	var credits int
	if err := old.w.QueryRowContext(ctx, `SELECT count(*) FROM main.agreement_credits`).Scan(&credits); err != nil || credits < 120 {
		t.Fatalf("the old database holds %d credits (%v)", credits, err)
	}
	if _, err := old.w.ExecContext(ctx, `DETACH DATABASE f`); err != nil {
		t.Fatal(err)
	}
	old.Close()

	migrated, err := Open(ctx, oldDir, Options{Migrate: true})
	if err != nil {
		t.Fatalf("migrating: %v", err)
	}
	defer migrated.Close()
	var check string
	if err := migrated.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity check of the migrated database: %q, %v", check, err)
	}
	var after int
	if err := migrated.r.QueryRowContext(ctx, `SELECT count(*) FROM agreement_credits c JOIN stix_ids k ON k.key = c.key AND k.id = c.object_id`).Scan(&after); err != nil || after != credits {
		t.Fatalf("after the migration %d credits carry their id's key (%v), want all %d", after, err, credits)
	}
	if got := ckReads(t, migrated, t0); got != want {
		t.Fatalf("the migrated database reads differently:\n%s", firstDiff(got, want))
	}

	// Both take the same writes afterwards: new credits, a repeat, a
	// credit for an id the other gave, a contest, a wider release.
	fresh, err = Open(ctx, freshDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	for _, db := range []*DB{fresh, migrated} {
		if err := db.Update(ctx, func(tx store.Handle) error {
			var objs []store.Object
			var items []store.Contribution
			for _, n := range []int{122, 123, 1, 502, 902} {
				if n < 900 {
					objs = append(objs, keysObject(ckID(n), t0.Add(time.Hour), t0.Add(time.Hour), map[string]any{"name": "later"}))
				}
				items = append(items, store.Contribution{ObjectID: ckID(n), Weight: 1, Type: "indicator", TLP: 1, Version: t0.Add(time.Hour)})
			}
			if _, err := tx.Objects().Put(ctx, "contrib-a", objs); err != nil {
				return err
			}
			if _, err := tx.Credits().Contribute(ctx, ckAgreement, ckAlpha, items, t0.Add(time.Hour)); err != nil {
				return err
			}
			if err := tx.Credits().SetReleased(ctx, ckAgreement, ckBravo, 124); err != nil {
				return err
			}
			ids, err := tx.Credits().Range(ctx, ckAgreement, ckAlpha, 41, 124)
			if err != nil {
				return err
			}
			return tx.Credits().Reach(ctx, ckAgreement, ckBravo, ckAlpha, ids)
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.Credits().Contest(ctx, store.Contest{ID: "contest--3", AgreementID: ckAgreement, Contester: ckBravo, Contributor: ckAlpha,
			ObjectID: ckID(122), Weight: 1, Reason: "junk", Statement: []byte("{}"), FiledAt: t0.Add(2 * time.Hour), LedgerIndex: 12}); err != nil {
			t.Fatal(err)
		}
	}
	want = ckReads(t, fresh, t0)
	if !strings.Contains(want, "party--bravo released 124") || !strings.Contains(want, "contest contest--3") {
		t.Fatalf("the later writes do not show in the reference:\n%s", want)
	}
	if got := ckReads(t, migrated, t0); got != want {
		t.Fatalf("after the same writes the migrated database reads differently:\n%s", firstDiff(got, want))
	}
}
