package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	syncatomic "sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
	"golang.org/x/mod/sumdb/tlog"
)

func openGroupTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), t.TempDir(), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// group runs fns as concurrent Updates that queue, in order, behind a
// transaction held open until all of them wait, so they form one group. It
// calls queued (if not nil) once all wait, then returns each Update's error (or what it panicked with) and the
// transactions and members counted from the moment the group was released.
func group(t *testing.T, db *DB, ctxs []context.Context, queued func(), fns ...func(store.Handle) error) (errs []error, panics []any, delta store.CommitStats) {
	t.Helper()
	ctx := context.Background()
	holding, release := make(chan struct{}), make(chan struct{})
	gate := make(chan error, 1)
	go func() {
		gate <- db.Update(ctx, func(store.Handle) error { close(holding); <-release; return nil })
	}()
	<-holding
	errs, panics = make([]error, len(fns)), make([]any, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		c := ctx
		if ctxs != nil && ctxs[i] != nil {
			c = ctxs[i]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			errs[i] = db.Update(c, fn)
		}()
		// Queue them in order: the test cases depend on who runs first.
		for db.CommitStats().Waiting != int64(i+1) {
			time.Sleep(time.Millisecond)
		}
	}
	if queued != nil {
		queued()
	}
	before := db.CommitStats()
	close(release)
	if err := <-gate; err != nil {
		t.Fatalf("holding transaction: %v", err)
	}
	wg.Wait()
	after := db.CommitStats()
	return errs, panics, store.CommitStats{Transactions: after.Transactions - before.Transactions, Updates: after.Updates - before.Updates, Largest: after.Largest}
}

func addParty(name string) func(store.Handle) error {
	return func(tx store.Handle) error {
		return tx.Parties().Create(context.Background(), store.Party{ID: "party--" + name, Name: name, CreatedAt: time.Now()})
	}
}

func wantParties(t *testing.T, db *DB, present, absent []string) {
	t.Helper()
	for _, n := range present {
		if _, err := db.Parties().ByName(context.Background(), n); err != nil {
			t.Errorf("party %s: %v, want it stored", n, err)
		}
	}
	for _, n := range absent {
		if _, err := db.Parties().ByName(context.Background(), n); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("party %s: %v, want ErrNotFound", n, err)
		}
	}
}

// TestGroupCommitSharesOneTransaction: Updates that queue while the writer
// is busy commit together, once, and each sees what the ones before it
// wrote.
func TestGroupCommitSharesOneTransaction(t *testing.T) {
	db := openGroupTest(t)
	var fns []func(store.Handle) error
	var names []string
	for i := range 8 {
		name := fmt.Sprintf("p%d", i)
		names = append(names, name)
		fns = append(fns, func(tx store.Handle) error {
			if i > 0 {
				// The member before wrote its party in this same
				// uncommitted transaction.
				if _, err := tx.Parties().ByName(context.Background(), names[i-1]); err != nil {
					return fmt.Errorf("member %d does not see member %d's write: %w", i, i-1, err)
				}
			}
			return addParty(name)(tx)
		})
	}
	errs, _, d := group(t, db, nil, nil, fns...)
	for i, err := range errs {
		if err != nil {
			t.Errorf("member %d: %v", i, err)
		}
	}
	if d.Transactions != 1 || d.Updates != 8 {
		t.Errorf("8 queued Updates took %d transactions with %d members, want 1 with 8", d.Transactions, d.Updates)
	}
	wantParties(t, db, names, nil)
}

