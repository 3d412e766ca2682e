package e2e

// The give-to-get attack family (issue 12, findings 1 and 11): a party
// with valid credentials tries to earn credits without giving intelligence
// new to the agreement, or to push data above the agreement's highest TLP
// past the scope check. Each case goes through TAXII POST on the real
// server and checks both the refusal (or the missing credit) and that the
// honest side's standing did not move.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
)

// TestAttackGranularMarkingAboveScope: an object whose object_marking_refs
// are within the agreement's highest TLP but whose granular_markings carry
// a higher level is refused, whichever TLP version names the level.
func TestAttackGranularMarkingAboveScope(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	d := Document(t, a, b, nil) // max_tlp amber
	ag := Activate(t, a, b, d).ID
	own, _ := Collections(t, a, ag)

	obj := func(objectMarking, granular string) (string, json.RawMessage) {
		id := "indicator--" + party.NewID("")
		refs := ""
		if objectMarking != "" {
			refs = fmt.Sprintf(`,"object_marking_refs":[%q]`, objectMarking)
		}
		return id, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"secret name","description":"the red part","pattern":"[ipv4-addr:value = '192.0.2.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"%s,"granular_markings":[{"selectors":["description"],"marking_ref":%q}]}`,
			id, len(id)%250, refs, granular))
	}
	for _, tc := range []struct {
		name, objectMarking, granular string
		refused                       bool
	}{
		{"green-with-granular-red", stix.TLP2Green, stix.TLP2Red, true},
		{"green-with-granular-tlp1-red", stix.TLPGreen, stix.TLPRed, true},
		{"unmarked-with-granular-red", "", stix.TLP2Red, true},
		{"amber-with-granular-amber-strict", stix.TLP2Amber, stix.TLP2AmberStrict, true},
		{"green-with-granular-amber", stix.TLP2Green, stix.TLP2Amber, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, raw := obj(tc.objectMarking, tc.granular)
			st, err := a.C.AddObjects(ctx, ag, own, []json.RawMessage{raw})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.refused {
				if st.SuccessCount != 1 {
					t.Fatalf("an object within scope was refused: %+v", st)
				}
				return
			}
			if st.SuccessCount != 0 || st.FailureCount != 1 || st.Failures[0].ID != id || !strings.Contains(st.Failures[0].Message, "above the agreement's highest TLP:AMBER") {
				t.Fatalf("granular marking above scope: status %+v, want one failure naming the level", st)
			}
			for _, got := range ReadAll(t, a, ag, own, 100) {
				if got == id {
					t.Fatalf("the refused object %s was stored", id)
				}
			}
		})
	}
	bal, err := a.C.Balance(ctx, ag)
	if err != nil || bal.Contributed != 1 {
		t.Fatalf("alpha's balance %+v, %v: only the in-scope object may count", bal, err)
	}
}

// creditWorld: alpha and bravo under an agreement (grace 2, 1:1) over
// indicators, identities and malware. Alpha contributed four indicators
// and an identity; bravo, who gave nothing, reads the grace: alpha's first
// two indicators.
type creditWorld struct {
	s            *Server
	alpha, bravo *Party
	ag           string
	alphaColl    string
	bravoColl    string
	alphaObjs    []json.RawMessage
}

func newCreditWorld(t *testing.T, mutate func(map[string]any)) *creditWorld {
	t.Helper()
	w := &creditWorld{s: Start(t)}
	w.alpha, w.bravo = w.s.NewParty(t, "alpha"), w.s.NewParty(t, "bravo")
	d := Document(t, w.alpha, w.bravo, func(m map[string]any) {
		m["scope"] = map[string]any{"types": []string{"indicator", "identity", "malware"}, "max_tlp": "amber", "unmarked": "allow"}
		m["reciprocity"] = map[string]any{"ratio": "1:1", "grace": 2}
		if mutate != nil {
			mutate(m)
		}
	})
	w.ag = Activate(t, w.alpha, w.bravo, d).ID
	w.alphaColl, w.bravoColl = Collections(t, w.alpha, w.ag)
	w.alphaObjs = append(Indicators(100, 4), identityRaw("identity--"+party.NewID(""), "Wizard Spider front company", "2026-01-01T00:00:00.000Z"))
	if st, err := w.alpha.C.AddObjects(ctx, w.ag, w.alphaColl, w.alphaObjs); err != nil || st.SuccessCount != len(w.alphaObjs) {
		t.Fatalf("alpha publishes: %+v, %v", st, err)
	}
	w.wantBalance(t, w.bravo, 0, 2)
	return w
}

func identityRaw(id, name, ts string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"identity","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"name":%q,"identity_class":"organization","sectors":["financial-services"]}`, id, ts, ts, name))
}

