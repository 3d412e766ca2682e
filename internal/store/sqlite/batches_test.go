package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// TestCreditBatches checks a rolling window's balance read from
// credit_batches (migration 36) when the clock went back between two
// calls, and that the migration's batches of credits stored before (runs
// of consecutive ordinals with one time) read the same.
func TestCreditBatches(t *testing.T) {
	ctx := context.Background()
	ag := "agreement--batches"
	db, _, _, t0 := agreementDB(t, ag)
	n := 0
	give := func(party string, at time.Time, weights ...float64) {
		t.Helper()
		var items []store.Contribution
		for _, w := range weights {
			n++
			items = append(items, store.Contribution{ObjectID: fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", n), Weight: w})
		}
		if err := db.Update(ctx, func(tx store.Handle) error {
			_, err := tx.Credits().Contribute(ctx, ag, party, items, at)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	give("party--alpha", t0.Add(10*time.Minute), 1, 2)
	give("party--bravo", t0.Add(10*time.Minute), 100)
	give("party--alpha", t0.Add(5*time.Minute), 4, 8) // the clock went back
	give("party--alpha", t0.Add(10*time.Minute), 16)  // the same time as the first call
	give("party--alpha", t0.Add(20*time.Minute), 32)
	want := map[time.Duration]float64{1: 63, 5 * time.Minute: 63, 6 * time.Minute: 51, 10 * time.Minute: 51, 11 * time.Minute: 32, 21 * time.Minute: 0}
	read := func() string {
		var b strings.Builder
		for _, d := range []time.Duration{1, 5 * time.Minute, 6 * time.Minute, 10 * time.Minute, 11 * time.Minute, 21 * time.Minute} {
			bal, err := db.Credits().Balance(ctx, ag, "party--alpha", t0.Add(d))
			if err != nil {
				t.Fatal(err)
			}
			if bal.Credits != want[d] {
				t.Errorf("balance since %v = %v, want %v", d, bal.Credits, want[d])
			}
			fmt.Fprintf(&b, "%v %+v\n", d, bal)
		}
		return b.String()
	}
	before := read()
	var m string
	for _, s := range migrations {
		if strings.Contains(s, "CREATE TABLE credit_batches") {
			m = s[strings.Index(s, "INSERT INTO credit_batches"):strings.Index(s, "DROP INDEX")]
		}
	}
	if m == "" {
		t.Fatal("no migration makes credit_batches")
	}
	var rows int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM credit_batches`).Scan(&rows); err != nil || rows != 5 {
		t.Fatalf("%d batches (%v), want one per call: 5", rows, err)
	}
	if _, err := db.w.ExecContext(ctx, `DELETE FROM credit_batches`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM credit_batches`).Scan(&rows); err != nil || rows != 5 {
		t.Fatalf("the migration made %d batches (%v), want 5", rows, err)
	}
	if after := read(); after != before {
		t.Fatalf("balances from the migration's batches:\n%s\nfrom Contribute's:\n%s", after, before)
	}
}