// TestGroupCommitMemberFailureIsItsOwn: in a shared transaction, a member
// that fails (its own error after writing, a constraint violation, a
// cancelled request, a nested Update) loses only its own writes.
func TestGroupCommitMemberFailureIsItsOwn(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	if err := db.Update(ctx, addParty("taken")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	cancelled, cancel := context.WithCancel(ctx)
	ctxs := []context.Context{nil, nil, nil, cancelled, nil, nil}
	errs, _, d := group(t, db, ctxs, cancel,
		addParty("a"),
		func(tx store.Handle) error { // writes, then fails
			if err := addParty("b")(tx); err != nil {
				return err
			}
			return boom
		},
		func(tx store.Handle) error { // writes, then hits a conflict
			if err := addParty("c")(tx); err != nil {
				return err
			}
			return tx.Parties().Create(ctx, store.Party{ID: "party--other", Name: "taken", CreatedAt: time.Now()})
		},
		addParty("d"), // its request is cancelled while it waits
		func(tx store.Handle) error { // asks for a second connection
			if err := addParty("e")(tx); err != nil {
				return err
			}
			return db.Update(ctx, addParty("e2"))
		},
		addParty("f"),
	)
	want := []error{nil, boom, store.ErrConflict, context.Canceled, store.ErrSecondConnection, nil}
	for i := range want {
		if (want[i] == nil) != (errs[i] == nil) || want[i] != nil && !errors.Is(errs[i], want[i]) {
			t.Errorf("member %d: %v, want %v", i, errs[i], want[i])
		}
	}
	if d.Transactions != 1 {
		t.Errorf("%d transactions, want 1", d.Transactions)
	}
	wantParties(t, db, []string{"a", "f", "taken"}, []string{"b", "c", "d", "e", "e2"})
}

// TestGroupCommitFailedCommitFailsEveryMember: when the shared COMMIT
// fails, every member gets the failure, none of their writes is kept, and
// the writer serves the next Update. A deferred foreign key, checked only
// at COMMIT, makes it fail.
func TestGroupCommitFailedCommitFailsEveryMember(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	errs, _, d := group(t, db, nil, nil,
		addParty("a"),
		func(tx store.Handle) error {
			h := tx.(handle)
			if _, err := h.w.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
				return err
			}
			_, err := h.w.ExecContext(ctx, `INSERT INTO tokens(id, party_id, hash, created_at) VALUES ('token--x', 'party--nobody', x'01', 1)`)
			return err
		},
		addParty("c"),
	)
	for i, err := range errs {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("member %d: %v, want the failed commit's error (a referenced record does not exist)", i, err)
		}
	}
	if d.Transactions != 1 {
		t.Errorf("%d transactions, want 1", d.Transactions)
	}
	wantParties(t, db, nil, []string{"a", "c"})
	if err := db.Update(ctx, addParty("after")); err != nil {
		t.Fatalf("the writer after a failed commit: %v", err)
	}
	wantParties(t, db, []string{"after"}, nil)
}

// TestGroupCommitLostTransactionRunsOthersAgain: when SQLite rolls the
// whole transaction back during one member's turn (as it does on an
// interrupt, a full disk or an I/O error; here the member rolls it back
// itself), the members before it run again in a new transaction and keep
// their writes; the member gets its own error.
func TestGroupCommitLostTransactionRunsOthersAgain(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	boom := errors.New("boom")
	var runsA, runsLoser syncatomic.Int32
	errs, _, d := group(t, db, nil, nil,
		func(tx store.Handle) error { runsA.Add(1); return addParty("a")(tx) },
		func(tx store.Handle) error {
			tx.(handle).w.ExecContext(ctx, `ROLLBACK`)
			return boom
		},
		addParty("c"),
		func(tx store.Handle) error { // loses it, reporting nothing
			runsLoser.Add(1)
			tx.(handle).w.ExecContext(ctx, `ROLLBACK`)
			return nil
		},
		addParty("e"),
	)
	if errs[0] != nil || errs[2] != nil || errs[4] != nil {
		t.Errorf("innocent members: %v, %v, %v; want nil", errs[0], errs[2], errs[4])
	}
	if !errors.Is(errs[1], boom) {
		t.Errorf("member that lost the transaction: %v, want its own error", errs[1])
	}
	if !errors.Is(errs[3], store.ErrUnavailable) || runsLoser.Load() != maxLosses+1 {
		t.Errorf("member that keeps losing the transaction silently: %v after %d runs, want ErrUnavailable after %d", errs[3], runsLoser.Load(), maxLosses+1)
	}
	if runsA.Load() < 2 {
		t.Errorf("member before the loss ran %d times, want again after the loss", runsA.Load())
	}
	if d.Transactions < 2 {
		t.Errorf("%d transactions, want a new one after the loss", d.Transactions)
	}
	wantParties(t, db, []string{"a", "c", "e"}, nil)
}