// wantBalance checks p's credits and what it may read of the other side.
func (w *creditWorld) wantBalance(t *testing.T, p *Party, credits float64, released int64) {
	t.Helper()
	b, err := p.C.Balance(ctx, w.ag)
	if err != nil {
		t.Fatal(err)
	}
	if b.Credits != credits || b.Released != released {
		t.Fatalf("%s's balance: %v credits, %d released; want %v and %d", p.Name, b.Credits, b.Released, credits, released)
	}
}

// postNoCredit posts objs as p and wants every one stored, none credited,
// each with a status message containing why.
func (w *creditWorld) postNoCredit(t *testing.T, p *Party, coll string, why string, objs ...json.RawMessage) {
	t.Helper()
	st, err := p.C.AddObjects(ctx, w.ag, coll, objs)
	if err != nil {
		t.Fatal(err)
	}
	if st.SuccessCount != len(objs) || st.FailureCount != 0 {
		t.Fatalf("the write was not accepted whole: %+v", st)
	}
	for _, d := range st.Successes {
		if !strings.Contains(d.Message, why) {
			t.Errorf("%s: status message %q, want it to say %q", d.ID, d.Message, why)
		}
	}
}

// rewrite decodes a STIX object, lets edit change it, and encodes it
// again (Go sorts the keys, so the key order changes too).
func rewrite(t *testing.T, raw json.RawMessage, edit func(m map[string]any)) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.MarshalIndent(m, "", "   ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAttackCopyReleasedObject: bravo re-posts what alpha released to it —
// under a new id, with new timestamps, keys reordered, white space and
// case changed, labels, confidence and a custom nonce added — and earns
// nothing; alpha's withheld objects stay withheld.
func TestAttackCopyReleasedObject(t *testing.T) {
	w := newCreditWorld(t, nil)
	released := w.alphaObjs[:2]
	var copies []json.RawMessage
	for i, raw := range released {
		copies = append(copies,
			rewrite(t, raw, func(m map[string]any) { m["id"] = "indicator--" + party.NewID("") }),
			rewrite(t, raw, func(m map[string]any) {
				m["id"] = "indicator--" + party.NewID("")
				m["created"], m["modified"], m["valid_from"] = "2026-03-01T00:00:00.000Z", "2026-03-02T00:00:00.000Z", "2026-03-01T00:00:00Z"
				m["name"] = fmt.Sprintf("  Bravo's own finding %d ", i)
				m["labels"], m["confidence"], m["x_nonce"] = []string{"fresh"}, 90, party.NewID("")
				m["pattern"] = strings.ReplaceAll(strings.ReplaceAll(m["pattern"].(string), " = ", "="), "[", "[ ")
			}),
		)
	}
	w.postNoCredit(t, w.bravo, w.bravoColl, "duplicate content", copies...)
	w.wantBalance(t, w.bravo, 0, 2)
	if got := ReadAll(t, w.bravo, w.ag, w.alphaColl, 10); len(got) != 2 {
		t.Fatalf("bravo reads %d of alpha's objects, want the 2 of the grace", len(got))
	}
	// Alpha gets nothing from bravo's copies either: they are not
	// contributions, so they are not released to it.
	if got := ReadAll(t, w.alpha, w.ag, w.bravoColl, 10); len(got) != 0 {
		t.Fatalf("alpha reads %d copies of its own objects", len(got))
	}
	// Something new still earns.
	if st, err := w.bravo.C.AddObjects(ctx, w.ag, w.bravoColl, Indicators(500, 1)); err != nil || st.Successes[0].Message != "" {
		t.Fatalf("a new indicator: %+v, %v", st, err)
	}
	w.wantBalance(t, w.bravo, 1, 3)
}

// TestAttackCopyOwnContent: alpha re-posting its own content under new
// ids earns nothing either.
func TestAttackCopyOwnContent(t *testing.T) {
	w := newCreditWorld(t, nil)
	before, err := w.alpha.C.Balance(ctx, w.ag)
	if err != nil {
		t.Fatal(err)
	}
	var copies []json.RawMessage
	for _, raw := range w.alphaObjs {
		copies = append(copies, rewrite(t, raw, func(m map[string]any) {
			typ := m["type"].(string)
			m["id"] = typ + "--" + party.NewID("")
			m["modified"] = "2026-06-01T00:00:00.000Z"
		}))
	}
	w.postNoCredit(t, w.alpha, w.alphaColl, "duplicate content", copies...)
	w.wantBalance(t, w.alpha, before.Credits, before.Released)
}

// TestAttackRepeatedPattern: twenty indicators with one pattern (names,
// ids and spacing differ) earn one credit.
func TestAttackRepeatedPattern(t *testing.T) {
	w := newCreditWorld(t, nil)
	var objs []json.RawMessage
	for i := range 20 {
		pattern := "[domain-name:value = 'c2.example.invalid']"
		if i%2 == 1 {
			pattern = "[domain-name:value='c2.example.invalid']"
		}
		objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--%s","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"C2 domain, sighting %d","pattern":%q,"pattern_type":"stix","valid_from":"2026-01-0%dT00:00:00Z"}`,
			party.NewID(""), i, pattern, 1+i%9)))
	}
	st, err := w.bravo.C.AddObjects(ctx, w.ag, w.bravoColl, objs)
	if err != nil || st.SuccessCount != 20 {
		t.Fatalf("post: %+v, %v", st, err)
	}
	if st.Successes[0].Message != "" {
		t.Fatalf("the first indicator of the pattern earns no credit: %q", st.Successes[0].Message)
	}
	for _, d := range st.Successes[1:] {
		if !strings.Contains(d.Message, "duplicate content") {
			t.Errorf("%s: %q, want duplicate content", d.ID, d.Message)
		}
	}
	w.wantBalance(t, w.bravo, 1, 3)
	// Alpha's own released pattern, re-posted by bravo, earns nothing.
	w.postNoCredit(t, w.bravo, w.bravoColl, "duplicate content", json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--%s","created":"2026-02-01T00:00:00.000Z","modified":"2026-02-01T00:00:00.000Z","name":"mine","pattern":"[ipv4-addr:value = '10.0.0.100']","pattern_type":"stix","valid_from":"2026-02-01T00:00:00Z"}`, party.NewID(""))))
	w.wantBalance(t, w.bravo, 1, 3)
}

