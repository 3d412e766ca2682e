package exchange_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

var ctx = context.Background()

type member struct {
	p    party.Principal
	keys *agreement.PrivateKeys
}

type fixture struct {
	t    testing.TB
	st   store.Store
	ex   *exchange.Service
	a, b member
	now  time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, st: db, ex: exchange.New(db), now: time.Now().UTC().Truncate(time.Second)}
	f.ex.SetClock(func() time.Time { return f.now })
	ps := party.New(db)
	for _, m := range []*member{&f.a, &f.b} {
		name := "alpha"
		if m == &f.b {
			name = "bravo"
		}
		pt, secret, err := ps.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if m.p, err = ps.Authenticate(ctx, secret); err != nil || m.p.PartyID != pt.ID {
			t.Fatal(err)
		}
		if m.keys, err = agreement.GenerateKeys(); err != nil {
			t.Fatal(err)
		}
		if err := f.ex.RegisterKeys(ctx, m.p, m.keys.Public()); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// doc writes an agreement document between a and b.
func (f *fixture) doc(id string, version int, mutate func(m map[string]any)) []byte {
	m := map[string]any{
		"schema_version": 1, "id": id, "version": version,
		"parties": []map[string]any{
			{"party_id": f.a.p.PartyID, "name": "alpha", "key_id": f.a.keys.KeyID()},
			{"party_id": f.b.p.PartyID, "name": "bravo", "key_id": f.b.keys.KeyID()},
		},
		"scope":              map[string]any{"types": []string{"indicator", "malware"}, "max_tlp": "amber", "unmarked": "allow"},
		"reciprocity":        map[string]any{"ratio": "1:2", "grace": 10},
		"escrow_deadline":    "72h",
		"request_deadlines":  map[string]any{"acknowledge": "24h", "fulfil": "168h"},
		"not_before":         f.now.Add(-time.Hour).Format(time.RFC3339),
		"not_after":          f.now.Add(365 * 24 * time.Hour).Format(time.RFC3339),
		"termination_notice": "0s",
	}
	if version > 1 {
		m["supersedes"] = version - 1
	}
	if mutate != nil {
		mutate(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) sign(m member, raw []byte, action agreement.Action) agreement.Signature {
	f.t.Helper()
	d, err := agreement.ParseDocument(raw)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.signDoc(m, d, action)
}

func (f *fixture) signDoc(m member, d *agreement.Document, action agreement.Action) agreement.Signature {
	f.t.Helper()
	st := agreement.StatementFor(d, action, m.p.PartyID, m.keys.KeyID(), f.now)
	switch action {
	case agreement.ActionSuspend, agreement.ActionResume, agreement.ActionTerminate:
		st.EffectiveAt, st.Reason = f.now, "test: "+string(action)
	}
	sig, err := agreement.Sign(m.keys, st)
	if err != nil {
		f.t.Fatal(err)
	}
	return sig
}

// activate proposes (a) and countersigns (b) an agreement and returns it.
func (f *fixture) activate(mutate func(map[string]any)) exchange.Agreement {
	f.t.Helper()
	id := agreement.NewID()
	raw := f.doc(id, 1, mutate)
	if _, _, err := f.ex.Propose(ctx, f.a.p, raw, f.sign(f.a, raw, agreement.ActionPropose)); err != nil {
		f.t.Fatalf("propose: %v", err)
	}
	f.now = f.now.Add(time.Second)
	ag, _, err := f.ex.Sign(ctx, f.b.p, id, f.sign(f.b, raw, agreement.ActionCountersign))
	if err != nil {
		f.t.Fatalf("countersign: %v", err)
	}
	if !ag.Status.InForce(f.now) {
		f.t.Fatalf("agreement not in force after countersigning: %s", ag.Status.Phase)
	}
	return ag
}

// collections returns the caller's own and the counterpart's collection ids.
func (f *fixture) collections(m member, ag string) (own, theirs string) {
	cs, err := f.ex.Collections(ctx, m.p, ag)
	if err != nil || len(cs) != 2 {
		f.t.Fatalf("collections of %s: %v, %v", ag, cs, err)
	}
	for _, c := range cs {
		if c.Contributor == m.p.PartyID {
			own = c.ID
			if !c.Write || !c.Read {
				f.t.Fatalf("own collection access = %+v", c.Access)
			}
		} else {
			theirs = c.ID
			if c.Write || !c.Read {
				f.t.Fatalf("counterpart collection access = %+v", c.Access)
			}
		}
	}
	return own, theirs
}

func indicator(n int, marking string) json.RawMessage {
	refs := ""
	if marking != "" {
		refs = fmt.Sprintf(`,"object_marking_refs":[%q]`, marking)
	}
	return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.0.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"%s}`,
		n, n/256, n%256, refs))
}

func batch(from, n int) []json.RawMessage {
	var out []json.RawMessage
	for i := from; i < from+n; i++ {
		out = append(out, indicator(i, ""))
	}
	return out
}

func (f *fixture) readAll(m member, ag, coll string) []string {
	f.t.Helper()
	var ids []string
	var after store.Position
	for {
		pg, err := f.ex.Query(ctx, m.p, ag, store.ObjectQuery{Collection: coll, Limit: 7, After: after})
		if err != nil {
			f.t.Fatal(err)
		}
		for _, o := range pg.Objects {
			ids = append(ids, o.ID)
		}
		if !pg.More {
			return ids
		}
		last := pg.Objects[len(pg.Objects)-1]
		after = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
	}
}

func TestGiveToGet(t *testing.T) {
	f := newFixture(t)
	ag := f.activate(nil)
	id := ag.Record.ID
	aOwn, aTheirs := f.collections(f.a, id)
	bOwn, bTheirs := f.collections(f.b, id)
	if aOwn != bTheirs || bOwn != aTheirs {
		t.Fatalf("collections do not pair up: a=(%s,%s) b=(%s,%s)", aOwn, aTheirs, bOwn, bTheirs)
	}
	// A publishes 100 objects: B, having given nothing, reads the grace (10).
	res, err := f.ex.Ingest(ctx, f.a.p, id, aOwn, batch(0, 100))
	if err != nil || len(res.Status.Successes) != 100 {
		t.Fatalf("ingest: %+v, %v", res.Status, err)
	}
	if got := f.readAll(f.b, id, bTheirs); len(got) != 10 {
		t.Fatalf("B reads %d objects with no credits, want the grace of 10", len(got))
	}
	// B publishes 30: at 1:2 it may read 10 + 2×30 = 70, in A's publish order.
	if _, err := f.ex.Ingest(ctx, f.b.p, id, bOwn, batch(1000, 30)); err != nil {
		t.Fatal(err)
	}
	got := f.readAll(f.b, id, bTheirs)
	if len(got) != 70 {
		t.Fatalf("B reads %d after contributing 30, want 70", len(got))
	}
	for i, oid := range got {
		if want := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i); oid != want {
			t.Fatalf("B's object %d is %s, want %s (A's publish order)", i, oid, want)
		}
	}
	// Duplicates earn nothing: B re-posting its own, or A's, objects.
	if _, err := f.ex.Ingest(ctx, f.b.p, id, bOwn, append(batch(1000, 30), batch(0, 20)...)); err != nil {
		t.Fatal(err)
	}
	if got := f.readAll(f.b, id, bTheirs); len(got) != 70 {
		t.Fatalf("after duplicates B reads %d, want still 70", len(got))
	}
	bal, err := f.ex.Balance(ctx, f.b.p, id)
	if err != nil || bal.Contributed != 30 || bal.Released != 70 || bal.Allowance != 70 || bal.Available != 100 || bal.NextUnlocks != 2 {
		t.Fatalf("B balance = %+v, %v", bal, err)
	}
	// A reads B's: grace 10 + 2×100 credits covers all 30.
	if got := f.readAll(f.a, id, aTheirs); len(got) != 30 {
		t.Fatalf("A reads %d of B's 30", len(got))
	}
	// Out of scope: a type outside the agreement, and a marking above AMBER.
	res, err = f.ex.Ingest(ctx, f.b.p, id, bOwn, []json.RawMessage{
		json.RawMessage(`{"type":"tool","spec_version":"2.1","id":"tool--00000000-0000-4000-8000-000000000001","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"x"}`),
		indicator(2000, agreement.MarkingID(agreement.TLPRed)),
		indicator(2001, agreement.MarkingID(agreement.TLPGreen)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Status.Failures) != 2 || len(res.Status.Successes) != 1 ||
		!strings.Contains(res.Status.Failures[0].Message, `type "tool" is outside the agreement's scope`) ||
		!strings.Contains(res.Status.Failures[1].Message, "TLP:RED, above the agreement's highest TLP:AMBER") {
		t.Fatalf("scope check: %+v", res.Status)
	}
	// Termination stops further release; what was released stays.
	f.now = f.now.Add(time.Second)
	if _, _, err := f.ex.Sign(ctx, f.a.p, id, f.signDoc(f.a, ag.Versions[0], agreement.ActionTerminate)); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	f.now = f.now.Add(time.Second)
	if _, err := f.ex.Ingest(ctx, f.b.p, id, bOwn, batch(3000, 50)); !errors.Is(err, exchange.ErrForbidden) {
		t.Fatalf("ingest after termination: %v, want ErrForbidden", err)
	}
	if _, err := f.ex.Ingest(ctx, f.a.p, id, aOwn, batch(4000, 5)); !errors.Is(err, exchange.ErrForbidden) {
		t.Fatalf("ingest after termination: %v, want ErrForbidden", err)
	}
	if got := f.readAll(f.b, id, bTheirs); len(got) != 72 {
		t.Fatalf("after termination B reads %d, want the 72 already released (30 + 1 in-scope credits)", len(got))
	}
}

func TestAgreementVisibility(t *testing.T) {
	f := newFixture(t)
	ag := f.activate(nil)
	ps := party.New(f.st)
	_, secret, err := ps.Create(ctx, "charlie")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ps.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ex.Agreement(ctx, c, ag.Record.ID); !errors.Is(err, exchange.ErrNotFound) {
		t.Fatalf("outsider reading the agreement: %v", err)
	}
	if cs, err := f.ex.Collections(ctx, c, ag.Record.ID); err != nil || len(cs) != 0 {
		t.Fatalf("outsider listing collections: %v, %v", cs, err)
	}
	aOwn, _ := f.collections(f.a, ag.Record.ID)
	if _, _, err := f.ex.Collection(ctx, c, ag.Record.ID, aOwn); !errors.Is(err, exchange.ErrNotFound) {
		t.Fatalf("outsider opening a collection: %v", err)
	}
	if roots, err := f.ex.APIRoots(ctx, c); err != nil || len(roots) != 0 {
		t.Fatalf("outsider's API roots: %v, %v", roots, err)
	}
}

func TestAgreementBadInput(t *testing.T) {
	f := newFixture(t)
	id := agreement.NewID()
	raw := f.doc(id, 1, nil)
	good := f.sign(f.a, raw, agreement.ActionPropose)
	cases := []struct {
		name string
		raw  []byte
		sig  agreement.Signature
		who  member
		want error
	}{
		{"tampered document", f.doc(id, 1, func(m map[string]any) { m["reciprocity"] = map[string]any{"ratio": "1:100", "grace": 10} }), good, f.a, agreement.ErrDocumentChanged},
		{"signature by the other party", raw, f.sign(f.b, raw, agreement.ActionPropose), f.a, exchange.ErrInvalid},
		{"countersign as proposal", raw, f.sign(f.a, raw, agreement.ActionCountersign), f.a, exchange.ErrInvalid},
		{"ratio zero", f.doc(id, 1, func(m map[string]any) { m["reciprocity"] = map[string]any{"ratio": "1:0", "grace": 1} }), good, f.a, agreement.ErrInvalidDocument},
		{"unknown TLP", f.doc(id, 1, func(m map[string]any) {
			m["scope"] = map[string]any{"types": []string{"indicator"}, "max_tlp": "purple", "unmarked": "allow"}
		}), good, f.a, agreement.ErrInvalidDocument},
		{"dates reversed", f.doc(id, 1, func(m map[string]any) { m["not_after"] = f.now.Add(-48 * time.Hour).Format(time.RFC3339) }), good, f.a, agreement.ErrInvalidDocument},
		{"unknown party", f.doc(id, 1, func(m map[string]any) {
			m["parties"] = []map[string]any{{"party_id": f.a.p.PartyID, "name": "alpha", "key_id": f.a.keys.KeyID()}, {"party_id": "party--nobody", "name": "x", "key_id": f.b.keys.KeyID()}}
		}), agreement.Signature{}, f.a, exchange.ErrInvalid},
		{"proposal to oneself", f.doc(id, 1, func(m map[string]any) {
			m["parties"] = []map[string]any{{"party_id": f.a.p.PartyID, "name": "alpha", "key_id": f.a.keys.KeyID()}, {"party_id": f.a.p.PartyID, "name": "alpha", "key_id": f.a.keys.KeyID()}}
		}), good, f.a, agreement.ErrSelfAgreement},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sig := tc.sig
			if sig.Sig == nil {
				if d, err := agreement.ParseDocument(tc.raw); err == nil {
					st := agreement.StatementFor(d, agreement.ActionPropose, tc.who.p.PartyID, tc.who.keys.KeyID(), f.now)
					sig, _ = agreement.Sign(tc.who.keys, st)
				}
			}
			_, _, err := f.ex.Propose(ctx, tc.who.p, tc.raw, sig)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Propose = %v, want %v", err, tc.want)
			}
			if _, err := f.ex.Agreement(ctx, f.a.p, id); !errors.Is(err, exchange.ErrNotFound) {
				t.Fatalf("a refused proposal left an agreement behind: %v", err)
			}
		})
	}
	// A signature on version 1 never counts for version 2.
	ag := f.activate(nil)
	v2 := f.doc(ag.Record.ID, 2, func(m map[string]any) { m["reciprocity"] = map[string]any{"ratio": "1:1", "grace": 0} })
	f.now = f.now.Add(time.Second)
	if _, _, err := f.ex.Amend(ctx, f.a.p, ag.Record.ID, v2, f.sign(f.a, v2, agreement.ActionAmend)); err != nil {
		t.Fatalf("amend: %v", err)
	}
	f.now = f.now.Add(time.Second)
	v1sig := f.signDoc(f.b, ag.Versions[0], agreement.ActionCountersign)
	if _, _, err := f.ex.Sign(ctx, f.b.p, ag.Record.ID, v1sig); err == nil {
		t.Fatal("a countersignature on version 1 was accepted for the pending version 2")
	}
	// A signature far from the server's clock is refused.
	stale := f.sign(f.b, v2, agreement.ActionCountersign)
	f.now = f.now.Add(time.Hour)
	if _, _, err := f.ex.Sign(ctx, f.b.p, ag.Record.ID, stale); !errors.Is(err, exchange.ErrInvalid) {
		t.Fatalf("stale signature: %v, want ErrInvalid", err)
	}
}