// TestGroupCommitPanicLeavesOthers: a member that panics panics in its own
// goroutine, with its writes undone; the rest of its group commits and the
// writer stays usable.
func TestGroupCommitPanicLeavesOthers(t *testing.T) {
	db := openGroupTest(t)
	errs, panics, _ := group(t, db, nil, nil,
		addParty("a"),
		func(tx store.Handle) error {
			if err := addParty("b")(tx); err != nil {
				return err
			}
			panic("member b")
		},
		addParty("c"),
	)
	if panics[1] != "member b" || panics[0] != nil || panics[2] != nil {
		t.Errorf("panics %v, want only member b's", panics)
	}
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("members a and c: %v, %v", errs[0], errs[2])
	}
	wantParties(t, db, []string{"a", "c"}, []string{"b"})
	if err := db.Update(context.Background(), addParty("after")); err != nil {
		t.Fatalf("the writer after a panic: %v", err)
	}
}

// TestGroupCommitLoneWriterCommitsAlone: with nobody else waiting, an
// Update starts at once and takes its own transaction (no timer holds it
// for company).
func TestGroupCommitLoneWriterCommitsAlone(t *testing.T) {
	db := openGroupTest(t)
	before := db.CommitStats()
	for i := range 3 {
		if err := db.Update(context.Background(), addParty(fmt.Sprint("solo", i))); err != nil {
			t.Fatal(err)
		}
	}
	after := db.CommitStats()
	if after.Transactions-before.Transactions != 3 || after.Updates-before.Updates != 3 {
		t.Errorf("3 sequential Updates: %d transactions, %d members; want 3 and 3", after.Transactions-before.Transactions, after.Updates-before.Updates)
	}
}

// TestPreparedStatementsAreReused: a statement a transaction ran unprepared
// is prepared once the writer is free and serves the next transactions
// (which still write what they should); reads keep theirs on the read pool.
func TestPreparedStatementsAreReused(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	const insert = `INSERT INTO parties(id, name, created_at) VALUES(?, ?, ?)`
	for i := range 3 {
		if err := db.Update(ctx, addParty(fmt.Sprint("prep", i))); err != nil {
			t.Fatal(err)
		}
		if i == 0 && db.commit.stmts.lookup(insert) == nil {
			t.Fatalf("the party INSERT was not prepared after its transaction")
		}
	}
	wantParties(t, db, []string{"prep0", "prep1", "prep2"}, nil)
	if _, err := db.Parties().Get(ctx, "party--prep1"); err != nil {
		t.Fatal(err)
	}
	db.reads.mu.Lock()
	n := len(db.reads.stmts)
	db.reads.mu.Unlock()
	if n == 0 {
		t.Errorf("reads prepared nothing on the read pool")
	}
}