// TestAttackTrivialNames: identities named "x" (and other names that name
// nothing) earn nothing in any agreement; an agreement's quality floor can
// ask more (a minimum length, required properties).
func TestAttackTrivialNames(t *testing.T) {
	w := newCreditWorld(t, func(m map[string]any) {
		m["reciprocity"].(map[string]any)["quality"] = map[string]any{
			"identity": map[string]any{"name_min_length": 4},
			"malware":  map[string]any{"requires": []string{"description"}},
		}
	})
	var junk []json.RawMessage
	for range 5 {
		junk = append(junk, identityRaw("identity--"+party.NewID(""), "x", "2026-01-01T00:00:00.000Z"))
	}
	w.postNoCredit(t, w.bravo, w.bravoColl, "below the quality floor", junk...)
	var more []json.RawMessage
	for _, name := range []string{"xxxxx", "Unknown", "TEST", "n/a", " ?? ", "Ab1"} {
		more = append(more, identityRaw("identity--"+party.NewID(""), name, "2026-01-01T00:00:00.000Z"))
	}
	more = append(more, json.RawMessage(fmt.Sprintf(`{"type":"malware","spec_version":"2.1","id":"malware--%s","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"Emotet","is_family":true}`, party.NewID(""))))
	w.postNoCredit(t, w.bravo, w.bravoColl, "below the quality floor", more...)
	w.wantBalance(t, w.bravo, 0, 2)
	// Real ones earn.
	good := []json.RawMessage{
		identityRaw("identity--"+party.NewID(""), "Northern Savings Bank", "2026-01-01T00:00:00.000Z"),
		json.RawMessage(fmt.Sprintf(`{"type":"malware","spec_version":"2.1","id":"malware--%s","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"Emotet","is_family":true,"description":"Banking trojan turned loader"}`, party.NewID(""))),
	}
	if st, err := w.bravo.C.AddObjects(ctx, w.ag, w.bravoColl, good); err != nil || st.SuccessCount != 2 || st.Successes[0].Message != "" || st.Successes[1].Message != "" {
		t.Fatalf("real objects: %+v, %v", st, err)
	}
	w.wantBalance(t, w.bravo, 2, 4)
}

