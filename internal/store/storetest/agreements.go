package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// ext returns h: the agreement stores are part of every Handle. It keeps
// the tests below reading as the suite grew.
func ext(t *testing.T, h store.Handle) store.Handle {
	t.Helper()
	return h
}

func testKeys(t *testing.T, st store.Store) {
	x := ext(t, st)
	a := mustParty(t, st, "alpha")
	k1 := store.PartyKey{KeyID: "k1", PartyID: a.ID, Public: []byte(`{"key_id":"k1"}`), ValidFrom: t0}
	if err := x.Keys().Add(ctx, k1); err != nil {
		t.Fatal(err)
	}
	if err := x.Keys().Add(ctx, k1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate key: %v", err)
	}
	if err := x.Keys().Add(ctx, store.PartyKey{KeyID: "k9", PartyID: "party--ghost", Public: []byte("{}"), ValidFrom: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("key of unknown party: %v", err)
	}
	if err := x.Keys().Retire(ctx, "k1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := x.Keys().Retire(ctx, "k1", t0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retiring a retired key: %v", err)
	}
	k2 := store.PartyKey{KeyID: "k2", PartyID: a.ID, Public: []byte(`{"key_id":"k2"}`), ValidFrom: t0.Add(time.Hour), Rotation: []byte(`{"sig":"x"}`)}
	if err := x.Keys().Add(ctx, k2); err != nil {
		t.Fatal(err)
	}
	got, err := x.Keys().Get(ctx, "k1")
	if err != nil || !got.ValidUntil.Equal(t0.Add(time.Hour)) || string(got.Public) != string(k1.Public) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	list, err := x.Keys().ListByParty(ctx, a.ID)
	if err != nil || len(list) != 2 || list[0].KeyID != "k1" || list[1].KeyID != "k2" || string(list[1].Rotation) != `{"sig":"x"}` {
		t.Fatalf("ListByParty = %+v, %v", list, err)
	}
	if _, err := x.Keys().Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
}

