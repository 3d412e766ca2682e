package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/store"
)

// Attacks on the identities, keys and times in agreement documents and
// signatures (issue 12, findings 3–6), made through the management API as a
// party with valid credentials would make them.

// newSignWorld is a bare server with a raw HTTP client for these attacks.
func newSignWorld(t *testing.T) *attackWorld {
	t.Helper()
	return &attackWorld{s: Start(t), hc: &http.Client{Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signAt signs an action on d by p, dated at.
func signAt(t testing.TB, p *Party, d *agreement.Document, action agreement.Action, at time.Time) agreement.Signature {
	t.Helper()
	st := agreement.StatementFor(d, action, p.ID, p.Keys.KeyID(), at)
	switch action {
	case agreement.ActionSuspend, agreement.ActionResume, agreement.ActionTerminate:
		st.EffectiveAt, st.Reason = st.SignedAt, "attack test"
	}
	sig, err := agreement.Sign(p.Keys, st)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func proposeReq(p *Party, d *agreement.Document, sig agreement.Signature) req {
	return apiPost(p, "/api/v1/agreements", map[string]any{"document": json.RawMessage(d.Canonical()), "signature": sig})
}

func amendReq(p *Party, d *agreement.Document, sig agreement.Signature) req {
	return apiPost(p, "/api/v1/agreements/"+d.ID+"/versions", map[string]any{"document": json.RawMessage(d.Canonical()), "signature": sig})
}

func signReq(p *Party, sig agreement.Signature) req {
	return apiPost(p, "/api/v1/agreements/"+sig.AgreementID+"/signatures", map[string]any{"signature": sig})
}

// wantRefused fails unless r has the status and its message names want.
func wantRefused(t *testing.T, what string, r reply, status int, want ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: got %s, want %d", what, r, status)
		return
	}
	for _, w := range want {
		if !bytes.Contains(r.Body, []byte(w)) {
			t.Errorf("%s: the error does not say %q: %s", what, w, r.Body)
		}
	}
}

// views is what a party sees of its agreements through every surface:
// the agreement list, each agreement, TAXII discovery and the dashboard.
type views struct {
	list, discovery []byte
	agreements      map[string][]byte
}

// see reads p's views, failing on any answer but 200.
func (w *attackWorld) see(t *testing.T, p *Party) views {
	t.Helper()
	v := views{agreements: map[string][]byte{}}
	r := w.send(t, get(p, "/api/v1/agreements"))
	if r.Status != 200 {
		t.Fatalf("%s's agreement list: %s", p.Name, r)
	}
	v.list = r.Body
	var l struct {
		Agreements []struct{ ID string } `json:"agreements"`
	}
	if err := json.Unmarshal(r.Body, &l); err != nil {
		t.Fatal(err)
	}
	for _, a := range l.Agreements {
		r := w.send(t, get(p, "/api/v1/agreements/"+a.ID))
		if r.Status != 200 {
			t.Fatalf("%s's agreement %s: %s", p.Name, a.ID, r)
		}
		v.agreements[a.ID] = r.Body
		if r := w.send(t, get(p, "/api/v1/agreements/"+a.ID+"/balance")); r.Status != 200 {
			t.Fatalf("%s's balance under %s: %s", p.Name, a.ID, r)
		} else {
			v.agreements[a.ID+"/balance"] = r.Body
		}
	}
	r = w.send(t, get(p, "/taxii2/"))
	if r.Status != 200 {
		t.Fatalf("%s's TAXII discovery: %s", p.Name, r)
	}
	v.discovery = r.Body
	cookie, _ := w.signIn(t, p)
	if r := w.send(t, req{Path: "/ui/", Header: map[string]string{"Cookie": cookie}}); r.Status != 200 {
		t.Fatalf("%s's dashboard: %s", p.Name, r)
	}
	for id := range v.agreements {
		if strings.HasSuffix(id, "/balance") {
			continue
		}
		if r := w.send(t, req{Path: "/ui/agreements/" + id, Header: map[string]string{"Cookie": cookie}}); r.Status != 200 {
			t.Fatalf("%s's dashboard page of %s: %s", p.Name, id, r)
		}
	}
	return v
}

// unchanged fails unless p's views now are what they were.
func (w *attackWorld) unchanged(t *testing.T, p *Party, before views) {
	t.Helper()
	after := w.see(t, p)
	if !bytes.Equal(after.list, before.list) {
		t.Errorf("%s's agreement list changed:\nbefore %s\nafter  %s", p.Name, before.list, after.list)
	}
	if !bytes.Equal(after.discovery, before.discovery) {
		t.Errorf("%s's TAXII discovery changed:\nbefore %s\nafter  %s", p.Name, before.discovery, after.discovery)
	}
	for id, b := range before.agreements {
		if !bytes.Equal(after.agreements[id], b) {
			t.Errorf("%s's view of %s changed:\nbefore %s\nafter  %s", p.Name, id, b, after.agreements[id])
		}
	}
}

// TestAttackBackdatedRotation (finding 3): a party rotates its key with a
// time before a signature it already made with that key — its
// countersignature, its proposal, its suspension — hoping to invalidate
// it and break the agreement for the other side. The rotation is refused
// with a clear 409; after a restart the victim's list, agreements,
// balances, TAXII discovery and dashboard answer exactly as before, and it
// can still terminate. A rotation dated after the signatures is accepted
// and breaks nothing either.
func TestAttackBackdatedRotation(t *testing.T) {
	for _, tc := range []struct {
		name             string
		attackerProposes bool
		alsoSuspends     bool
	}{
		{"before its countersignature", false, false},
		{"before its proposal", true, false},
		{"before its suspension", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSignWorld(t)
			victim, mallory, other := w.s.NewParty(t, "cert-north"), w.s.NewParty(t, "mallory"), w.s.NewParty(t, "police-south")
			Activate(t, victim, other, Document(t, victim, other, nil))
			var d *agreement.Document
			var last agreement.Signature
			if tc.attackerProposes {
				d = Document(t, mallory, victim, nil)
				last = Sign(t, mallory, d, agreement.ActionPropose)
				if _, err := mallory.C.Propose(ctx, d, last); err != nil {
					t.Fatal(err)
				}
				if _, err := victim.C.Sign(ctx, Sign(t, victim, d, agreement.ActionCountersign)); err != nil {
					t.Fatal(err)
				}
			} else {
				d = Document(t, victim, mallory, nil)
				if _, err := victim.C.Propose(ctx, d, Sign(t, victim, d, agreement.ActionPropose)); err != nil {
					t.Fatal(err)
				}
				last = Sign(t, mallory, d, agreement.ActionCountersign)
				if _, err := mallory.C.Sign(ctx, last); err != nil {
					t.Fatal(err)
				}
			}
			if tc.alsoSuspends {
				last = Sign(t, mallory, d, agreement.ActionSuspend)
				if _, err := mallory.C.Sign(ctx, last); err != nil {
					t.Fatal(err)
				}
			}
			before := w.see(t, victim)
			keysBefore := w.send(t, get(victim, "/api/v1/parties/"+mallory.ID+"/keys"))

			next, err := agreement.GenerateKeys()
			if err != nil {
				t.Fatal(err)
			}
			for _, back := range []time.Duration{20 * time.Second, time.Millisecond, 0} {
				rot, err := agreement.RotateKeys(mallory.Keys, mallory.ID, next.Public(), last.SignedAt.Add(-back))
				if err != nil {
					t.Fatal(err)
				}
				wantRefused(t, "rotation "+back.String()+" before the last signature", w.send(t, apiPost(mallory, "/api/v1/keys/rotate", rot)),
					http.StatusConflict, string(last.Action), mallory.Keys.KeyID(), "after every signature")
			}
			if r := w.send(t, get(victim, "/api/v1/parties/"+mallory.ID+"/keys")); !bytes.Equal(r.Body, keysBefore.Body) {
				t.Errorf("a refused rotation changed mallory's keys:\nbefore %s\nafter  %s", keysBefore.Body, r.Body)
			}
			w.s.Restart(t) // nothing cached survives
			w.unchanged(t, victim, before)

			// A rotation after every signature is accepted and breaks nothing.
			rot, err := agreement.RotateKeys(mallory.Keys, mallory.ID, next.Public(), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if r := w.send(t, apiPost(mallory, "/api/v1/keys/rotate", rot)); r.Status != http.StatusCreated {
				t.Fatalf("an honest rotation: %s", r)
			}
			w.s.Restart(t)
			w.unchanged(t, victim, before)
			// The old key signs nothing more, even dated before the rotation.
			old := signAt(t, mallory, d, agreement.ActionTerminate, rot.At.Add(-time.Second))
			wantRefused(t, "a signature with the retired key", w.send(t, signReq(mallory, old)), http.StatusBadRequest, "rotated out")
			if _, err := victim.C.Sign(ctx, Sign(t, victim, d, agreement.ActionTerminate)); err != nil {
				t.Fatalf("the victim terminates: %v", err)
			}
		})
	}
}

// TestBrokenAgreementFailsAlone (finding 3): a data directory written
// before backdated rotations were refused holds one: its agreement no
// longer verifies. That agreement alone fails, with a clear error; every
// other view of the party works, and the party can still act on its other
// agreements.
func TestBrokenAgreementFailsAlone(t *testing.T) {
	w := newSignWorld(t)
	victim, mallory, other, outsider := w.s.NewParty(t, "cert-north"), w.s.NewParty(t, "mallory"), w.s.NewParty(t, "police-south"), w.s.NewParty(t, "outsider")
	good := Document(t, victim, other, nil)
	Activate(t, victim, other, good)
	d := Document(t, victim, mallory, nil)
	if _, err := victim.C.Propose(ctx, d, Sign(t, victim, d, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	counter := Sign(t, mallory, d, agreement.ActionCountersign)
	if _, err := mallory.C.Sign(ctx, counter); err != nil {
		t.Fatal(err)
	}
	malloryColl, _ := Collections(t, mallory, d.ID)

	// What the old server accepted: a rotation 20 s before the countersignature.
	next, err := agreement.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	at := counter.SignedAt.Add(-20 * time.Second)
	rot, err := agreement.RotateKeys(mallory.Keys, mallory.ID, next.Public(), at)
	if err != nil {
		t.Fatal(err)
	}
	rotRaw, _ := json.Marshal(rot)
	pubRaw, _ := json.Marshal(next.Public())
	if err := w.s.Srv.Store.Update(ctx, func(tx store.Handle) error {
		if err := tx.Keys().Retire(ctx, mallory.Keys.KeyID(), at); err != nil {
			return err
		}
		return tx.Keys().Add(ctx, store.PartyKey{KeyID: next.KeyID(), PartyID: mallory.ID, Public: pubRaw, ValidFrom: at, Rotation: rotRaw})
	}); err != nil {
		t.Fatal(err)
	}
	w.s.Restart(t)

	// The list shows it as broken, with the reason, beside the good one.
	r := w.send(t, get(victim, "/api/v1/agreements"))
	if r.Status != 200 {
		t.Fatalf("the list with a broken agreement: %s", r)
	}
	var list struct {
		Agreements []struct{ ID, Phase, Problem string } `json:"agreements"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	phases := map[string]string{}
	for _, a := range list.Agreements {
		phases[a.ID] = a.Phase
		if a.ID == d.ID && !strings.Contains(a.Problem, "rotated out") {
			t.Errorf("the broken agreement's reason: %q", a.Problem)
		}
	}
	if phases[d.ID] != "broken" || phases[good.ID] != "active" || len(phases) != 2 {
		t.Errorf("the list: %s", r.Body)
	}
	// The broken agreement itself: a clear 409, for either side.
	for _, p := range []*Party{victim, mallory} {
		wantRefused(t, p.Name+" reads the broken agreement", w.send(t, get(p, "/api/v1/agreements/"+d.ID)), http.StatusConflict, "agreement_broken", "rotated out")
		wantRefused(t, p.Name+" terminates the broken agreement", w.send(t, signReq(p, Sign(t, p, d, agreement.ActionTerminate))), http.StatusConflict, "agreement_broken")
	}
	// An outsider cannot tell a broken agreement from a missing one.
	identical(t, "outsider reads the broken agreement", w.send(t, get(outsider, "/api/v1/agreements/"+d.ID)),
		w.send(t, get(outsider, "/api/v1/agreements/"+missingAgreement())))
	miss := missingAgreement()
	identical(t, "outsider proposes a handover under the broken agreement",
		w.send(t, apiPost(outsider, "/api/v1/handovers", map[string]string{"agreement": d.ID, "delivers": "a", "expects": "b"})),
		w.send(t, apiPost(outsider, "/api/v1/handovers", map[string]string{"agreement": miss, "delivers": "a", "expects": "b"})))
	identical(t, "outsider files a request under the broken agreement",
		w.send(t, apiPost(outsider, "/api/v1/requests", map[string]string{"agreement": d.ID, "subject": "a", "reason": "b"})),
		w.send(t, apiPost(outsider, "/api/v1/requests", map[string]string{"agreement": miss, "subject": "a", "reason": "b"})))
	wantRefused(t, "victim proposes a handover under the broken agreement",
		w.send(t, apiPost(victim, "/api/v1/handovers", map[string]string{"agreement": d.ID, "delivers": "a", "expects": "b"})), http.StatusConflict, "agreement_broken")
	// TAXII discovery lists every root: the good one, and the broken one
	// whose own contributions stay readable but take no more writes.
	r = w.send(t, get(victim, "/taxii2/"))
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(good.ID)) {
		t.Errorf("discovery with a broken agreement: %s", r)
	}
	if r := w.send(t, get(mallory, objectsPath(d.ID, malloryColl))); r.Status != 200 {
		t.Errorf("mallory reads its own contributions under the broken agreement: %s", r)
	}
	if r := w.send(t, post(mallory, objectsPath(d.ID, malloryColl), envelope(Indicator(1, "")))); r.Status != http.StatusForbidden {
		t.Errorf("a write under the broken agreement: %s", r)
	}
	// The dashboard renders, shows the broken one, and its page explains.
	cookie, _ := w.signIn(t, victim)
	r = w.send(t, req{Path: "/ui/", Header: map[string]string{"Cookie": cookie}})
	if r.Status != 200 || !bytes.Contains(r.Body, []byte("broken")) || !bytes.Contains(r.Body, []byte("police-south")) {
		t.Errorf("the dashboard with a broken agreement: %s", r)
	}
	r = w.send(t, req{Path: "/ui/agreements/" + d.ID, Header: map[string]string{"Cookie": cookie}})
	if r.Status != http.StatusConflict || !bytes.Contains(r.Body, []byte("does not verify")) {
		t.Errorf("the dashboard page of the broken agreement: %s", r)
	}
	if r := w.send(t, req{Path: "/ui/agreements/" + good.ID, Header: map[string]string{"Cookie": cookie}}); r.Status != 200 {
		t.Errorf("the dashboard page of the good agreement: %s", r)
	}
	// The victim still acts on its good agreement.
	if _, err := victim.C.Sign(ctx, Sign(t, victim, good, agreement.ActionTerminate)); err != nil {
		t.Errorf("terminating the good agreement: %v", err)
	}
}

// TestAttackIdentitySpoofing (finding 4): mallory proposes, or amends,
// documents that put another party's name or key beside its own id, name
// its counterpart falsely, or name a party that does not exist. Each is
// refused with a clear error, and nothing appears in the victim's or
// cert-north's views.
func TestAttackIdentitySpoofing(t *testing.T) {
	w := newSignWorld(t)
	north, mallory, south := w.s.NewParty(t, "cert-north"), w.s.NewParty(t, "mallory"), w.s.NewParty(t, "police-south")
	// mallory and south have a real agreement, for the amendment variants.
	real := Document(t, mallory, south, nil)
	Activate(t, mallory, south, real)
	beforeSouth, beforeNorth := w.see(t, south), w.see(t, north)

	ghost, err := agreement.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	party := func(p *Party) map[string]any {
		return map[string]any{"party_id": p.ID, "name": p.Name, "key_id": p.Keys.KeyID()}
	}
	with := func(mine, theirs map[string]any) func(map[string]any) {
		return func(m map[string]any) { m["parties"] = []map[string]any{mine, theirs} }
	}
	edit := func(p *Party, k, v string) map[string]any {
		m := party(p)
		m[k] = v
		return m
	}
	cases := []struct {
		name   string
		mutate func(map[string]any)
		want   []string
	}{
		{"own name is cert-north", with(edit(mallory, "name", "cert-north"), party(south)), []string{`parties[0].name is \"cert-north\"`, `registered as \"mallory\"`}},
		{"own key id is cert-north's", with(edit(mallory, "key_id", north.Keys.KeyID()), party(south)), []string{"parties[0].key_id " + north.Keys.KeyID() + ` is not a key of \"mallory\"`}},
		{"own name and key id are cert-north's", with(map[string]any{"party_id": mallory.ID, "name": "cert-north", "key_id": north.Keys.KeyID()}, party(south)), []string{`parties[0].name is \"cert-north\"`}},
		{"own key id unregistered", with(edit(mallory, "key_id", ghost.KeyID()), party(south)), []string{"parties[0].key_id " + ghost.KeyID()}},
		{"counterpart named cert-north", with(party(mallory), edit(south, "name", "cert-north")), []string{`parties[1].name is \"cert-north\"`, `registered as \"police-south\"`}},
		{"counterpart with cert-north's key", with(party(mallory), edit(south, "key_id", north.Keys.KeyID())), []string{"parties[1].key_id " + north.Keys.KeyID() + ` is not a key of \"police-south\"`}},
		{"counterpart does not exist", with(party(mallory), map[string]any{"party_id": "party--00000000-0000-4000-8000-000000000000", "name": "cert-north", "key_id": ghost.KeyID()}), []string{"does not exist"}},
	}
	for _, tc := range cases {
		t.Run("propose/"+tc.name, func(t *testing.T) {
			d := Document(t, mallory, south, tc.mutate)
			wantRefused(t, "proposal", w.send(t, proposeReq(mallory, d, Sign(t, mallory, d, agreement.ActionPropose))), http.StatusBadRequest, tc.want...)
		})
		t.Run("amend/"+tc.name, func(t *testing.T) {
			d := Document(t, mallory, south, func(m map[string]any) {
				tc.mutate(m)
				m["id"], m["version"], m["supersedes"] = real.ID, 2, 1
			})
			wantRefused(t, "amendment", w.send(t, amendReq(mallory, d, Sign(t, mallory, d, agreement.ActionAmend))), http.StatusBadRequest, tc.want...)
		})
	}
	// Proposing as cert-north: a document of north's with mallory's
	// signature in north's name, or mallory's in its own.
	t.Run("propose as cert-north", func(t *testing.T) {
		d := Document(t, north, south, nil)
		st := agreement.StatementFor(d, agreement.ActionPropose, north.ID, mallory.Keys.KeyID(), time.Now())
		forged, err := agreement.Sign(mallory.Keys, st)
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, "north's document, signed by mallory in north's name", w.send(t, proposeReq(mallory, d, forged)), http.StatusBadRequest, "your own signatures")
		wantRefused(t, "north's document, signed by mallory", w.send(t, proposeReq(mallory, d, Sign(t, mallory, d, agreement.ActionPropose))), http.StatusBadRequest, "not a party")
	})
	// The signing key must be the one the document names for the signer.
	t.Run("signed with another key than named", func(t *testing.T) {
		next, err := agreement.GenerateKeys()
		if err != nil {
			t.Fatal(err)
		}
		d := Document(t, mallory, south, nil)
		st := agreement.StatementFor(d, agreement.ActionPropose, mallory.ID, next.KeyID(), time.Now())
		sig, err := agreement.Sign(next, st)
		if err != nil {
			t.Fatal(err)
		}
		if r := w.send(t, proposeReq(mallory, d, sig)); r.Status < 400 || r.Status >= 500 {
			t.Errorf("a proposal signed with an unregistered key: %s", r)
		}
	})
	w.unchanged(t, south, beforeSouth)
	w.unchanged(t, north, beforeNorth)
	// A countersignature by a key other than the one the document names
	// for the signer (here: south's new key after a rotation) is refused,
	// with a clear 400, and the proposal stays as it was.
	t.Run("countersigned with a key the document does not name", func(t *testing.T) {
		d := Document(t, mallory, south, nil)
		if _, err := mallory.C.Propose(ctx, d, Sign(t, mallory, d, agreement.ActionPropose)); err != nil {
			t.Fatal(err)
		}
		next, err := agreement.GenerateKeys()
		if err != nil {
			t.Fatal(err)
		}
		rot, err := agreement.RotateKeys(south.Keys, south.ID, next.Public(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := south.C.RotateKeys(ctx, rot); err != nil {
			t.Fatal(err)
		}
		before := w.send(t, get(mallory, "/api/v1/agreements/"+d.ID))
		sig, err := agreement.Sign(next, agreement.StatementFor(d, agreement.ActionCountersign, south.ID, next.KeyID(), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, "countersignature with the new key", w.send(t, signReq(south, sig)), http.StatusBadRequest, "names key "+south.Keys.KeyID(), "signed with key "+next.KeyID())
		if after := w.send(t, get(mallory, "/api/v1/agreements/"+d.ID)); !bytes.Equal(after.Body, before.Body) {
			t.Errorf("a refused countersignature changed the agreement:\nbefore %s\nafter  %s", before.Body, after.Body)
		}
	})
	// The honest version of each still works: names and keys from the directory.
	d := Document(t, mallory, north, nil)
	if r := w.send(t, proposeReq(mallory, d, Sign(t, mallory, d, agreement.ActionPropose))); r.Status != http.StatusCreated {
		t.Errorf("an honest proposal: %s", r)
	}
}

// TestAttackCountersignUnreviewed (finding 5): the counterpart reviews
// version 1; the proposer amends it (TLP:RED, grace 0, notice 0) before the
// countersignature arrives. A countersignature naming version 1, or
// version 2 with another document's hash, is refused with a 409 naming the
// version awaiting countersignature and its hash; the agreement stays
// unsigned; a countersignature naming exactly version 2 succeeds.
func TestAttackCountersignUnreviewed(t *testing.T) {
	w := newSignWorld(t)
	alpha, bravo := w.s.NewParty(t, "alpha"), w.s.NewParty(t, "bravo")
	v1 := Document(t, alpha, bravo, nil)
	if _, err := alpha.C.Propose(ctx, v1, Sign(t, alpha, v1, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	reviewed := Sign(t, bravo, v1, agreement.ActionCountersign) // bravo read v1
	v2 := Document(t, alpha, bravo, func(m map[string]any) {
		m["id"], m["version"], m["supersedes"] = v1.ID, 2, 1
		m["scope"] = map[string]any{"types": []string{"indicator"}, "max_tlp": "red", "unmarked": "allow"}
		m["reciprocity"] = map[string]any{"ratio": "1:1", "grace": 0}
	})
	if _, err := alpha.C.Amend(ctx, v2, Sign(t, alpha, v2, agreement.ActionAmend)); err != nil {
		t.Fatal(err)
	}
	before := w.see(t, bravo)
	h2 := v2.Hash()
	want := []string{"version awaiting countersignature is 2", "review version 2", string(hexOf(h2[:]))}
	wantRefused(t, "countersigning the reviewed version 1", w.send(t, signReq(bravo, reviewed)), http.StatusConflict, want...)
	// Version 2 with version 1's hash: the terms reviewed are not the terms signed.
	st := agreement.StatementFor(v2, agreement.ActionCountersign, bravo.ID, bravo.Keys.KeyID(), time.Now())
	st.DocumentHash = reviewed.DocumentHash
	mixed, err := agreement.Sign(bravo.Keys, st)
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "countersigning version 2 with version 1's hash", w.send(t, signReq(bravo, mixed)), http.StatusConflict, want...)
	w.unchanged(t, bravo, before)
	a, err := bravo.C.Sign(ctx, Sign(t, bravo, v2, agreement.ActionCountersign))
	if err != nil || a.Version != 2 || a.Phase != "active" {
		t.Fatalf("countersigning exactly version 2: %+v, %v", a, err)
	}
}

func hexOf(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

// TestAttackFutureDatedSignatures (finding 6): signed_at is bounded to
// two minutes of the server's clock either way (a step 270 s ahead, or far
// in the past, is refused and changes nothing), and a step dated ahead
// within the bound does not lock the other side out: its terminate,
// suspend, resume and amendment all go through.
func TestAttackFutureDatedSignatures(t *testing.T) {
	w := newSignWorld(t)
	alpha, bravo := w.s.NewParty(t, "alpha"), w.s.NewParty(t, "bravo")
	d := Document(t, alpha, bravo, nil)
	Activate(t, alpha, bravo, d)
	before := w.see(t, bravo)
	now := time.Now()
	for _, off := range []time.Duration{270 * time.Second, 121 * time.Second, -121 * time.Second, -time.Hour, 24 * time.Hour} {
		for _, action := range []agreement.Action{agreement.ActionSuspend, agreement.ActionTerminate} {
			wantRefused(t, string(action)+" dated "+off.String(), w.send(t, signReq(alpha, signAt(t, alpha, d, action, now.Add(off)))),
				http.StatusBadRequest, "more than 2m0s from the server's clock")
		}
		next, err := agreement.GenerateKeys()
		if err != nil {
			t.Fatal(err)
		}
		rot, err := agreement.RotateKeys(alpha.Keys, alpha.ID, next.Public(), now.Add(off))
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, "rotation dated "+off.String(), w.send(t, apiPost(alpha, "/api/v1/keys/rotate", rot)), http.StatusBadRequest, "more than 2m0s from the server's clock")
	}
	w.unchanged(t, bravo, before)

	// Within the bound: alpha suspends dated 100 s ahead. bravo's steps,
	// dated now, all go through.
	if r := w.send(t, signReq(alpha, signAt(t, alpha, d, agreement.ActionSuspend, time.Now().Add(100*time.Second)))); r.Status != 200 {
		t.Fatalf("a suspension 100 s ahead: %s", r)
	}
	if r := w.send(t, signReq(bravo, Sign(t, bravo, d, agreement.ActionSuspend))); r.Status != 200 {
		t.Errorf("bravo suspends after alpha's future-dated suspension: %s", r)
	}
	if r := w.send(t, signReq(bravo, Sign(t, bravo, d, agreement.ActionResume))); r.Status != 200 {
		t.Errorf("bravo resumes: %s", r)
	}
	v2 := Document(t, bravo, alpha, func(m map[string]any) {
		m["id"], m["version"], m["supersedes"] = d.ID, 2, 1
		m["reciprocity"] = map[string]any{"ratio": "1:1", "grace": 5}
	})
	if r := w.send(t, amendReq(bravo, v2, Sign(t, bravo, v2, agreement.ActionAmend))); r.Status != http.StatusCreated {
		t.Errorf("bravo amends: %s", r)
	}
	r := w.send(t, signReq(bravo, Sign(t, bravo, d, agreement.ActionTerminate)))
	if r.Status != 200 {
		t.Fatalf("bravo terminates: %s", r)
	}
	var a struct {
		Phase         string     `json:"phase"`
		TerminationAt *time.Time `json:"termination_at"`
	}
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatal(err)
	}
	// The termination (notice 0) counts from when the step before it
	// does: at most the bound later than bravo's own time.
	if a.TerminationAt == nil || a.TerminationAt.After(time.Now().Add(2*time.Minute)) {
		t.Errorf("bravo's termination takes effect at %v", a.TerminationAt)
	}
}

// TestSpoofedNameInStoredDocument (finding 4): a data directory from before
// the identity checks holds an agreement whose document names mallory
// "cert-north" (signed with mallory's own key, so it still verifies). The
// victim's dashboard names mallory — and mallory's handover — by the
// directory, never by the name written in the document.
func TestSpoofedNameInStoredDocument(t *testing.T) {
	w := newSignWorld(t)
	mallory, victim := w.s.NewParty(t, "mallory"), w.s.NewParty(t, "police-south")
	d := Document(t, mallory, victim, func(m map[string]any) {
		m["parties"] = []map[string]any{
			{"party_id": mallory.ID, "name": "cert-north", "key_id": mallory.Keys.KeyID()},
			{"party_id": victim.ID, "name": victim.Name, "key_id": victim.Keys.KeyID()},
		}
	})
	// Refused through the API now...
	wantRefused(t, "the spoofed proposal", w.send(t, proposeReq(mallory, d, Sign(t, mallory, d, agreement.ActionPropose))), http.StatusBadRequest, `registered as \"mallory\"`)
	// ...but stored by the old server.
	now := time.Now()
	if err := w.s.Srv.Store.Update(ctx, func(tx store.Handle) error {
		if err := tx.Agreements().Create(ctx, store.AgreementRecord{ID: d.ID, PartyA: mallory.ID, PartyB: victim.ID, CreatedAt: now}); err != nil {
			return err
		}
		if err := tx.Agreements().AddVersion(ctx, store.AgreementVersion{AgreementID: d.ID, Version: 1, Document: d.Canonical(), Hash: d.Hash(), CreatedAt: now}); err != nil {
			return err
		}
		for _, sg := range []agreement.Signature{Sign(t, mallory, d, agreement.ActionPropose), Sign(t, victim, d, agreement.ActionCountersign)} {
			raw, _ := json.Marshal(sg)
			if _, err := tx.Agreements().AddSignature(ctx, store.AgreementSignature{AgreementID: d.ID, Version: 1, PartyID: sg.PartyID,
				Action: string(sg.Action), Raw: raw, SignedAt: sg.SignedAt}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := w.send(t, apiPost(mallory, "/api/v1/handovers", map[string]string{"agreement": d.ID, "delivers": "a dossier", "expects": "yours"})); r.Status != http.StatusCreated {
		t.Fatalf("mallory's handover: %s", r)
	}
	cookie, _ := w.signIn(t, victim)
	for _, path := range []string{"/ui/", "/ui/agreements/" + d.ID} {
		r := w.send(t, req{Path: path, Header: map[string]string{"Cookie": cookie}})
		if r.Status != 200 || bytes.Contains(r.Body, []byte("cert-north")) || !bytes.Contains(r.Body, []byte("mallory")) {
			t.Errorf("%s names mallory by the document, not the directory: %s", path, r)
		}
	}
}