// TestAttackCopyHandedOver: what a plain handover released is known to
// both sides: re-posting it into the feed — with its original id or a new
// one — earns neither side credit.
func TestAttackCopyHandedOver(t *testing.T) {
	w := newCreditWorld(t, nil)
	h := OpenCase(t, w.alpha, w.bravo, w.ag, time.Time{})
	alphaDossier := []json.RawMessage{Indicator(900, ""), identityRaw("identity--"+party.NewID(""), "Suspect X holding company", "2026-01-01T00:00:00.000Z")}
	bravoDossier := []json.RawMessage{Indicator(901, "")}
	if _, err := w.alpha.C.Deposit(ctx, h.ID, Bundle(alphaDossier...), client.DepositOptions{}); err != nil {
		t.Fatal(err)
	}
	if res, err := w.bravo.C.Deposit(ctx, h.ID, Bundle(bravoDossier...), client.DepositOptions{}); err != nil || !res.Released {
		t.Fatalf("release: %+v, %v", res, err)
	}
	// Bravo re-posts what it received, with the original ids, then with new ones.
	w.postNoCredit(t, w.bravo, w.bravoColl, "duplicate content", alphaDossier...)
	var renamed []json.RawMessage
	for _, raw := range alphaDossier {
		renamed = append(renamed, rewrite(t, raw, func(m map[string]any) {
			m["id"] = m["type"].(string) + "--" + party.NewID("")
			m["modified"] = "2026-07-01T00:00:00.000Z"
		}))
	}
	w.postNoCredit(t, w.bravo, w.bravoColl, "duplicate content", renamed...)
	// And what it gave itself: alpha holds it already.
	w.postNoCredit(t, w.bravo, w.bravoColl, "duplicate content", bravoDossier...)
	w.wantBalance(t, w.bravo, 0, 2)
	// Alpha re-posting what it received from bravo earns nothing either.
	before, err := w.alpha.C.Balance(ctx, w.ag)
	if err != nil {
		t.Fatal(err)
	}
	w.postNoCredit(t, w.alpha, w.alphaColl, "duplicate content", bravoDossier...)
	w.wantBalance(t, w.alpha, before.Credits, before.Released)
}