func testAgreements(t *testing.T, st store.Store) {
	x := ext(t, st)
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	mustParty(t, st, "charlie")
	rec := store.AgreementRecord{ID: "agreement--1", PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}
	if err := x.Agreements().Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := x.Agreements().Create(ctx, rec); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate agreement: %v", err)
	}
	if err := x.Agreements().Create(ctx, store.AgreementRecord{ID: "agreement--2", PartyA: a.ID, PartyB: "party--ghost", CreatedAt: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("agreement with unknown party: %v", err)
	}
	if got, err := x.Agreements().Get(ctx, rec.ID); err != nil || got != rec {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if err := x.Agreements().Lock(ctx, "agreement--nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lock of unknown agreement: %v", err)
	}
	v1 := store.AgreementVersion{AgreementID: rec.ID, Version: 1, Document: []byte(`{"v":1}`), Hash: [32]byte{1}, CreatedAt: t0}
	if err := x.Agreements().AddVersion(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if err := x.Agreements().AddVersion(ctx, v1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate version: %v", err)
	}
	for i, act := range []string{"propose", "countersign"} {
		p := a.ID
		if i == 1 {
			p = b.ID
		}
		seq, err := x.Agreements().AddSignature(ctx, store.AgreementSignature{AgreementID: rec.ID, Version: 1, PartyID: p, Action: act, Raw: []byte(act), SignedAt: t0.Add(time.Duration(i) * time.Minute)})
		if err != nil || seq <= 0 {
			t.Fatalf("AddSignature %s = %d, %v", act, seq, err)
		}
	}
	sigs, err := x.Agreements().Signatures(ctx, rec.ID)
	if err != nil || len(sigs) != 2 || sigs[0].Action != "propose" || sigs[1].Action != "countersign" || sigs[0].Seq >= sigs[1].Seq {
		t.Fatalf("Signatures = %+v, %v", sigs, err)
	}
	vs, err := x.Agreements().Versions(ctx, rec.ID)
	if err != nil || len(vs) != 1 || vs[0].Hash != v1.Hash || string(vs[0].Document) != `{"v":1}` {
		t.Fatalf("Versions = %+v, %v", vs, err)
	}
	for _, p := range []struct {
		id   string
		want int
	}{{a.ID, 1}, {b.ID, 1}, {"party--charlie", 0}} {
		l, err := x.Agreements().ListByParty(ctx, p.id)
		if err != nil || len(l) != p.want {
			t.Fatalf("ListByParty(%s) = %+v, %v", p.id, l, err)
		}
	}
}

// testCredits checks give-to-get accounting and the released-prefix query.
func testCredits(t *testing.T, st store.Store) {
	x := ext(t, st)
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	ag := "agreement--1"
	if err := x.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	c := store.Collection{ID: "contrib-a", APIRoot: ag, Title: "alpha's", CreatedAt: t0, Agreement: ag, Contributor: a.ID}
	if err := st.Collections().Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Collections().Get(ctx, ag, "contrib-a"); err != nil || got.Agreement != ag || got.Contributor != a.ID {
		t.Fatalf("agreement collection = %+v, %v", got, err)
	}
	var objs []store.Object
	for i := 1; i <= 5; i++ {
		objs = append(objs, obj(uid("indicator", i), t0, t0.Add(time.Duration(i)*time.Second)))
	}
	if _, err := st.Objects().Put(ctx, "contrib-a", objs); err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		ord, err := contribute1(x, ag, a.ID, o.ID, 1, t0.Add(time.Duration(i)*time.Hour))
		if err != nil || ord != int64(i+1) {
			t.Fatalf("Contribute %d = %d, %v", i, ord, err)
		}
	}
	// The same object again earns nothing.
	if ord, err := contribute1(x, ag, a.ID, objs[0].ID, 1, t0); err != nil || ord != 0 {
		t.Fatalf("re-contribution = %d, %v", ord, err)
	}
	// The counterpart giving an object of a's that was not released to it
	// earns credit: refusing it would reveal that a holds it.
	if ord, err := contribute1(x, ag, b.ID, objs[3].ID, 1, t0); err != nil || ord != 1 {
		t.Fatalf("counterpart giving an unreleased known object = %d, %v; want a new ordinal", ord, err)
	}
	if ord, err := contribute1(x, ag, b.ID, uid("malware", 7), 2.5, t0); err != nil || ord != 2 {
		t.Fatalf("bravo's second = %d, %v", ord, err)
	}
	bal, err := x.Credits().Balance(ctx, ag, a.ID, time.Time{})
	if err != nil || bal.Contributed != 5 || bal.Credits != 5 || bal.Released != 0 {
		t.Fatalf("alpha balance = %+v, %v", bal, err)
	}
	bal, err = x.Credits().Balance(ctx, ag, a.ID, t0.Add(3*time.Hour))
	if err != nil || bal.Contributed != 5 || bal.Credits != 2 {
		t.Fatalf("alpha balance within window = %+v, %v", bal, err)
	}
	if bal, _ := x.Credits().Balance(ctx, ag, b.ID, time.Time{}); bal.Credits != 3.5 {
		t.Fatalf("bravo credits = %v, want 1 + the weight 2.5", bal.Credits)
	}
	if err := x.Credits().SetReleased(ctx, ag, b.ID, 3); err != nil {
		t.Fatal(err)
	}
	if err := x.Credits().SetReleased(ctx, ag, b.ID, 2); err != nil {
		t.Fatal(err)
	}
	if bal, _ := x.Credits().Balance(ctx, ag, b.ID, time.Time{}); bal.Released != 3 {
		t.Fatalf("released = %d, want 3 (never lowered)", bal.Released)
	}
	if n, err := x.Credits().Released(ctx, ag, b.ID); err != nil || n != 3 {
		t.Fatalf("Released = %d, %v", n, err)
	}
	if n, err := x.Credits().Released(ctx, ag, a.ID); err != nil || n != 0 {
		t.Fatalf("Released for a reader with nothing released = %d, %v", n, err)
	}
	// Released to b now: a's first three. Giving one of them back earns nothing.
	if ord, err := contribute1(x, ag, b.ID, objs[1].ID, 1, t0); err != nil || ord != 0 {
		t.Fatalf("counterpart re-giving a released object = %d, %v; want 0", ord, err)
	}
	for _, upTo := range []int64{0, 2, 5, 9} {
		p, err := st.Objects().Query(ctx, store.ObjectQuery{Collection: "contrib-a", Limit: 100,
			Released: &store.ReleaseBound{Agreement: ag, Contributor: a.ID, UpTo: upTo}})
		if err != nil {
			t.Fatal(err)
		}
		if want := min(upTo, 5); int64(len(p.Objects)) != want {
			t.Fatalf("released up to %d: %d objects, want %d", upTo, len(p.Objects), want)
		}
		for i, o := range p.Objects {
			if o.ID != objs[i].ID {
				t.Fatalf("released up to %d: object %d is %s, want publish order", upTo, i, o.ID)
			}
		}
	}
	if ids, err := x.Credits().Range(ctx, ag, a.ID, 2, 3); err != nil || len(ids) != 2 || ids[0] != objs[1].ID || ids[1] != objs[2].ID {
		t.Fatalf("Range(2, 3) = %v, %v", ids, err)
	}
	// A stretch of the publish order, read by its place there; a release
	// bound, when it ends before the stretch, still cuts it. bravo's first
	// credit is a's objs[3] (given back, above).
	for _, c := range []struct {
		stretch  store.OrdinalRange
		released *store.ReleaseBound
		want     []int
	}{
		{store.OrdinalRange{Agreement: ag, Contributor: a.ID, From: 2, To: 4}, nil, []int{1, 2, 3}},
		{store.OrdinalRange{Agreement: ag, Contributor: a.ID, From: 1, To: 9}, nil, []int{0, 1, 2, 3, 4}},
		{store.OrdinalRange{Agreement: ag, Contributor: a.ID, From: 6, To: 9}, nil, nil},
		{store.OrdinalRange{Agreement: ag, Contributor: a.ID, From: 2, To: 4}, &store.ReleaseBound{Agreement: ag, Contributor: a.ID, UpTo: 3}, []int{1, 2}},
		{store.OrdinalRange{Agreement: ag, Contributor: a.ID, From: 2, To: 3}, &store.ReleaseBound{Agreement: ag, Contributor: a.ID, UpTo: 3}, []int{1, 2}},
		{store.OrdinalRange{Agreement: ag, Contributor: a.ID, From: 1, To: 3}, &store.ReleaseBound{Agreement: ag, Contributor: b.ID, UpTo: 9}, nil},
		{store.OrdinalRange{Agreement: ag, Contributor: b.ID, From: 1, To: 9}, nil, []int{3}},
		{store.OrdinalRange{Agreement: ag, Contributor: b.ID, From: 2, To: 9}, nil, nil},
		{store.OrdinalRange{Agreement: "agreement--none", Contributor: a.ID, From: 1, To: 9}, nil, nil},
	} {
		p, err := st.Objects().Query(ctx, store.ObjectQuery{Collection: "contrib-a", Limit: 100, Released: c.released, Credited: &c.stretch})
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, o := range p.Objects {
			got = append(got, o.ID)
		}
		for _, i := range c.want {
			want = append(want, objs[i].ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("stretch %+v, released %+v: %v, want %v", c.stretch, c.released, got, want)
		}
	}
	// A bound naming a party with no contributions releases nothing.
	p, err := st.Objects().Query(ctx, store.ObjectQuery{Collection: "contrib-a", Limit: 100,
		Released: &store.ReleaseBound{Agreement: ag, Contributor: "party--nobody", UpTo: 100}})
	if err != nil || len(p.Objects) != 0 {
		t.Fatalf("wrong contributor: %s, %v", fmt.Sprint(len(p.Objects)), err)
	}
}

// contribute1 offers one object for credit.
func contribute1(x store.Handle, agreementID, partyID, objectID string, weight float64, at time.Time) (int64, error) {
	ords, err := x.Credits().Contribute(ctx, agreementID, partyID, []store.Contribution{{ObjectID: objectID, Weight: weight}}, at)
	if err != nil {
		return 0, err
	}
	return ords[0].Ord, nil
}

// ordsOf lists the ordinals of a Contribute result.
func ordsOf(cs []store.Credited) string {
	o := make([]int64, len(cs))
	for i, c := range cs {
		o[i] = c.Ord
	}
	return fmt.Sprint(o)
}

// testContributeBatch: a batch gets ordinals in order, a repeat within the
// batch earns nothing, and known objects are skipped without using an
// ordinal.
func testContributeBatch(t *testing.T, st store.Store) {
	x := ext(t, st)
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	ag := "agreement--1"
	if err := x.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	items := []store.Contribution{{ObjectID: uid("indicator", 1), Weight: 1}, {ObjectID: uid("indicator", 2), Weight: 2}, {ObjectID: uid("indicator", 1), Weight: 1}, {ObjectID: uid("indicator", 3), Weight: 0.5}}
	ords, err := x.Credits().Contribute(ctx, ag, a.ID, items, t0)
	if err != nil || ordsOf(ords) != "[1 2 0 3]" {
		t.Fatalf("first batch = %v, %v; want [1 2 0 3]", ords, err)
	}
	if err := x.Credits().SetReleased(ctx, ag, b.ID, 1); err != nil {
		t.Fatal(err)
	}
	// bravo: alpha's #1 is released to it (known), #2 is not (earns credit).
	ords, err = x.Credits().Contribute(ctx, ag, b.ID, []store.Contribution{{ObjectID: uid("indicator", 1), Weight: 1}, {ObjectID: uid("indicator", 2), Weight: 1}, {ObjectID: uid("malware", 9), Weight: 4}}, t0)
	if err != nil || ordsOf(ords) != "[0 1 2]" {
		t.Fatalf("bravo's batch = %v, %v; want [0 1 2]", ords, err)
	}
	ords, err = x.Credits().Contribute(ctx, ag, a.ID, []store.Contribution{{ObjectID: uid("indicator", 3), Weight: 1}, {ObjectID: uid("indicator", 4), Weight: 1}}, t0)
	if err != nil || ordsOf(ords) != "[0 4]" {
		t.Fatalf("alpha's second batch = %v, %v; want [0 4]", ords, err)
	}
	if bal, err := x.Credits().Balance(ctx, ag, a.ID, time.Time{}); err != nil || bal.Contributed != 4 || bal.Credits != 4.5 {
		t.Fatalf("alpha's balance = %+v, %v", bal, err)
	}
	if ords, err := x.Credits().Contribute(ctx, ag, a.ID, nil, t0); err != nil || len(ords) != 0 {
		t.Fatalf("empty batch = %v, %v", ords, err)
	}
}

// testContributeByContent: an object whose fingerprint the party already
// knows — from its own contributions, the counterpart's released to it, or
// a plain handover — earns nothing under a new id and says so; the
// counterpart's unreleased content still earns credit (no oracle).
func testContributeByContent(t *testing.T, st store.Store) {
	x := ext(t, st)
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	ag, other := "agreement--1", "agreement--2"
	for _, id := range []string{ag, other} {
		if err := x.Agreements().Create(ctx, store.AgreementRecord{ID: id, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	fp := func(n int) []byte { h := sha256.Sum256([]byte(fmt.Sprint(n))); return h[:] }
	item := func(id string, n int) store.Contribution {
		return store.Contribution{ObjectID: id, Weight: 1, Fingerprint: fp(n)}
	}
	res, err := x.Credits().Contribute(ctx, ag, a.ID, []store.Contribution{
		item(uid("indicator", 1), 1), item(uid("indicator", 2), 2), item(uid("indicator", 3), 1), // repeat of 1's content in the batch
		{ObjectID: uid("indicator", 4), Weight: 1}, // no fingerprint: by id only
	}, t0)
	if err != nil || ordsOf(res) != "[1 2 0 3]" || !res[2].SameContent || res[0].SameContent {
		t.Fatalf("alpha's batch = %+v, %v; want [1 2 0 3], the third same content", res, err)
	}
	// Alpha again: its own content under a new id.
	if res, err := x.Credits().Contribute(ctx, ag, a.ID, []store.Contribution{item(uid("indicator", 5), 2), item(uid("indicator", 6), 9)}, t0); err != nil || ordsOf(res) != "[0 4]" || !res[0].SameContent {
		t.Fatalf("alpha re-giving its content = %+v, %v", res, err)
	}
	// Bravo: alpha's content is not released to it yet, so it earns.
	if res, err := x.Credits().Contribute(ctx, ag, b.ID, []store.Contribution{item(uid("malware", 1), 1)}, t0); err != nil || ordsOf(res) != "[1]" {
		t.Fatalf("bravo giving alpha's unreleased content = %+v, %v; want credit", res, err)
	}
	if err := x.Credits().SetReleased(ctx, ag, b.ID, 2); err != nil {
		t.Fatal(err)
	}
	// Released to bravo: alpha's #1 and #2 (content 1 and 2); #3 (no
	// fingerprint) and #4 (content 9) are not.
	res, err = x.Credits().Contribute(ctx, ag, b.ID, []store.Contribution{item(uid("malware", 2), 2), item(uid("malware", 3), 9)}, t0)
	if err != nil || ordsOf(res) != "[0 2]" || !res[0].SameContent || res[1].SameContent {
		t.Fatalf("bravo re-giving released content = %+v, %v; want [0 2]", res, err)
	}
	// A plain handover released content 20 and 21: neither side earns for it.
	if err := x.Credits().Handed(ctx, ag, [][]byte{fp(20), fp(21), fp(20)}); err != nil {
		t.Fatal(err)
	}
	if err := x.Credits().Handed(ctx, ag, [][]byte{fp(21)}); err != nil {
		t.Fatalf("handing known content again: %v", err)
	}
	if res, err := x.Credits().Contribute(ctx, ag, a.ID, []store.Contribution{item(uid("tool", 1), 20)}, t0); err != nil || ordsOf(res) != "[0]" || !res[0].SameContent {
		t.Fatalf("alpha giving handed-over content = %+v, %v", res, err)
	}
	if res, err := x.Credits().Contribute(ctx, ag, b.ID, []store.Contribution{item(uid("tool", 2), 21)}, t0); err != nil || ordsOf(res) != "[0]" || !res[0].SameContent {
		t.Fatalf("bravo giving handed-over content = %+v, %v", res, err)
	}
	// Another agreement knows none of it.
	if res, err := x.Credits().Contribute(ctx, other, a.ID, []store.Contribution{item(uid("tool", 3), 20), item(uid("tool", 4), 1)}, t0); err != nil || ordsOf(res) != "[1 2]" {
		t.Fatalf("the same content under another agreement = %+v, %v", res, err)
	}
	if bal, err := x.Credits().Balance(ctx, ag, a.ID, time.Time{}); err != nil || bal.Contributed != 4 || bal.Credits != 4 {
		t.Fatalf("alpha's balance = %+v, %v", bal, err)
	}
	if bal, err := x.Credits().Balance(ctx, ag, b.ID, time.Time{}); err != nil || bal.Contributed != 2 || bal.Credits != 2 {
		t.Fatalf("bravo's balance = %+v, %v", bal, err)
	}
}

// testContests: a contest takes a credit out of its contributor's credits
// (also within a window) until withdrawn; one contest per credit; a
// withdrawal is final.
func testContests(t *testing.T, st store.Store) {
	x := ext(t, st)
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	ag := "agreement--1"
	if err := x.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Credits().Contribute(ctx, ag, a.ID, []store.Contribution{{ObjectID: uid("indicator", 1), Weight: 1}, {ObjectID: uid("identity", 2), Weight: 2.5}}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	cr, err := x.Credits().Credit(ctx, ag, a.ID, uid("identity", 2))
	if err != nil || cr.Ord != 2 || cr.Weight != 2.5 || !cr.AddedAt.Equal(t0.Add(time.Hour)) || cr.Contested {
		t.Fatalf("Credit = %+v, %v", cr, err)
	}
	if _, err := x.Credits().Credit(ctx, ag, b.ID, uid("identity", 2)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Credit of another party's object = %v, want ErrNotFound", err)
	}
	c := store.Contest{ID: "contest-1", AgreementID: ag, Contester: b.ID, Contributor: a.ID, ObjectID: uid("identity", 2), Weight: 2.5,
		Reason: "a placeholder", Statement: []byte(`{"signed":1}`), FiledAt: t0.Add(2 * time.Hour), LedgerIndex: 7}
	if err := x.Credits().Contest(ctx, c); err != nil {
		t.Fatal(err)
	}
	if bal, err := x.Credits().Balance(ctx, ag, a.ID, time.Time{}); err != nil || bal.Credits != 1 || bal.Contested != 2.5 || bal.Contributed != 2 {
		t.Fatalf("balance under contest = %+v, %v; want 1 credit, 2.5 contested, 2 contributed", bal, err)
	}
	if bal, err := x.Credits().Balance(ctx, ag, a.ID, t0); err != nil || bal.Credits != 1 || bal.Contested != 2.5 {
		t.Fatalf("windowed balance under contest = %+v, %v", bal, err)
	}
	again := c
	again.ID = "contest-2"
	if err := x.Credits().Contest(ctx, again); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("contesting twice = %v, want ErrConflict", err)
	}
	missing := c
	missing.ID, missing.ObjectID = "contest-3", uid("malware", 9)
	if err := x.Credits().Contest(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("contesting no credit = %v, want ErrNotFound", err)
	}
	if cs, err := x.Credits().Contests(ctx, ag); err != nil || len(cs) != 1 || cs[0].ID != "contest-1" || cs[0].LedgerIndex != 7 ||
		string(cs[0].Statement) != `{"signed":1}` || !cs[0].FiledAt.Equal(c.FiledAt) || !cs[0].WithdrawnAt.IsZero() {
		t.Fatalf("Contests = %+v, %v", cs, err)
	}
	w, err := x.Credits().WithdrawContest(ctx, ag, "contest-1", t0.Add(3*time.Hour), []byte(`{"withdrawn":1}`), 9)
	if err != nil || !w.WithdrawnAt.Equal(t0.Add(3*time.Hour)) || w.WithdrawIndex != 9 || string(w.Withdrawal) != `{"withdrawn":1}` {
		t.Fatalf("WithdrawContest = %+v, %v", w, err)
	}
	if bal, err := x.Credits().Balance(ctx, ag, a.ID, time.Time{}); err != nil || bal.Credits != 3.5 || bal.Contested != 0 {
		t.Fatalf("balance after withdrawal = %+v, %v", bal, err)
	}
	if _, err := x.Credits().WithdrawContest(ctx, ag, "contest-1", t0.Add(4*time.Hour), nil, 10); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("withdrawing twice = %v, want ErrConflict", err)
	}
	if _, err := x.Credits().WithdrawContest(ctx, "agreement--other", "contest-1", t0, nil, 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("withdrawing under another agreement = %v, want ErrNotFound", err)
	}
	if err := x.Credits().Contest(ctx, again); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("contesting a withdrawn contest's credit again = %v, want ErrConflict", err)
	}
	// A mirrored contest (relayed by the other party's node) is listed
	// and withdrawn like any, and moves no credit here either way.
	m := store.Contest{ID: "contest-m", AgreementID: ag, Contester: b.ID, Contributor: a.ID, ObjectID: uid("indicator", 1), Weight: 1,
		Reason: "relayed", Statement: []byte(`{"mirror":1}`), FiledAt: t0.Add(5 * time.Hour), LedgerIndex: 11}
	if err := x.Credits().MirrorContest(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := x.Credits().MirrorContest(ctx, m); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("mirroring a contest twice = %v, want ErrConflict", err)
	}
	if bal, err := x.Credits().Balance(ctx, ag, a.ID, time.Time{}); err != nil || bal.Credits != 3.5 || bal.Contested != 0 {
		t.Fatalf("balance with a mirrored contest = %+v, %v; want 3.5 credits, none contested", bal, err)
	}
	if cr, err := x.Credits().Credit(ctx, ag, a.ID, uid("indicator", 1)); err != nil || cr.Contested {
		t.Fatalf("credit under a mirrored contest = %+v, %v; want it uncontested", cr, err)
	}
	if cs, err := x.Credits().Contests(ctx, ag); err != nil || len(cs) != 2 || cs[1].ID != "contest-m" || string(cs[1].Statement) != `{"mirror":1}` {
		t.Fatalf("Contests with a mirrored one = %+v, %v", cs, err)
	}
	mw, err := x.Credits().MirrorWithdrawal(ctx, ag, "contest-m", t0.Add(6*time.Hour), []byte(`{"mw":1}`), 12)
	if err != nil || !mw.WithdrawnAt.Equal(t0.Add(6*time.Hour)) || mw.WithdrawIndex != 12 || string(mw.Withdrawal) != `{"mw":1}` {
		t.Fatalf("MirrorWithdrawal = %+v, %v", mw, err)
	}
	if bal, err := x.Credits().Balance(ctx, ag, a.ID, time.Time{}); err != nil || bal.Credits != 3.5 || bal.Contested != 0 {
		t.Fatalf("balance after a mirrored withdrawal = %+v, %v; want it unchanged", bal, err)
	}
	if _, err := x.Credits().MirrorWithdrawal(ctx, ag, "contest-m", t0.Add(7*time.Hour), nil, 13); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("withdrawing a mirrored contest twice = %v, want ErrConflict", err)
	}
	if _, err := x.Credits().MirrorWithdrawal(ctx, ag, "contest-none", t0, nil, 13); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("withdrawing no mirrored contest = %v, want ErrNotFound", err)
	}
}

