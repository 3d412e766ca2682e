// Package storetest is the one test suite every store backend must pass.
// Backends call Run from their own tests with a function that opens a fresh,
// empty, migrated store; the suite drives the store.Store interfaces only.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// Opener returns a new, empty, migrated store, closed by the suite's cleanup.
type Opener func(t *testing.T) store.Store

// Run runs every contract test against the backend.
func Run(t *testing.T, open Opener) { run(t, open, false) }

// RunParallel is Run with the contract tests running in parallel, each on
// its own store: for a backend whose stores share nothing, where the
// suite under -race would otherwise take most of go test's timeout
// (SQLite's, which is Go code the race detector instruments). Whatever
// the caller sets for the whole run it must undo in t.Cleanup, not with
// defer: parallel subtests run after the caller's function returns.
func RunParallel(t *testing.T, open Opener) { run(t, open, true) }

func run(t *testing.T, open Opener, parallel bool) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Parties", testParties},
		{"Tokens", testTokens},
		{"TokenExpiryAndUse", testTokenExpiryAndUse},
		{"Collections", testCollections},
		{"CollectionKinds", testCollectionKinds},
		{"ObjectVersions", testObjectVersions},
		{"ObjectQueryFilters", testObjectQueryFilters},
		{"ObjectPagination", testObjectPagination},
		{"ObjectQueryRawOnly", testObjectQueryRawOnly},
		{"ObjectDelete", testObjectDelete},
		{"ObjectOwners", testObjectOwners},
		{"Search", testSearch},
		{"SearchReleased", testSearchReleased},
		{"UpdateRollsBack", testUpdateRollsBack},
		{"Statuses", testStatuses},
		{"Settings", testSettings},
		{"ConcurrentPut", testConcurrentPut},
		{"Keys", testKeys},
		{"Agreements", testAgreements},
		{"Credits", testCredits},
		{"BalanceIsOneSnapshot", testBalanceIsOneSnapshot},
		{"ReleasedReach", testReleasedReach},
		{"ContributeBatch", testContributeBatch},
		{"Handovers", testHandovers},
		{"HandoversDue", testHandoversDue},
		{"DepositRollsBack", testDepositRollsBack},
		{"Requests", testRequests},
		{"Events", testEvents},
		{"Matches", testMatches},
		{"AgreementLockSerializes", testAgreementLockSerializes},
		{"ContributeByContent", testContributeByContent},
		{"ContributeByContentAcrossCalls", testContributeByContentAcrossCalls},
		{"ContributeNewIDsInOneTurn", testContributeNewIDsInOneTurn},
		{"Contests", testContests},
		{"Verifications", testVerifications},
		{"Nodes", testNodes},
		{"Federation", testFederation},
		{"PeerLogs", testPeerLogs},
		{"HeldCases", testHeldCases},
		{"DepositParts", testDepositParts},
		{"GradualHandovers", testGradual},
		{"Mirrors", testMirrors},
		{"Tallies", testTallies},
		{"ReportSignatures", testReportSignatures},
		{"LedgerConcurrentAppend", testLedgerConcurrentAppend},
		{"LedgerRollback", testLedgerRollback},
		{"SecondConnectionRefused", testSecondConnectionRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			st := open(t)
			t.Cleanup(func() { st.Close() })
			tc.fn(t, st)
		})
	}
	t.Run("Ledger", func(t *testing.T) {
		if parallel {
			t.Parallel()
		}
		RunLedger(t, open)
	})
}

var ctx = context.Background()

// t0 is a fixed base time at microsecond precision, as stores keep it.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

func mustParty(t *testing.T, st store.Handle, name string) store.Party {
	t.Helper()
	p := store.Party{ID: "party--" + name, Name: name, CreatedAt: t0}
	if err := st.Parties().Create(ctx, p); err != nil {
		t.Fatalf("create party %s: %v", name, err)
	}
	return p
}

func mustCollection(t *testing.T, st store.Handle, id string, readers, writers []string) store.Collection {
	t.Helper()
	c := store.Collection{ID: id, APIRoot: "shared", Title: "T " + id, CreatedAt: t0, Readers: readers, Writers: writers}
	if err := st.Collections().Create(ctx, c); err != nil {
		t.Fatalf("create collection %s: %v", id, err)
	}
	return c
}