// contestStatement signs a contest or withdrawal by p, now.
func contestStatement(t *testing.T, p *Party, st agreement.ContestStatement) agreement.SignedContest {
	t.Helper()
	st.PartyID, st.KeyID = p.ID, p.Keys.KeyID()
	if st.SignedAt.IsZero() {
		st.SignedAt = time.Now()
	}
	sc, err := agreement.SignContest(p.Keys, st)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestContestCredit: the receiving party contests, with a signed
// statement, the credit the other side earned for an object it judges
// worthless; the credit stops counting for both sides' views, the ledger
// records it, and a signed withdrawal gives it back. Only what was
// released to the contester can be contested, only by it, only within the
// agreement's window, once.
func TestContestCredit(t *testing.T) {
	w := newCreditWorld(t, func(m map[string]any) {
		m["reciprocity"].(map[string]any)["contest_window"] = "1h"
	})
	// Bravo gives two indicators; alpha (grace 2) reads both.
	junk, good := Indicator(700, ""), Indicator(701, "")
	if st, err := w.bravo.C.AddObjects(ctx, w.ag, w.bravoColl, []json.RawMessage{junk, good}); err != nil || st.SuccessCount != 2 {
		t.Fatalf("bravo gives: %+v, %v", st, err)
	}
	w.wantBalance(t, w.bravo, 2, 4)
	junkID, goodID := "indicator--00000000-0000-4000-8000-000000000700", "indicator--00000000-0000-4000-8000-000000000701"
	contest := func(p *Party, objectID, reason string) agreement.SignedContest {
		return contestStatement(t, p, agreement.ContestStatement{Action: agreement.ContestFile, AgreementID: w.ag, ObjectID: objectID, Reason: reason})
	}

	// Refused: not released to the contester / not the counterpart's /
	// someone else's statement / a forged signature / no reason.
	var unreleased struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(w.alphaObjs[4], &unreleased); err != nil {
		t.Fatal(err)
	}
	_, err := w.bravo.C.FileContest(ctx, contest(w.bravo, unreleased.ID, "junk"))
	wantAPIError(t, "contesting an object not released to you", err, 404, "not_found", "")
	_, err = w.alpha.C.FileContest(ctx, contest(w.alpha, w.alphaObjs4ID(0), "my own"))
	wantAPIError(t, "contesting your own object", err, 404, "not_found", "")
	_, err = w.alpha.C.FileContest(ctx, contest(w.bravo, junkID, "signed by bravo"))
	wantAPIError(t, "submitting the other side's statement", err, 400, "invalid", "only submit your own")
	forged := contest(w.alpha, junkID, "junk")
	forged.Reason = "changed after signing"
	_, err = w.alpha.C.FileContest(ctx, forged)
	wantAPIError(t, "a statement changed after signing", err, 400, "", "")
	_, err = agreement.SignContest(w.alpha.Keys, agreement.ContestStatement{Action: agreement.ContestFile, AgreementID: w.ag, PartyID: w.alpha.ID, ObjectID: junkID, SignedAt: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "needs a reason") {
		t.Fatalf("a contest without a reason was signed: %v", err)
	}

	// Alpha contests the junk: bravo's credit for it stops counting.
	c, err := w.alpha.C.FileContest(ctx, contest(w.alpha, junkID, "a private address nobody can act on"))
	if err != nil || c.ObjectID != junkID || c.Contester != w.alpha.ID || c.Contributor != w.bravo.ID || c.Weight != 1 || c.LedgerIndex <= 0 {
		t.Fatalf("contest: %+v, %v", c, err)
	}
	b, err := w.bravo.C.Balance(ctx, w.ag)
	if err != nil || b.Credits != 1 || b.Contested != 1 || b.Released != 4 {
		t.Fatalf("bravo's balance under contest: %+v, %v; want 1 credit, 1 contested, released unchanged", b, err)
	}
	_, err = w.alpha.C.FileContest(ctx, contest(w.alpha, junkID, "again"))
	wantAPIError(t, "contesting twice", err, 409, "conflict", "contested already")
	// Both sides see it.
	for _, p := range []*Party{w.alpha, w.bravo} {
		cs, err := p.C.Contests(ctx, w.ag)
		if err != nil || len(cs) != 1 || cs[0].ID != c.ID || cs[0].Reason != "a private address nobody can act on" || cs[0].WithdrawnAt != nil {
			t.Fatalf("%s's list of contests: %+v, %v", p.Name, cs, err)
		}
		var signed agreement.SignedContest
		if err := json.Unmarshal(cs[0].Statement, &signed); err != nil || signed.ObjectID != junkID || signed.PartyID != w.alpha.ID {
			t.Fatalf("%s sees the signed statement %s: %v", p.Name, cs[0].Statement, err)
		}
	}
	// An outsider sees nothing.
	charlie := w.s.NewParty(t, "charlie")
	_, err = charlie.C.Contests(ctx, w.ag)
	wantAPIError(t, "an outsider listing contests", err, 404, "not_found", "")

	// Only the contester withdraws, with its own signed statement.
	withdraw := func(p *Party, id string) agreement.SignedContest {
		return contestStatement(t, p, agreement.ContestStatement{Action: agreement.ContestWithdraw, AgreementID: w.ag, ContestID: id})
	}
	_, err = w.bravo.C.WithdrawContest(ctx, withdraw(w.bravo, c.ID))
	wantAPIError(t, "the contributor withdrawing the contest", err, 404, "not_found", "")
	wc, err := w.alpha.C.WithdrawContest(ctx, withdraw(w.alpha, c.ID))
	if err != nil || wc.WithdrawnAt == nil || wc.WithdrawIndex <= c.LedgerIndex {
		t.Fatalf("withdrawal: %+v, %v", wc, err)
	}
	w.wantBalance(t, w.bravo, 2, 4)
	_, err = w.alpha.C.WithdrawContest(ctx, withdraw(w.alpha, c.ID))
	wantAPIError(t, "withdrawing twice", err, 409, "conflict", "withdrawn")
	_, err = w.alpha.C.FileContest(ctx, contest(w.alpha, junkID, "changed my mind again"))
	wantAPIError(t, "contesting after withdrawing", err, 409, "conflict", "")
	// The other object, after the window: too late.
	w.s.Srv.Ex.SetClock(func() time.Time { return time.Now().UTC().Add(2 * time.Hour) })
	_, err = w.alpha.C.FileContest(ctx, contestStatement(t, w.alpha, agreement.ContestStatement{Action: agreement.ContestFile, AgreementID: w.ag,
		ObjectID: goodID, Reason: "late", SignedAt: time.Now().Add(2 * time.Hour)}))
	wantAPIError(t, "contesting after the window", err, 403, "forbidden", "contest window")
}

// TestContestNeedsWindow: an agreement without contest_window has no
// contests.
func TestContestNeedsWindow(t *testing.T) {
	w := newCreditWorld(t, nil)
	if st, err := w.bravo.C.AddObjects(ctx, w.ag, w.bravoColl, []json.RawMessage{Indicator(700, "")}); err != nil || st.SuccessCount != 1 {
		t.Fatal(err)
	}
	_, err := w.alpha.C.FileContest(ctx, contestStatement(t, w.alpha, agreement.ContestStatement{Action: agreement.ContestFile, AgreementID: w.ag,
		ObjectID: "indicator--00000000-0000-4000-8000-000000000700", Reason: "junk"}))
	wantAPIError(t, "contesting without a window", err, 403, "forbidden", "contest_window")
}

// alphaObjs4ID is the id of alpha's i-th indicator (Indicators(100, 4)).
func (w *creditWorld) alphaObjs4ID(i int) string {
	return fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", 100+i)
}