// testBalanceIsOneSnapshot reads a balance while writers raise a party's
// credits and what is released to it in one transaction each: every
// answer must come from one state, so what is released never exceeds the
// credits read with it (the crash harness once saw released 6 beside
// credits 0, the totals read before a commit and the release after it).
func testBalanceIsOneSnapshot(t *testing.T, st store.Store) {
	x := ext(t, st)
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	ag := "agreement--snapshot"
	if err := x.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	const writes = 300
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= writes; i++ {
			err := st.Update(ctx, func(tx store.Handle) error {
				if _, err := contribute1(ext(t, tx), ag, a.ID, uid("indicator", i), 1, t0); err != nil {
					return err
				}
				return ext(t, tx).Credits().SetReleased(ctx, ag, a.ID, int64(i))
			})
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// Read with and without a rolling window, alternately, until a read
	// sees every write.
	windows := []time.Time{{}, t0.Add(-time.Hour)}
	for reads := 0; ; reads++ {
		since := windows[reads%2]
		bal, err := x.Credits().Balance(ctx, ag, a.ID, since)
		if err != nil {
			t.Fatal(err)
		}
		if float64(bal.Released) > bal.Credits || bal.Released > bal.Contributed {
			t.Fatalf("balance (since %v) %+v: released beyond the credits read with it", since, bal)
		}
		if bal.Released == writes {
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// testContributeByContentAcrossCalls: content is known by its fingerprint
// however many calls ago it was credited (a store may file recent
// fingerprints apart from older ones, as SQLite does, migration 37), for
// the party's own credits and for the counterpart's within what was
// released to it, and not beyond.
func testContributeByContentAcrossCalls(t *testing.T, st store.Store) {
	x := ext(t, st)
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	ag := "agreement--1"
	if err := x.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	give := GiveContents(t, st, ag, t0)
	// Alpha's contents 1-40, four a call, each call re-giving a content
	// of every earlier call: content n is alpha's credit n.
	for c := 0; c < 10; c++ {
		cs := []int{4*c + 1, 4*c + 2, 4*c + 3, 4*c + 4}
		var want []int
		for e := 0; e < c; e++ {
			cs = append(cs, 4*e+1+c%4)
			want = append(want, 4*e+1+c%4)
		}
		if got := give(a.ID, cs...); got != fmt.Sprint(want) {
			t.Fatalf("alpha's call %d: known %s, want %v", c, got, want)
		}
	}
	if err := x.Credits().SetReleased(ctx, ag, b.ID, 22); err != nil {
		t.Fatal(err)
	}
	// Released to bravo: alpha's 1-22; 23-40 earn bravo credit.
	if got := give(b.ID, 1, 2, 21, 22, 23, 24, 39, 40); got != "[1 2 21 22]" {
		t.Fatalf("bravo giving alpha's content: known %s, want [1 2 21 22]", got)
	}
	if got := give(b.ID, 23, 40, 41, 3); got != "[23 40 3]" {
		t.Fatalf("bravo giving its own content again: known %s, want [23 40 3]", got)
	}
	if bal, err := x.Credits().Balance(ctx, ag, b.ID, time.Time{}); err != nil || bal.Contributed != 5 {
		t.Fatalf("bravo's balance = %+v, %v; want 5 credits", bal, err)
	}
}

// GiveContents returns a function that contributes, under agreement ag at
// time at, contents cs (numbers, each one content, its fingerprint the
// SHA-256 of the number) for a party, each under a new object id, and
// returns those that were known already, as "[c ...]".
func GiveContents(t *testing.T, h store.Store, ag string, at time.Time) func(party string, cs ...int) string {
	id := 0
	return func(party string, cs ...int) string {
		t.Helper()
		var items []store.Contribution
		for _, c := range cs {
			id++
			fp := sha256.Sum256([]byte(fmt.Sprint(c)))
			items = append(items, store.Contribution{ObjectID: uid("indicator", id), Weight: 1, Fingerprint: fp[:]})
		}
		var res []store.Credited
		if err := h.Update(ctx, func(tx store.Handle) error {
			var err error
			res, err = tx.Credits().Contribute(ctx, ag, party, items, at)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		known := []int{}
		for i, r := range res {
			if r.SameContent {
				known = append(known, cs[i])
			}
		}
		return fmt.Sprint(known)
	}
}

// testContributeNewIDsInOneTurn: ids stored for the first time in the
// same transaction as their credits (a POST to an agreement's collection:
// Put, then Contribute) earn credit once. A store may skip looking up the
// credits of an id it has just given its first key (SQLite does); the
// same id twice in one call, the same content under two new ids, the id
// again in a later call of the same transaction, after the counterpart
// gave it in between, and in a later transaction are all still refused.
func testContributeNewIDsInOneTurn(t *testing.T, st store.Store) {
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	ag := "agreement--1"
	if err := st.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Collection{
		{ID: "contrib-a", APIRoot: ag, Title: "alpha's", CreatedAt: t0, Agreement: ag, Contributor: a.ID},
		{ID: "contrib-b", APIRoot: ag, Title: "bravo's", CreatedAt: t0, Agreement: ag, Contributor: b.ID},
	} {
		if err := st.Collections().Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	item := func(n, content int) store.Contribution {
		return store.Contribution{ObjectID: uid("indicator", n), Weight: 1, Fingerprint: fingerprint(content)}
	}
	// outcome is "credit", "id" (known id) or "content" for each item.
	outcome := func(res []store.Credited) string {
		var s []string
		for _, r := range res {
			switch {
			case r.Ord > 0:
				s = append(s, "credit")
			case r.SameContent:
				s = append(s, "content")
			default:
				s = append(s, "id")
			}
		}
		return strings.Join(s, " ")
	}
	put := func(tx store.Handle, coll string, ns ...int) error {
		var objs []store.Object
		for _, n := range ns {
			objs = append(objs, obj(uid("indicator", n), t0, t0))
		}
		_, err := tx.Objects().Put(ctx, coll, objs)
		return err
	}
	type call struct {
		party string
		items []store.Contribution
		want  string
	}
	turn := func(name, coll string, stored []int, calls ...call) {
		t.Helper()
		got := make([]string, len(calls))
		if err := st.Update(ctx, func(tx store.Handle) error {
			if err := put(tx, coll, stored...); err != nil {
				return err
			}
			for i, c := range calls {
				res, err := tx.Credits().Contribute(ctx, ag, c.party, c.items, t0)
				if err != nil {
					return err
				}
				got[i] = outcome(res)
			}
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, c := range calls {
			if got[i] != c.want {
				t.Errorf("%s, call %d: %s, want %s", name, i, got[i], c.want)
			}
		}
	}
	turn("one envelope", "contrib-a", []int{1, 2, 3},
		// 1 twice in one call; 2 and 3 with one content.
		call{a.ID, []store.Contribution{item(1, 1), item(1, 4), item(2, 2), item(3, 2)}, "credit id credit content"},
		// 1 again with new content, in a later call of the same turn.
		call{a.ID, []store.Contribution{item(1, 5)}, "id"},
	)
	turn("the counterpart in between", "contrib-a", []int{10, 11},
		call{a.ID, []store.Contribution{item(10, 10)}, "credit"},
		// Bravo knows nothing of alpha's unreleased 10 and 11.
		call{b.ID, []store.Contribution{item(10, 20), item(11, 21)}, "credit credit"},
		call{a.ID, []store.Contribution{item(10, 22), item(11, 23)}, "id credit"},
		call{b.ID, []store.Contribution{item(11, 24)}, "id"},
	)
	// Credits stored by earlier transactions, the ids' keys made there too.
	turn("a later turn", "contrib-a", []int{1, 12},
		call{a.ID, []store.Contribution{item(1, 30), item(12, 1), item(2, 31), item(10, 32), item(11, 33)}, "id content id id id"},
	)
	turn("a new id", "contrib-b", []int{13},
		call{b.ID, []store.Contribution{item(13, 40), item(13, 41)}, "credit id"},
	)
	if bal, err := st.Credits().Balance(ctx, ag, a.ID, time.Time{}); err != nil || bal.Contributed != 4 {
		t.Fatalf("alpha's balance = %+v, %v; want 4 credits (1, 2, 10, 11)", bal, err)
	}
	if bal, err := st.Credits().Balance(ctx, ag, b.ID, time.Time{}); err != nil || bal.Contributed != 3 {
		t.Fatalf("bravo's balance = %+v, %v; want 3 credits (10, 11, 13)", bal, err)
	}
}