// A status computed inside a transaction that rolls back must not be
// served afterwards: the cache is keyed by the history's content.
func TestStatusCacheSurvivesRollback(t *testing.T) {
	f := newFixture(t)
	id := agreement.NewID()
	raw := f.doc(id, 1, nil)
	if _, _, err := f.ex.Propose(ctx, f.a.p, raw, f.sign(f.a, raw, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Second)
	counter := f.sign(f.b, raw, agreement.ActionCountersign)
	sigRaw, err := json.Marshal(counter)
	if err != nil {
		t.Fatal(err)
	}
	rollback := errors.New("roll back")
	err = f.st.Update(ctx, func(tx store.Handle) error {
		x := tx
		if _, err := x.Agreements().AddSignature(ctx, store.AgreementSignature{AgreementID: id, Version: 1, PartyID: f.b.p.PartyID,
			Action: string(agreement.ActionCountersign), Raw: sigRaw, SignedAt: counter.SignedAt}); err != nil {
			return err
		}
		a, err := exchange.LoadAgreementInTx(f.ex, tx, id)
		if err != nil {
			return err
		}
		if a.Status.Phase != agreement.PhaseActive {
			return fmt.Errorf("inside the transaction: %s", a.Status.Phase)
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatal(err)
	}
	// Another instance then records a different second signature: the
	// proposer withdraws its proposal. The history has the same length as
	// the rolled-back one but must not be mistaken for it.
	f.now = f.now.Add(time.Second)
	withdraw := f.sign(f.a, raw, agreement.ActionTerminate)
	wRaw, err := json.Marshal(withdraw)
	if err != nil {
		t.Fatal(err)
	}
	x := f.st
	if _, err := x.Agreements().AddSignature(ctx, store.AgreementSignature{AgreementID: id, Version: 1, PartyID: f.a.p.PartyID,
		Action: string(agreement.ActionTerminate), Raw: wRaw, SignedAt: withdraw.SignedAt}); err != nil {
		t.Fatal(err)
	}
	a, err := f.ex.Agreement(ctx, f.a.p, id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status.Phase != agreement.PhaseTerminated || a.Status.InForce(f.now) {
		t.Fatalf("the agreement is %s (in force %v): a rolled-back countersignature was served from the cache", a.Status.Phase, a.Status.InForce(f.now))
	}
}

// TestFeedReleaseNotifiesReader: each release of give-to-get puts one
// feed.released event on the reader's stream (the dashboard's "new
// releases"), naming the agreement and the released range; the contributor
// hears nothing of its own objects' release.
func TestFeedReleaseNotifiesReader(t *testing.T) {
	f := newFixture(t)
	id := f.activate(nil).Record.ID
	aOwn, _ := f.collections(f.a, id)
	bOwn, _ := f.collections(f.b, id)
	released := func(m member) []map[string]any {
		t.Helper()
		evs, err := f.st.Events().After(ctx, m.p.PartyID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, e := range evs {
			if e.Kind != "feed.released" {
				continue
			}
			if e.Subject != id {
				t.Fatalf("feed.released about %q, want the agreement %q", e.Subject, id)
			}
			var d map[string]any
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
		return out
	}
	if _, err := f.ex.Ingest(ctx, f.a.p, id, aOwn, batch(0, 100)); err != nil {
		t.Fatal(err)
	}
	if got := released(f.b); len(got) != 1 || got[0]["from"] != 1.0 || got[0]["to"] != 10.0 || got[0]["contributor"] != f.a.p.PartyID {
		t.Fatalf("B's release events after A's 100 = %v, want one of 1..10 from A", got)
	}
	if got := released(f.a); len(got) != 0 {
		t.Fatalf("A was told of releases %v, having been released nothing", got)
	}
	if _, err := f.ex.Ingest(ctx, f.b.p, id, bOwn, batch(1000, 30)); err != nil {
		t.Fatal(err)
	}
	if got := released(f.b); len(got) != 2 || got[1]["from"] != 11.0 || got[1]["to"] != 70.0 {
		t.Fatalf("B's release events after giving 30 = %v, want a second of 11..70", got)
	}
	if got := released(f.a); len(got) != 1 || got[0]["to"] != 30.0 || got[0]["contributor"] != f.b.p.PartyID {
		t.Fatalf("A's release events = %v, want one of B's 30", got)
	}
}