// TestFullChunkStatementsAreKept: the multi-row statements of a full chunk
// (Put's INSERT, the stix_ids lookup and insert, the owner claim, the
// version lookup), past the general cache's bound on placeholders, are
// kept prepared after the first transaction that ran them, and later
// transactions that run them store and report what they should; a partial
// chunk's statement (one text per size) is not kept.
func TestFullChunkStatementsAreKept(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	coll := benchCollection(t, db)
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	put := func(objs []store.Object) []store.PutOutcome {
		t.Helper()
		var out []store.PutOutcome
		if err := db.Update(ctx, func(tx store.Handle) error {
			owners, err := tx.Objects().Claim(ctx, coll, "party--bench", objectIDs(objs))
			if err != nil {
				return err
			}
			if len(owners) != len(objectIDs(objs)) {
				return fmt.Errorf("claim: %d owners for %d ids", len(owners), len(objectIDs(objs)))
			}
			out, err = tx.Objects().Put(ctx, coll, objs)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	count := func(outs []store.PutOutcome, want store.PutOutcome) int {
		n := 0
		for _, o := range outs {
			if o == want {
				n++
			}
		}
		return n
	}
	first := benchObjects(0, 2*headChunk, added)
	if out := put(first); count(out, store.Added) != len(first) {
		t.Fatalf("first Put: %d of %d added", count(out, store.Added), len(first))
	}
	kept := map[string]string{
		"objects INSERT":   insertSQL(putChunk),
		"stix_ids INSERT":  createKeysSQL(headChunk),
		"id hashes INSERT": enterHashesSQL(headChunk),
		"stix_ids lookup":  lookupKeysSQL(headChunk),
		"owners INSERT":    `INSERT INTO object_owners(coll, key, party_id) VALUES (?, ?, ?)` + strings.Repeat(`, (?, ?, ?)`, headChunk-1) + ` ON CONFLICT(coll, key) DO NOTHING`,
	}
	for name, q := range kept {
		if db.commit.stmts.lookup(q) == nil {
			t.Errorf("%s of a full chunk was not kept prepared after its transaction", name)
		}
	}
	// Known ids: the version and owner lookups run, in full chunks, from
	// now on (new ids' owners are not read back).
	if out := put(first); count(out, store.Duplicate) != len(first) {
		t.Fatalf("the same batch again: %d of %d duplicates", count(out, store.Duplicate), len(first))
	}
	for name, q := range map[string]string{
		"version lookup":  `SELECT key, min(version), max(version) FROM objects WHERE coll = ? AND key IN (` + placeholders(headChunk) + `) GROUP BY key`,
		"stix_ids lookup": lookupKeysSQL(headChunk),
		"owners lookup":   `SELECT key, party_id FROM object_owners WHERE coll = ? AND key IN (` + placeholders(headChunk) + `)`,
	} {
		if db.commit.stmts.lookup(q) == nil {
			t.Errorf("the %s of a full chunk was not kept prepared", name)
		}
	}
	// New versions of the first half and new ids, through kept statements.
	later := append(benchObjects(0, headChunk, added), benchObjects(2*headChunk, putChunk+7, added)...)
	for i := range headChunk {
		later[i].Version = later[i].Version.Add(time.Hour)
	}
	if out := put(later); count(out, store.Added) != len(later) {
		t.Fatalf("new versions and new ids: %d of %d added", count(out, store.Added), len(later))
	}
	if db.commit.stmts.lookup(insertSQL(7)) != nil {
		t.Errorf("a partial chunk's INSERT was kept")
	}
	pg, err := db.Objects().Query(ctx, store.ObjectQuery{Collection: coll, IDs: []string{benchID(3)}, Versions: store.VersionFilter{All: true}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(pg.Objects) != 2 {
		t.Errorf("%s: %d versions stored, want 2", benchID(3), len(pg.Objects))
	}
	if n, err := db.Objects().Count(ctx, coll); err != nil || n != int64(2*headChunk+headChunk+putChunk+7) {
		t.Errorf("count: %d, %v; want %d", n, err, 2*headChunk+headChunk+putChunk+7)
	}
}

// TestKeyMemoWithinATurn: within one Update the owner claim's keys serve
// Put without asking stix_ids again (a key renamed behind the memo's back
// is still the one Put stores under), and a second Put of the same ids in
// the same turn, its keys no longer new, still finds the versions the
// first stored (first/last flags and duplicates right). A later Update
// asks stix_ids afresh.
func TestKeyMemoWithinATurn(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	coll := benchCollection(t, db)
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	objs := benchObjects(0, 3, added)
	newer := benchObjects(0, 3, added)
	for i := range newer {
		newer[i].Version = newer[i].Version.Add(time.Hour)
	}
	var claimed int64
	if err := db.Update(ctx, func(tx store.Handle) error {
		if _, err := tx.Objects().Claim(ctx, coll, "party--bench", objectIDs(objs)); err != nil {
			return err
		}
		w := tx.(handle).w
		if err := w.QueryRowContext(ctx, `SELECT key FROM stix_ids WHERE id = ?`, objs[0].ID).Scan(&claimed); err != nil {
			return err
		}
		// Only the memo still knows objs[0]'s key by its id.
		if _, err := w.ExecContext(ctx, `UPDATE stix_ids SET id = id || '-renamed' WHERE key = ?`, claimed); err != nil {
			return err
		}
		if out, err := tx.Objects().Put(ctx, coll, objs); err != nil || out[0] != store.Added {
			return fmt.Errorf("first Put: %v %v", out, err)
		}
		if out, err := tx.Objects().Put(ctx, coll, append(newer, objs[1])); err != nil ||
			out[0] != store.Added || out[3] != store.Duplicate {
			return fmt.Errorf("second Put: %v %v", out, err)
		}
		_, err := w.ExecContext(ctx, `UPDATE stix_ids SET id = ? WHERE key = ?`, objs[0].ID, claimed)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var key, versions, firsts, lasts int64
	if err := db.w.QueryRowContext(ctx, `SELECT min(key), count(*), sum(is_first), sum(is_last) FROM objects WHERE id = ?`, objs[0].ID).
		Scan(&key, &versions, &firsts, &lasts); err != nil {
		t.Fatal(err)
	}
	if key != claimed {
		t.Errorf("Put stored %s under key %d, the claim made %d: it asked stix_ids again", objs[0].ID, key, claimed)
	}
	if versions != 2 || firsts != 1 || lasts != 1 {
		t.Errorf("%s: %d versions, %d flagged first, %d last; want 2, 1, 1", objs[0].ID, versions, firsts, lasts)
	}
	// The next Update has a memo of its own.
	if err := db.Update(ctx, func(tx store.Handle) error {
		out, err := tx.Objects().Put(ctx, coll, newer)
		if err == nil && out[2] != store.Duplicate {
			err = fmt.Errorf("outcomes %v, want duplicates", out)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestWriterKeepsItsOwnStatementsPrepared: the statements the writer runs
// around its members' turns (the id filter's largest key at the start and
// end of a transaction) and those a member prepares itself (the ledger's
// inserts) are kept prepared after a transaction, like the members' other
// statements, and work through the kept statement in the next one; a
// kept statement a member closed stays usable.
func TestWriterKeepsItsOwnStatementsPrepared(t *testing.T) {
	db, coll := filterTest(t)
	ctx := context.Background()
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	writeLedger := func(first int64, n int) {
		t.Helper()
		entries := make([][]byte, n)
		for i := range entries {
			entries[i] = []byte(fmt.Sprintf("entry %d", first+int64(i)))
		}
		hashes := make([]tlog.Hash, tlog.StoredHashCount(first+int64(n))-tlog.StoredHashCount(first))
		if err := db.Update(ctx, func(tx store.Handle) error {
			return tx.Ledger().WriteEntries(ctx, first, entries, hashes, first+int64(n))
		}); err != nil {
			t.Fatal(err)
		}
	}
	putIn(t, db, coll, benchObjects(0, 5, added)) // builds the id filter
	writeLedger(0, 2)
	putIn(t, db, coll, benchObjects(5, 5, added))
	for name, q := range map[string]string{
		"the largest key":   `SELECT coalesce(max(key), 0) FROM stix_ids`,
		"a ledger entry":    `INSERT INTO ledger_entries(idx, data) VALUES (?, ?)`,
		"a ledger hash":     `INSERT INTO ledger_hashes(idx, hash) VALUES (?, ?)`,
		"the ledger's size": `UPDATE ledger_size SET size = ? WHERE id = 1 AND size = ?`,
	} {
		if db.commit.stmts.lookup(q) == nil {
			t.Errorf("the statement of %s was not kept prepared", name)
		}
	}
	// Twice more through the kept statements, which the first of these
	// closed at its end.
	writeLedger(2, 3)
	writeLedger(5, 1)
	var n int64
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM ledger_entries`).Scan(&n); err != nil || n != 6 {
		t.Fatalf("%d ledger entries (%v), want 6", n, err)
	}
	putIn(t, db, coll, benchObjects(10, 5, added))
	for i := range 15 {
		if k := keysOf(t, db, benchID(i)); k != 1 {
			t.Errorf("id %d has %d keys, want 1", i, k)
		}
	}
}