func testParties(t *testing.T, st store.Store) {
	a := mustParty(t, st, "alpha")
	mustParty(t, st, "bravo")
	got, err := st.Parties().Get(ctx, a.ID)
	if err != nil || got != a {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, a)
	}
	got, err = st.Parties().ByName(ctx, "alpha")
	if err != nil || got != a {
		t.Fatalf("ByName = %+v, %v", got, err)
	}
	if _, err := st.Parties().Get(ctx, "party--nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get missing: %v, want ErrNotFound", err)
	}
	if err := st.Parties().Create(ctx, store.Party{ID: "party--other", Name: "alpha", CreatedAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate name: %v, want ErrConflict", err)
	}
	list, err := st.Parties().List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "bravo" {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func testTokens(t *testing.T, st store.Store) {
	a := mustParty(t, st, "alpha")
	tok := store.Token{ID: "tok1", PartyID: a.ID, Hash: [32]byte{1, 2, 3}, Label: "laptop", CreatedAt: t0}
	if err := st.Tokens().Create(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := st.Tokens().ByHash(ctx, tok.Hash)
	if err != nil || got != tok {
		t.Fatalf("ByHash = %+v, %v; want %+v", got, err, tok)
	}
	if _, err := st.Tokens().ByHash(ctx, [32]byte{9}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	if err := st.Tokens().Create(ctx, store.Token{ID: "tok2", PartyID: "party--ghost", Hash: [32]byte{7}, CreatedAt: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token for missing party: %v, want ErrNotFound", err)
	}
	if err := st.Tokens().Create(ctx, store.Token{ID: "tok3", PartyID: a.ID, Hash: tok.Hash, CreatedAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate hash: %v, want ErrConflict", err)
	}
	rev := t0.Add(time.Hour)
	if err := st.Tokens().Revoke(ctx, "tok1", rev); err != nil {
		t.Fatal(err)
	}
	if err := st.Tokens().Revoke(ctx, "tok1", rev.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ = st.Tokens().ByHash(ctx, tok.Hash)
	if !got.RevokedAt.Equal(rev) {
		t.Fatalf("RevokedAt = %v, want first revocation %v", got.RevokedAt, rev)
	}
	if err := st.Tokens().Revoke(ctx, "nope", rev); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	list, err := st.Tokens().ListByParty(ctx, a.ID)
	if err != nil || len(list) != 1 || list[0].ID != "tok1" {
		t.Fatalf("ListByParty = %+v, %v", list, err)
	}
}

// testTokenExpiryAndUse: expiry is stored as given; Touch records the last
// use and never moves it back.
func testTokenExpiryAndUse(t *testing.T, st store.Store) {
	a := mustParty(t, st, "alpha")
	exp := t0.Add(90 * 24 * time.Hour)
	tok := store.Token{ID: "tok1", PartyID: a.ID, Hash: [32]byte{4}, CreatedAt: t0, ExpiresAt: exp}
	if err := st.Tokens().Create(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := st.Tokens().ByHash(ctx, tok.Hash)
	if err != nil || !got.ExpiresAt.Equal(exp) || !got.LastUsedAt.IsZero() {
		t.Fatalf("ByHash = %+v, %v; want expiry %v and no use", got, err, exp)
	}
	used := t0.Add(time.Hour + 123*time.Microsecond)
	if err := st.Tokens().Touch(ctx, "tok1", used); err != nil {
		t.Fatal(err)
	}
	if err := st.Tokens().Touch(ctx, "tok1", used.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	list, err := st.Tokens().ListByParty(ctx, a.ID)
	if err != nil || len(list) != 1 || !list[0].LastUsedAt.Equal(used) || !list[0].ExpiresAt.Equal(exp) {
		t.Fatalf("ListByParty = %+v, %v; want last use %v", list, err, used)
	}
	if err := st.Tokens().Touch(ctx, "nope", used); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Touch of an unknown token: %v, want ErrNotFound", err)
	}
}

func testCollections(t *testing.T, st store.Store) {
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	c := mustCollection(t, st, "c1", []string{a.ID, b.ID}, []string{a.ID})
	got, err := st.Collections().Get(ctx, "shared", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.Title != c.Title || len(got.Readers) != 2 || len(got.Writers) != 1 || got.Writers[0] != a.ID {
		t.Fatalf("Get = %+v", got)
	}
	if _, err := st.Collections().Get(ctx, "other-root", "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("collection in another root: %v, want ErrNotFound", err)
	}
	err = st.Collections().Create(ctx, store.Collection{ID: "c2", APIRoot: "shared", Title: "x", CreatedAt: t0, Readers: []string{"party--ghost"}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("collection with unknown reader: %v, want ErrNotFound", err)
	}
	mustCollection(t, st, "c3", nil, nil)
	list, err := st.Collections().List(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	if fmt.Sprint(ids) != "[c1 c3]" {
		t.Fatalf("List ids = %v, want [c1 c3] (c2 must not be half-created)", ids)
	}
	roots, err := st.Collections().APIRoots(ctx)
	if err != nil || fmt.Sprint(roots) != "[shared]" {
		t.Fatalf("APIRoots = %v, %v", roots, err)
	}
}

func obj(id string, version time.Time, added time.Time) store.Object {
	typ := id[:len(id)-len("--00000000-0000-4000-8000-000000000000")]
	return store.Object{ID: id, Type: typ, SpecVersion: "2.1", Version: version, DateAdded: added,
		Raw: []byte(fmt.Sprintf(`{"id":%q,"modified":%q}`, id, version.Format(time.RFC3339Nano)))}
}

func uid(typ string, n int) string {
	return fmt.Sprintf("%s--00000000-0000-4000-8000-%012d", typ, n)
}

func ids(p store.Page) string {
	var s []string
	for _, o := range p.Objects {
		s = append(s, fmt.Sprintf("%s@%d", o.ID[len(o.ID)-2:], o.Version.Sub(t0)/time.Second))
	}
	return fmt.Sprint(s)
}

func testObjectVersions(t *testing.T, st store.Store) {
	mustCollection(t, st, "c", nil, nil)
	id := uid("indicator", 1)
	put := func(v int, added int) store.PutOutcome {
		t.Helper()
		out, err := st.Objects().Put(ctx, "c", []store.Object{obj(id, t0.Add(time.Duration(v)*time.Second), t0.Add(time.Duration(added)*time.Second))})
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	if put(2, 1) != store.Added || put(3, 2) != store.Added || put(1, 3) != store.Added {
		t.Fatal("new versions must be Added")
	}
	if put(2, 4) != store.Duplicate {
		t.Fatal("same id and version must be Duplicate")
	}
	q := func(v store.VersionFilter) string {
		t.Helper()
		p, err := st.Objects().Query(ctx, store.ObjectQuery{Collection: "c", Versions: v, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return ids(p)
	}
	if got := q(store.VersionFilter{}); got != "[01@3]" {
		t.Errorf("default (last) = %s", got)
	}
	if got := q(store.VersionFilter{First: true}); got != "[01@1]" {
		t.Errorf("first = %s", got)
	}
	if got := q(store.VersionFilter{All: true}); got != "[01@2 01@3 01@1]" {
		t.Errorf("all (date-added order) = %s", got)
	}
	if got := q(store.VersionFilter{At: []time.Time{t0.Add(2 * time.Second)}}); got != "[01@2]" {
		t.Errorf("at = %s", got)
	}
	if got := q(store.VersionFilter{First: true, Last: true}); got != "[01@3 01@1]" {
		t.Errorf("first,last = %s", got)
	}
	if n, err := st.Objects().Count(ctx, "c"); err != nil || n != 3 {
		t.Errorf("Count = %d, %v", n, err)
	}
	if _, err := st.Objects().Put(ctx, "nope", []store.Object{obj(id, t0, t0)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Put into missing collection: %v", err)
	}
}

func testObjectQueryFilters(t *testing.T, st store.Store) {
	mustCollection(t, st, "c", nil, nil)
	mustCollection(t, st, "other", nil, nil)
	var batch []store.Object
	for i := 1; i <= 6; i++ {
		typ := "indicator"
		if i%2 == 0 {
			typ = "malware"
		}
		o := obj(uid(typ, i), t0.Add(time.Duration(i)*time.Second), t0.Add(time.Duration(i)*time.Second))
		if i == 6 {
			o.SpecVersion = "2.0"
		}
		batch = append(batch, o)
	}
	if _, err := st.Objects().Put(ctx, "c", batch); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Objects().Put(ctx, "other", []store.Object{obj(uid("indicator", 9), t0, t0)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		q    store.ObjectQuery
		want string
	}{
		{"all", store.ObjectQuery{}, "[01@1 02@2 03@3 04@4 05@5 06@6]"},
		{"type", store.ObjectQuery{Types: []string{"malware"}}, "[02@2 04@4 06@6]"},
		{"types", store.ObjectQuery{Types: []string{"malware", "indicator"}}, "[01@1 02@2 03@3 04@4 05@5 06@6]"},
		{"id", store.ObjectQuery{IDs: []string{uid("indicator", 3), uid("malware", 4)}}, "[03@3 04@4]"},
		{"id and type", store.ObjectQuery{IDs: []string{uid("indicator", 3)}, Types: []string{"malware"}}, "[]"},
		{"spec", store.ObjectQuery{SpecVersions: []string{"2.0"}}, "[06@6]"},
		{"added_after", store.ObjectQuery{AddedAfter: t0.Add(4 * time.Second)}, "[05@5 06@6]"},
		{"unknown id", store.ObjectQuery{IDs: []string{uid("indicator", 9)}}, "[]"},
	}
	for _, tc := range cases {
		tc.q.Collection, tc.q.Limit = "c", 100
		p, err := st.Objects().Query(ctx, tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := ids(p); got != tc.want || p.More {
			t.Errorf("%s: got %s more=%v, want %s", tc.name, got, p.More, tc.want)
		}
	}
	if _, err := st.Objects().Query(ctx, store.ObjectQuery{Collection: "missing", Limit: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("query of missing collection: %v, want ErrNotFound", err)
	}
}

// testObjectPagination walks pages across objects added at the same
// microsecond: the Seq tie-breaker must neither skip nor repeat any.
func testObjectPagination(t *testing.T, st store.Store) {
	mustCollection(t, st, "c", nil, nil)
	const n = 25
	var batch []store.Object
	for i := 0; i < n; i++ {
		added := t0.Add(time.Duration(i/5) * time.Second) // five objects per timestamp
		batch = append(batch, obj(uid("indicator", i), t0, added))
	}
	if _, err := st.Objects().Put(ctx, "c", batch); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 3, 5, 7, 25, 26} {
		seen := map[string]bool{}
		var after store.Position
		pages := 0
		for {
			p, err := st.Objects().Query(ctx, store.ObjectQuery{Collection: "c", After: after, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, o := range p.Objects {
				if seen[o.ID] {
					t.Fatalf("limit %d: %s returned twice", limit, o.ID)
				}
				seen[o.ID] = true
			}
			if len(p.Objects) == 0 {
				break
			}
			last := p.Objects[len(p.Objects)-1]
			after = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
			if !p.More {
				break
			}
			if pages > n+2 {
				t.Fatalf("limit %d: pagination does not end", limit)
			}
		}
		if len(seen) != n {
			t.Fatalf("limit %d: saw %d objects, want %d", limit, len(seen), n)
		}
		if want := (n + limit - 1) / limit; pages != want {
			t.Errorf("limit %d: %d pages, want %d (More must be exact)", limit, pages, want)
		}
	}
}

// testObjectQueryRawOnly: a RawOnly query returns the same objects, pages
// and positions as a full one, with only Seq, DateAdded and Raw filled.
func testObjectQueryRawOnly(t *testing.T, st store.Store) {
	mustCollection(t, st, "c", nil, nil)
	var batch []store.Object
	for i := range 12 {
		o := obj(uid("indicator", i), t0.Add(time.Duration(i)*time.Minute), t0.Add(time.Duration(i/3)*time.Second))
		if i%4 == 0 {
			o = obj(uid("malware", i), t0, t0.Add(time.Duration(i/3)*time.Second))
		}
		batch = append(batch, o)
	}
	if _, err := st.Objects().Put(ctx, "c", batch); err != nil {
		t.Fatal(err)
	}
	first, err := st.Objects().Query(ctx, store.ObjectQuery{Collection: "c", Limit: 1})
	if err != nil || len(first.Objects) != 1 {
		t.Fatalf("first object: %+v, %v", first, err)
	}
	for _, q := range []store.ObjectQuery{
		{Collection: "c", Limit: 5},
		{Collection: "c", Limit: 100},
		{Collection: "c", Limit: 4, Types: []string{"indicator"}},
		{Collection: "c", Limit: 3, IDs: []string{uid("indicator", 1), uid("malware", 4), uid("indicator", 7)}},
		{Collection: "c", Limit: 4, After: store.Position{DateAdded: first.Objects[0].DateAdded, Seq: first.Objects[0].Seq}},
	} {
		full, err := st.Objects().Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		q.RawOnly = true
		raw, err := st.Objects().Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(full.Objects) == 0 || len(raw.Objects) != len(full.Objects) || raw.More != full.More {
			t.Fatalf("%+v: raw-only %d objects (more %v), full %d (more %v)", q, len(raw.Objects), raw.More, len(full.Objects), full.More)
		}
		for i, o := range raw.Objects {
			f := full.Objects[i]
			if o.Seq != f.Seq || !o.DateAdded.Equal(f.DateAdded) || string(o.Raw) != string(f.Raw) {
				t.Fatalf("%+v: object %d raw-only seq %d added %s %s, full seq %d added %s %s", q, i, o.Seq, o.DateAdded, o.Raw, f.Seq, f.DateAdded, f.Raw)
			}
			if o.ID != "" || o.Type != "" || o.SpecVersion != "" || !o.Version.IsZero() {
				t.Fatalf("%+v: raw-only object %d has more than it should: %+v", q, i, o)
			}
		}
	}
}

func testObjectDelete(t *testing.T, st store.Store) {
	mustCollection(t, st, "c", nil, nil)
	id := uid("indicator", 1)
	var batch []store.Object
	for v := 1; v <= 3; v++ {
		batch = append(batch, obj(id, t0.Add(time.Duration(v)*time.Second), t0.Add(time.Duration(v)*time.Second)))
	}
	if _, err := st.Objects().Put(ctx, "c", batch); err != nil {
		t.Fatal(err)
	}
	n, err := st.Objects().Delete(ctx, "c", id, store.VersionFilter{Last: true}, nil)
	if err != nil || n != 1 {
		t.Fatalf("delete last = %d, %v", n, err)
	}
	p, _ := st.Objects().Query(ctx, store.ObjectQuery{Collection: "c", Limit: 10})
	if got := ids(p); got != "[01@2]" {
		t.Fatalf("after deleting last, last = %s; want version 2 promoted", got)
	}
	n, err = st.Objects().Delete(ctx, "c", id, store.VersionFilter{All: true}, nil)
	if err != nil || n != 2 {
		t.Fatalf("delete all = %d, %v", n, err)
	}
	if n, _ := st.Objects().Count(ctx, "c"); n != 0 {
		t.Fatalf("count after delete = %d", n)
	}
}

// testObjectOwners: the first claim of an id in a collection wins for good;
// later claims by anyone report the first owner; ownership is per
// collection and survives deleting every version; a claim rolled back
// with its transaction leaves nothing.
func testObjectOwners(t *testing.T, st store.Store) {
	a, b := mustParty(t, st, "alpha"), mustParty(t, st, "bravo")
	mustCollection(t, st, "c", nil, []string{a.ID, b.ID})
	mustCollection(t, st, "d", nil, []string{a.ID, b.ID})
	x, y, z := uid("indicator", 1), uid("indicator", 2), uid("indicator", 3)
	if _, err := st.Objects().Owner(ctx, "c", x); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Owner before any claim: %v, want ErrNotFound", err)
	}
	got, err := st.Objects().Claim(ctx, "c", a.ID, []string{x, y, x})
	if err != nil || len(got) != 2 || got[x] != a.ID || got[y] != a.ID {
		t.Fatalf("alpha's claim = %v, %v", got, err)
	}
	got, err = st.Objects().Claim(ctx, "c", b.ID, []string{y, z})
	if err != nil || len(got) != 2 || got[y] != a.ID || got[z] != b.ID {
		t.Fatalf("bravo's claim of alpha's y and a new z = %v, %v; want y alpha's, z bravo's", got, err)
	}
	if got, err := st.Objects().Claim(ctx, "d", b.ID, []string{x}); err != nil || got[x] != b.ID {
		t.Fatalf("claim of x in another collection = %v, %v; ownership is per collection", got, err)
	}
	if _, err := st.Objects().Put(ctx, "c", []store.Object{obj(x, t0, t0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Objects().Delete(ctx, "c", x, store.VersionFilter{All: true}, nil); err != nil {
		t.Fatal(err)
	}
	if o, err := st.Objects().Owner(ctx, "c", x); err != nil || o != a.ID {
		t.Fatalf("Owner after deleting every version = %q, %v; want alpha still", o, err)
	}
	boom := errors.New("boom")
	err = st.Update(ctx, func(tx store.Handle) error {
		if _, err := tx.Objects().Claim(ctx, "c", b.ID, []string{uid("indicator", 4)}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if _, err := st.Objects().Owner(ctx, "c", uid("indicator", 4)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a rolled-back claim left an owner: %v", err)
	}
	// Within one transaction, a new id claimed twice: the second claimant
	// (also in another collection) is told the first's ownership, as
	// across transactions; a claim mixing new and owned ids reports both.
	w, v := uid("indicator", 5), uid("indicator", 6)
	if err := st.Update(ctx, func(tx store.Handle) error {
		if got, err := tx.Objects().Claim(ctx, "c", a.ID, []string{w}); err != nil || got[w] != a.ID {
			return fmt.Errorf("alpha's claim of a new id = %v, %v", got, err)
		}
		if got, err := tx.Objects().Claim(ctx, "c", b.ID, []string{w, v, y}); err != nil || len(got) != 3 || got[w] != a.ID || got[v] != b.ID || got[y] != a.ID {
			return fmt.Errorf("bravo's claim in the same transaction = %v, %v; want w and y alpha's, v bravo's", got, err)
		}
		if got, err := tx.Objects().Claim(ctx, "d", b.ID, []string{w}); err != nil || got[w] != b.ID {
			return fmt.Errorf("bravo's claim of w in another collection = %v, %v", got, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ coll, id, want string }{{"c", w, a.ID}, {"c", v, b.ID}, {"d", w, b.ID}} {
		if o, err := st.Objects().Owner(ctx, c.coll, c.id); err != nil || o != c.want {
			t.Fatalf("Owner of %s in %s = %q, %v; want %s", c.id, c.coll, o, err, c.want)
		}
	}
	if _, err := st.Objects().Claim(ctx, "nope", a.ID, []string{x}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim in a missing collection: %v, want ErrNotFound", err)
	}
	if got, err := st.Objects().Claim(ctx, "c", a.ID, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty claim = %v, %v", got, err)
	}
}

func testUpdateRollsBack(t *testing.T, st store.Store) {
	mustCollection(t, st, "c", nil, nil)
	boom := errors.New("boom")
	err := st.Update(ctx, func(tx store.Handle) error {
		if _, err := tx.Objects().Put(ctx, "c", []store.Object{obj(uid("indicator", 1), t0, t0)}); err != nil {
			return err
		}
		if err := tx.Parties().Create(ctx, store.Party{ID: "party--x", Name: "x", CreatedAt: t0}); err != nil {
			return err
		}
		// Reads inside the transaction see its own writes.
		if n, err := tx.Objects().Count(ctx, "c"); err != nil || n != 1 {
			return fmt.Errorf("count inside tx = %d, %v", n, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if n, _ := st.Objects().Count(ctx, "c"); n != 0 {
		t.Fatalf("rolled-back object is visible")
	}
	if _, err := st.Parties().Get(ctx, "party--x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled-back party is visible: %v", err)
	}
}

func testStatuses(t *testing.T, st store.Store) {
	s := store.Status{ID: "s1", APIRoot: "shared", PartyID: "party--a", Status: "complete", RequestTimestamp: t0, TotalCount: 2,
		Successes: []store.StatusDetail{{ID: "indicator--1", Version: "2026-01-01T00:00:00.000Z"}},
		Failures:  []store.StatusDetail{{ID: "indicator--2", Version: "", Message: "modified is before created"}}}
	if err := st.Statuses().Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := st.Statuses().Get(ctx, "shared", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != s.ID || got.PartyID != s.PartyID || !got.RequestTimestamp.Equal(t0) || got.TotalCount != 2 ||
		len(got.Successes) != 1 || len(got.Failures) != 1 || got.Failures[0].Message != "modified is before created" {
		t.Fatalf("Get = %+v", got)
	}
	if _, err := st.Statuses().Get(ctx, "other", "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("status in another root: %v", err)
	}
	if err := st.Statuses().Create(ctx, s); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate status: %v", err)
	}
}

func testSettings(t *testing.T, st store.Store) {
	if _, err := st.Settings().Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing setting: %v", err)
	}
	v, err := st.Settings().PutIfAbsent(ctx, "k", []byte("one"))
	if err != nil || string(v) != "one" {
		t.Fatalf("PutIfAbsent = %q, %v", v, err)
	}
	v, err = st.Settings().PutIfAbsent(ctx, "k", []byte("two"))
	if err != nil || string(v) != "one" {
		t.Fatalf("second PutIfAbsent = %q, %v; the first value must win", v, err)
	}
}

// testConcurrentPut has several goroutines add versions of the same objects;
// afterwards every id has exactly one first and one last version.
func testConcurrentPut(t *testing.T, st store.Store) {
	mustCollection(t, st, "c", nil, nil)
	const workers, versions, objectsN = 4, 10, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for v := 0; v < versions; v++ {
				var batch []store.Object
				for i := 0; i < objectsN; i++ {
					ver := t0.Add(time.Duration(v*workers+w) * time.Second)
					batch = append(batch, obj(uid("indicator", i), ver, time.Now().UTC().Truncate(time.Microsecond)))
				}
				if _, err := st.Objects().Put(ctx, "c", batch); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, f := range []store.VersionFilter{{First: true}, {Last: true}} {
		p, err := st.Objects().Query(ctx, store.ObjectQuery{Collection: "c", Versions: f, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Objects) != objectsN {
			t.Fatalf("filter %+v: %d rows, want one per object (%d)", f, len(p.Objects), objectsN)
		}
		for _, o := range p.Objects {
			want := t0
			if f.Last {
				want = t0.Add(time.Duration(versions*workers-1) * time.Second)
			}
			if !o.Version.Equal(want) {
				t.Fatalf("filter %+v: %s has version %v, want %v", f, o.ID, o.Version, want)
			}
		}
	}
	if n, _ := st.Objects().Count(ctx, "c"); n != workers*versions*objectsN {
		t.Fatalf("count = %d, want %d", n, workers*versions*objectsN)
	}
}

// testSecondConnectionRefused: code inside Update that reaches for the
// store itself (a read, a write, a nested Update, a ping) gets
// ErrSecondConnection at once instead of waiting for a connection (the
// PostgreSQL deadlock of issue 15: a handover step holding the agreement's
// lock queued for a pool connection behind writers queued on that lock).
// Other goroutines, even with the same context, are not refused.
func testSecondConnectionRefused(t *testing.T, st store.Store) {
	mustParty(t, st, "alpha")
	calls := map[string]func(ctx context.Context) error{
		"read": func(ctx context.Context) error { _, err := st.Parties().Get(ctx, "party--alpha"); return err },
		"list": func(ctx context.Context) error { _, err := st.Parties().List(ctx); return err },
		"write": func(ctx context.Context) error {
			_, err := st.Settings().PutIfAbsent(ctx, "k", []byte("v"))
			return err
		},
		"ledger": func(ctx context.Context) error { _, err := st.Ledger().Size(ctx); return err },
		"update": func(ctx context.Context) error { return st.Update(ctx, func(store.Handle) error { return nil }) },
		"ping":   func(ctx context.Context) error { return st.Ping(ctx) },
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var inside, beside error
		err := st.Update(ctx, func(tx store.Handle) error {
			if _, err := tx.Parties().Get(ctx, "party--alpha"); err != nil {
				return err
			}
			inside = call(ctx)
			// Another goroutine with the same context is someone else.
			done := make(chan struct{})
			go func() { defer close(done); _, beside = st.Parties().Get(ctx, "party--alpha") }()
			<-done
			return nil
		})
		cancel()
		if err != nil {
			t.Fatalf("%s: the transaction itself failed: %v", name, err)
		}
		if !errors.Is(inside, store.ErrSecondConnection) {
			t.Errorf("%s on the store inside its own transaction: %v; want ErrSecondConnection", name, inside)
		}
		if beside != nil {
			t.Errorf("%s: another goroutine with the same context was refused: %v", name, beside)
		}
	}
	// Outside any transaction nothing is refused.
	for name, call := range calls {
		if err := call(context.Background()); err != nil {
			t.Errorf("%s outside a transaction: %v", name, err)
		}
	}
}
