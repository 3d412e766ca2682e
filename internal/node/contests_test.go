package node

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/store"
)

// contestOf is n's party's signed contest (or withdrawal) under doc.
func contestOf(t *testing.T, n *fedNode, docID string, st agreement.ContestStatement) agreement.SignedContest {
	t.Helper()
	st.AgreementID, st.PartyID, st.KeyID, st.SignedAt = docID, n.me.PartyID, n.keys.KeyID(), time.Now().UTC()
	sc, err := agreement.SignContest(n.keys, st)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func contestMsg(t *testing.T, id, docID string, sc agreement.SignedContest) exchange.ContestMessage {
	t.Helper()
	raw, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	return exchange.ContestMessage{Contest: id, Agreement: docID, Statement: raw}
}

func contestsOn(t *testing.T, n *fedNode, docID string) []exchange.ContestView {
	t.Helper()
	cs, err := n.ex.Contests(ctx, n.me, docID)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func balanceOf(t *testing.T, n *fedNode, docID, partyID string) store.Balance {
	t.Helper()
	bal, err := n.st.Credits().Balance(ctx, docID, partyID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return bal
}

// Alice contests, on her node A, the credit bob earned there with one of
// his objects: A's count of bob's credits drops as on one server, and
// the contest reaches B, which records it and tells bob but moves none of
// its own counts; the withdrawal goes the same way. What a hostile or
// mistaken node relays is refused, coded, shown to bob as an alert, and
// changes nothing.
func TestContestAcrossNodes(t *testing.T) {
	a, b, bob := twoNodes(t)
	doc := a.document(t, bob)
	doc.Reciprocity = agreement.Terms{Give: 1, Get: 1, Grace: 10, ContestWindow: time.Hour}
	if err := doc.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), a.sign(t, doc, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	if _, _, err := b.ex.Sign(ctx, b.me, doc.ID, b.sign(t, doc, agreement.ActionCountersign)); err != nil {
		t.Fatal(err)
	}
	if b.fed.SendDue(ctx) != 1 {
		t.Fatal("the countersignature did not reach A")
	}
	push(t, b, doc.ID, 2, 0, 3)
	push(t, a, doc.ID, 1, 0, 2)
	converge(t, a, b)
	if bal := balanceOf(t, a, doc.ID, b.me.PartyID); bal.Credits != 3 {
		t.Fatalf("A counts %+v of bob's; want 3 credits", bal)
	}
	bobOnB := balanceOf(t, b, doc.ID, b.me.PartyID)

	sc := contestOf(t, a, doc.ID, agreement.ContestStatement{Action: agreement.ContestFile, ObjectID: idOf(2, 1), Reason: "sinkholed"})
	v, err := a.ex.Contest(ctx, a.me, doc.ID, sc)
	if err != nil {
		t.Fatal(err)
	}
	if bal := balanceOf(t, a, doc.ID, b.me.PartyID); bal.Credits != 2 || bal.Contested != 1 {
		t.Fatalf("A counts %+v of bob's under the contest; want 2 credits, 1 contested", bal)
	}
	if p := a.pending(t); len(p) != 1 || p[0].Kind != exchange.OutboxContest || p[0].PartyID != a.me.PartyID {
		t.Fatalf("A's outbox after the contest: %+v", p)
	}
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d", got)
	}
	cs := contestsOn(t, b, doc.ID)
	if len(cs) != 1 || cs[0].ID != v.ID || cs[0].Contester != a.me.PartyID || cs[0].Contributor != b.me.PartyID ||
		cs[0].ObjectID != idOf(2, 1) || cs[0].Reason != "sinkholed" || cs[0].WithdrawnAt != nil {
		t.Fatalf("bob sees on B: %+v", cs)
	}
	if bal := balanceOf(t, b, doc.ID, b.me.PartyID); bal != bobOnB {
		t.Fatalf("B's count of bob moved: %+v, was %+v", bal, bobOnB)
	}
	if evs := events(t, b, b.me.PartyID, exchange.EventContestFiled); len(evs) != 1 || evs[0].Subject != v.ID {
		t.Fatalf("bob's contest events: %+v", evs)
	}
	if ks := kinds(t, b, v.ID); len(ks) != 1 || ks[0] != "feed.contested" {
		t.Fatalf("B's ledger about the contest: %v", ks)
	}

	// The same message again is a duplicate, not a second contest.
	msg := contestMsg(t, v.ID, doc.ID, sc)
	if r := relayAgain(t, a, b, msg); !r.Duplicate || r.Contest != v.ID {
		t.Fatalf("resending answered %+v", r)
	}

	// A second agreement, proposed but not countersigned: not in force on B.
	doc2 := a.document(t, bob)
	doc2.Reciprocity = doc.Reciprocity
	if _, _, err := a.ex.Propose(ctx, a.me, doc2.Canonical(), a.sign(t, doc2, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	// A third node pinned by B, which is not alice's.
	c := newFedNode(t, "carol")
	c.pin(t, "bravo", b)
	b.pin(t, "charlie", c)

	tampered := contestOf(t, a, doc.ID, agreement.ContestStatement{Action: agreement.ContestFile, ObjectID: idOf(2, 2), Reason: "x"})
	tampered.Reason = "changed on the way"
	const otherID = "contest--00000000-0000-4000-8000-00000000000a"
	for _, tc := range []struct {
		name   string
		from   *fedNode
		msg    exchange.ContestMessage
		status int
		code   string
	}{
		{"not alice's node", c, contestMsg(t, otherID, doc.ID,
			contestOf(t, a, doc.ID, agreement.ContestStatement{Action: agreement.ContestFile, ObjectID: idOf(2, 2), Reason: "x"})), http.StatusForbidden, "not_peers_party"},
		{"unknown agreement", a, contestMsg(t, otherID, "agreement--00000000-0000-4000-8000-000000000009",
			contestOf(t, a, "agreement--00000000-0000-4000-8000-000000000009", agreement.ContestStatement{Action: agreement.ContestFile, ObjectID: idOf(2, 2), Reason: "x"})), http.StatusNotFound, "not_party"},
		{"not in force", a, contestMsg(t, otherID, doc2.ID,
			contestOf(t, a, doc2.ID, agreement.ContestStatement{Action: agreement.ContestFile, ObjectID: idOf(2, 2), Reason: "x"})), http.StatusForbidden, "forbidden"},
		{"not bob's contribution", a, contestMsg(t, otherID, doc.ID,
			contestOf(t, a, doc.ID, agreement.ContestStatement{Action: agreement.ContestFile, ObjectID: idOf(1, 0), Reason: "x"})), http.StatusNotFound, "not_found"},
		{"signature does not verify", a, contestMsg(t, otherID, doc.ID, tampered), http.StatusUnprocessableEntity, "signature_invalid"},
		{"same id, another statement", a, contestMsg(t, v.ID, doc.ID,
			contestOf(t, a, doc.ID, agreement.ContestStatement{Action: agreement.ContestFile, ObjectID: idOf(2, 2), Reason: "x"})), http.StatusConflict, "conflict"},
		{"credit contested before", a, contestMsg(t, otherID, doc.ID,
			contestOf(t, a, doc.ID, agreement.ContestStatement{Action: agreement.ContestFile, ObjectID: idOf(2, 1), Reason: "again"})), http.StatusConflict, "conflict"},
		{"malformed contest id", a, contestMsg(t, "contest--x", doc.ID,
			contestOf(t, a, doc.ID, agreement.ContestStatement{Action: agreement.ContestFile, ObjectID: idOf(2, 2), Reason: "x"})), http.StatusUnprocessableEntity, "invalid"},
		{"withdrawing no contest", a, contestMsg(t, otherID, doc.ID,
			contestOf(t, a, doc.ID, agreement.ContestStatement{Action: agreement.ContestWithdraw, ContestID: otherID})), http.StatusNotFound, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alerts := len(events(t, b, b.me.PartyID, exchange.EventContestRefused))
			size, err := b.st.Ledger().Size(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st, code, _ := call(t, tc.from, b, PathContest, tc.msg)
			if st != tc.status || code != tc.code {
				t.Fatalf("refusal = %d %s; want %d %s", st, code, tc.status, tc.code)
			}
			if cs := contestsOn(t, b, doc.ID); len(cs) != 1 || cs[0].WithdrawnAt != nil {
				t.Fatalf("B's contests after a refusal: %+v", cs)
			}
			if after, err := b.st.Ledger().Size(ctx); err != nil || after != size {
				t.Fatalf("B's ledger grew from %d to %d (%v)", size, after, err)
			}
			if bal := balanceOf(t, b, doc.ID, b.me.PartyID); bal != bobOnB {
				t.Fatalf("B's count of bob moved: %+v", bal)
			}
			if tc.msg.Agreement == doc.ID || tc.msg.Agreement == doc2.ID {
				if got := len(events(t, b, b.me.PartyID, exchange.EventContestRefused)); got != alerts+1 {
					t.Fatalf("bob got %d refusal alerts, had %d", got, alerts)
				}
			}
		})
	}

	// Alice withdraws on A: A counts the credit again, and B shows the
	// contest withdrawn.
	w := contestOf(t, a, doc.ID, agreement.ContestStatement{Action: agreement.ContestWithdraw, ContestID: v.ID})
	if _, err := a.ex.WithdrawContest(ctx, a.me, doc.ID, v.ID, w); err != nil {
		t.Fatal(err)
	}
	if bal := balanceOf(t, a, doc.ID, b.me.PartyID); bal.Credits != 3 || bal.Contested != 0 {
		t.Fatalf("A counts %+v of bob's after the withdrawal", bal)
	}
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d", got)
	}
	if cs := contestsOn(t, b, doc.ID); len(cs) != 1 || cs[0].WithdrawnAt == nil || len(cs[0].Withdrawal) == 0 {
		t.Fatalf("bob sees on B after the withdrawal: %+v", cs)
	}
	if bal := balanceOf(t, b, doc.ID, b.me.PartyID); bal != bobOnB {
		t.Fatalf("B's count of bob moved: %+v", bal)
	}
	if evs := events(t, b, b.me.PartyID, exchange.EventContestWithdrawn); len(evs) != 1 || evs[0].Subject != v.ID {
		t.Fatalf("bob's withdrawal events: %+v", evs)
	}
	if r := relayAgain(t, a, b, contestMsg(t, v.ID, doc.ID, w)); !r.Duplicate {
		t.Fatalf("resending the withdrawal answered %+v", r)
	}
}

// relayAgain sends msg from a to b and returns b's receipt.
func relayAgain(t *testing.T, a, b *fedNode, msg exchange.ContestMessage) exchange.ContestReceipt {
	t.Helper()
	st, code, out := call(t, a, b, PathContest, msg)
	if st != http.StatusOK || code != "" {
		t.Fatalf("relaying again: %d %s", st, code)
	}
	var r exchange.ContestReceipt
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r
}
