package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
)

// reqNodes is alice's node A and bob's node B with an agreement between
// them in force, each with its request service on a clock the test moves.
type reqNodes struct {
	a, b       *fedNode
	ra, rb     *request.Service
	clock      time.Time
	agreement  *agreement.Document
	bobOnA     exchange.RemoteParty
	aliceCardB exchange.PartyCard
}

func newReqNodes(t *testing.T) *reqNodes {
	t.Helper()
	a, b, bob := twoNodes(t)
	n := &reqNodes{a: a, b: b, bobOnA: bob, clock: time.Now().UTC()}
	for _, fn := range []*fedNode{a, b} {
		rs := request.New(fn.st, fn.ex)
		rs.SetClock(func() time.Time { return n.clock })
		fn.fed.Requests = rs
	}
	n.ra, n.rb = a.fed.Requests, b.fed.Requests
	doc := a.document(t, bob)
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), a.sign(t, doc, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	if _, _, err := b.ex.Sign(ctx, b.me, doc.ID, b.sign(t, doc, agreement.ActionCountersign)); err != nil {
		t.Fatal(err)
	}
	b.fed.SendDue(ctx)
	n.agreement = doc
	card, err := a.ex.LocalParty(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	n.aliceCardB = card
	return n
}

// ledgerOf returns n's whole ledger: each entry's bytes and the entry.
func ledgerOf(t *testing.T, n *fedNode) ([][]byte, []ledger.Entry) {
	t.Helper()
	size, err := n.st.Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raws, err := n.st.Ledger().ReadEntries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	es := make([]ledger.Entry, len(raws))
	for i, raw := range raws {
		if es[i], err = ledger.DecodeEntry(raw); err != nil {
			t.Fatal(err)
		}
	}
	return raws, es
}

// entriesAbout returns n's ledger entries about subject, in order.
func entriesAbout(t *testing.T, n *fedNode, subject string) []ledger.Entry {
	t.Helper()
	_, es := ledgerOf(t, n)
	var out []ledger.Entry
	for _, e := range es {
		if e.Subject == subject {
			out = append(out, e)
		}
	}
	return out
}

// kinds returns the kinds of n's ledger entries about subject, in order.
func kinds(t *testing.T, n *fedNode, subject string) []string {
	t.Helper()
	var out []string
	for _, e := range entriesAbout(t, n, subject) {
		out = append(out, string(e.Kind))
	}
	return out
}

func events(t *testing.T, n *fedNode, partyID, kind string) []store.Event {
	t.Helper()
	all, err := n.st.Events().After(ctx, partyID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Event
	for _, e := range all {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func sameRequest(t *testing.T, a, b store.Request) {
	t.Helper()
	if a.ID != b.ID || a.State != b.State || !a.FiledAt.Equal(b.FiledAt) || !a.AckBy.Equal(b.AckBy) || !a.FulfilBy.Equal(b.FulfilBy) ||
		!a.AcknowledgedAt.Equal(b.AcknowledgedAt) || !a.AnsweredAt.Equal(b.AnsweredAt) || a.Ground != b.Ground || a.GroundText != b.GroundText ||
		a.HandoverID != b.HandoverID || a.Requester != b.Requester || a.Responder != b.Responder || a.Subject != b.Subject {
		t.Fatalf("the nodes hold different requests:\nA: %+v\nB: %+v", a, b)
	}
}

// A request filed on alice's node reaches bob's node with the same id and
// deadlines; bob acknowledges and refuses there and alice's node learns
// each step; both nodes hold the same request, each with its own ledger
// entries and events.
func TestRequestAcrossNodes(t *testing.T) {
	n := newReqNodes(t)
	a, b := n.a, n.b
	res, err := n.ra.File(ctx, a.me, request.FileInput{AgreementID: n.agreement.ID, Subject: "crew X", Reason: "case 7", Refs: []string{"x@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Request.ID
	if p := a.pending(t); len(p) != 1 || p[0].Kind != request.OutboxKind || p[0].PartyID != a.me.PartyID {
		t.Fatalf("A's outbox after filing: %+v", p)
	}
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d", got)
	}
	onB, err := n.rb.Get(ctx, b.me, id)
	if err != nil {
		t.Fatalf("bob does not see the request on his node: %v", err)
	}
	sameRequest(t, res.Request, onB)
	if evs := events(t, b, b.me.PartyID, request.EventFiled); len(evs) != 1 || evs[0].Subject != id {
		t.Fatalf("bob's filed events: %+v", evs)
	}

	n.clock = n.clock.Add(time.Minute)
	if _, err := n.rb.Acknowledge(ctx, b.me, id); err != nil {
		t.Fatal(err)
	}
	n.clock = n.clock.Add(time.Minute)
	if _, err := n.rb.Refuse(ctx, b.me, id, request.GroundOngoingInvestigation, ""); err != nil {
		t.Fatal(err)
	}
	if got := b.fed.SendDue(ctx); got != 2 {
		t.Fatalf("B's SendDue closed %d, want the acknowledgement and the refusal", got)
	}
	onA, err := n.ra.Get(ctx, a.me, id)
	if err != nil {
		t.Fatal(err)
	}
	onB, _ = n.rb.Get(ctx, b.me, id)
	sameRequest(t, onA, onB)
	if onA.State != store.RequestRefused || onA.Ground != request.GroundOngoingInvestigation {
		t.Fatalf("on A: %+v", onA)
	}
	want := []string{"request.filed", "request.acknowledged", "request.refused"}
	for _, fn := range []*fedNode{a, b} {
		if got := kinds(t, fn, id); !equal(got, want) {
			t.Fatalf("ledger of %s about the request: %v, want %v", fn.me.Name, got, want)
		}
	}
	for _, k := range []string{request.EventAcknowledged, request.EventRefused} {
		if evs := events(t, a, a.me.PartyID, k); len(evs) != 1 {
			t.Fatalf("alice's %s events: %+v", k, evs)
		}
	}

	// A step delivered again changes nothing: A answers duplicate.
	all, _ := b.st.Federation().Outbox(ctx, n.agreement.ID, 10)
	sizeA, _ := a.st.Ledger().Size(ctx)
	_, out, err := b.fed.client(mustPeer(t, b, "alpha")).Do(ctx, http.MethodPost, PathRequestStep, all[0].Body)
	if err != nil || !bytes.Contains(out, []byte(`"duplicate":true`)) {
		t.Fatalf("a repeated step: %s, %v", out, err)
	}
	if s, _ := a.st.Ledger().Size(ctx); s != sizeA {
		t.Fatal("a repeated step was recorded again")
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// relay posts m from `from`'s node to the peer pinned as peerName and
// returns its answer: the receipt, or its signed coded refusal.
func relay(t *testing.T, from *fedNode, peerName string, m request.Relayed) (int, string) {
	t.Helper()
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = from.fed.client(mustPeer(t, from, peerName)).Do(ctx, http.MethodPost, PathRequestStep, body)
	if err == nil {
		return 200, ""
	}
	var re *RefusedError
	if !errors.As(err, &re) || !re.Signed {
		t.Fatalf("no signed answer: %v", err)
	}
	return re.Status, re.Code
}

// A peer with valid keys that relays what it may not is refused with a
// code; the party of this node concerned hears of it; nothing changes.
func TestRequestRelayHostile(t *testing.T) {
	n := newReqNodes(t)
	a, b := n.a, n.b
	ag := n.agreement.ID
	filed, err := n.ra.File(ctx, a.me, request.FileInput{AgreementID: ag, Subject: "crew X", Reason: "case 7"})
	if err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	r := filed.Request
	d := n.agreement.RequestDeadlines
	file := func(mod func(*request.Relayed)) request.Relayed {
		at := n.clock
		m := request.Relayed{Action: request.RelayFile, Request: party.NewID("request"), Agreement: ag, Actor: a.me.PartyID, At: at,
			Subject: "s", Reason: "r", AckBy: at.Add(d.Acknowledge), FulfilBy: at.Add(d.Fulfil)}
		if mod != nil {
			mod(&m)
		}
		return m
	}
	local := b.localAgreement(t, b.addParty(t, "carol"))

	for _, c := range []struct {
		name   string
		m      request.Relayed
		status int
		code   string
		told   bool // bob hears of it on B
	}{
		{"A acknowledges for bob, B's own party", request.Relayed{Action: request.RelayAcknowledge, Request: r.ID, Agreement: ag, Actor: b.me.PartyID, At: n.clock},
			403, "not_peers_party", true},
		{"A files in bob's name", file(func(m *request.Relayed) { m.Actor = b.me.PartyID }), 403, "not_peers_party", true},
		{"A acknowledges its own party's request", request.Relayed{Action: request.RelayAcknowledge, Request: r.ID, Agreement: ag, Actor: a.me.PartyID, At: n.clock},
			403, "not_its_step", true},
		{"A refuses for alice, the requester", request.Relayed{Action: request.RelayRefuse, Request: r.ID, Agreement: ag, Actor: a.me.PartyID, At: n.clock, Ground: request.GroundNoDataHeld},
			403, "not_its_step", true},
		{"unknown agreement", file(func(m *request.Relayed) { m.Agreement = "agreement--00000000-0000-4000-8000-000000000000" }), 404, "not_party", false},
		{"agreement alice is not in", file(func(m *request.Relayed) { m.Agreement = local.ID }), 404, "not_party", true},
		{"unknown request", request.Relayed{Action: request.RelayAcknowledge, Request: party.NewID("request"), Agreement: ag, Actor: a.me.PartyID, At: n.clock},
			404, "no_such_request", true},
		{"deadlines shortened", file(func(m *request.Relayed) { m.AckBy = m.At.Add(time.Second) }), 422, "deadline_mismatch", true},
		{"filed in the future", file(func(m *request.Relayed) {
			m.At = n.clock.Add(time.Hour)
			m.AckBy, m.FulfilBy = m.At.Add(d.Acknowledge), m.At.Add(d.Fulfil)
		}),
			422, "bad_time", true},
		{"same id, other content", file(func(m *request.Relayed) { m.Request = r.ID }), 409, "illegal_step", true},
		{"unknown action", file(func(m *request.Relayed) { m.Action = "withdraw" }), 422, "invalid", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(events(t, b, b.me.PartyID, "node.step_refused"))
			sizeB, _ := b.st.Ledger().Size(ctx)
			status, code := relay(t, a, "bravo", c.m)
			if status != c.status || code != c.code {
				t.Fatalf("answered %d %s, want %d %s", status, code, c.status, c.code)
			}
			if s, _ := b.st.Ledger().Size(ctx); s != sizeB {
				t.Fatal("a refused step was recorded")
			}
			told := len(events(t, b, b.me.PartyID, "node.step_refused")) - before
			if (told == 1) != c.told || told > 1 {
				t.Fatalf("bob was told %d times", told)
			}
		})
	}
	onB, _ := n.rb.Get(ctx, b.me, r.ID)
	sameRequest(t, r, onB)

	// The lifecycle refuses across nodes what it refuses on one server:
	// acknowledging twice, answering after a refusal.
	n.clock = n.clock.Add(time.Minute)
	if _, err := n.rb.Acknowledge(ctx, b.me, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := n.rb.Refuse(ctx, b.me, r.ID, request.GroundNoDataHeld, ""); err != nil {
		t.Fatal(err)
	}
	b.fed.SendDue(ctx)
	for _, c := range []struct {
		name string
		m    request.Relayed
	}{
		{"acknowledged twice", request.Relayed{Action: request.RelayAcknowledge, Request: r.ID, Agreement: ag, Actor: b.me.PartyID, At: n.clock.Add(time.Second)}},
		{"refused again on another ground", request.Relayed{Action: request.RelayRefuse, Request: r.ID, Agreement: ag, Actor: b.me.PartyID, At: n.clock, Ground: request.GroundOther, Text: "no"}},
		{"fulfilled after the refusal", request.Relayed{Action: request.RelayFulfil, Request: r.ID, Agreement: ag, Actor: b.me.PartyID, At: n.clock,
			Handover: "handover--00000000-0000-4000-8000-000000000000"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(events(t, a, a.me.PartyID, "node.step_refused"))
			status, code := relay(t, b, "alpha", c.m)
			if status != 409 || code != "illegal_step" {
				t.Fatalf("answered %d %s, want 409 illegal_step", status, code)
			}
			if len(events(t, a, a.me.PartyID, "node.step_refused")) != before+1 {
				t.Fatal("alice was not told")
			}
		})
	}
	onA, _ := n.ra.Get(ctx, a.me, r.ID)
	onB, _ = n.rb.Get(ctx, b.me, r.ID)
	sameRequest(t, onA, onB)
	if onA.State != store.RequestRefused || onA.Ground != request.GroundNoDataHeld {
		t.Fatalf("on A after the hostile steps: %+v", onA)
	}
}

// B is offline while alice files: the filing waits in A's outbox; each
// node's sweeper flags the acknowledgement overdue on its own ledger from
// the same deadline, B's once the filing reaches it late.
func TestRequestOverdueAcrossNodes(t *testing.T) {
	n := newReqNodes(t)
	a, b := n.a, n.b
	b.down.Store(true)
	res, err := n.ra.File(ctx, a.me, request.FileInput{AgreementID: n.agreement.ID, Subject: "crew X", Reason: "case 7"})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.fed.SendDue(ctx); got != 0 {
		t.Fatalf("SendDue to an offline peer closed %d", got)
	}
	n.clock = res.Request.AckBy.Add(time.Second)
	if got, err := n.ra.Sweep(ctx); err != nil || got != 1 {
		t.Fatalf("A's sweep flagged %d (%v)", got, err)
	}
	b.down.Store(false)
	due := a.pending(t)[0].NextAttempt
	a.fed.now = func() time.Time { return due } // the retry is due
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue once B is back closed %d", got)
	}
	if got, err := n.rb.Sweep(ctx); err != nil || got != 1 {
		t.Fatalf("B's sweep flagged %d (%v)", got, err)
	}
	onA, _ := n.ra.Get(ctx, a.me, res.Request.ID)
	onB, err := n.rb.Get(ctx, b.me, res.Request.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameRequest(t, onA, onB)
	if !onA.AckOverdue || !onB.AckOverdue || onB.AnswerOverdue {
		t.Fatalf("flags: A %+v, B %+v", onA, onB)
	}
	for _, fn := range []*fedNode{a, b} {
		if got := kinds(t, fn, res.Request.ID); !equal(got, []string{"request.filed", "request.overdue"}) {
			t.Fatalf("ledger of %s: %v", fn.me.Name, got)
		}
	}
	if evs := events(t, b, b.me.PartyID, request.EventOverdue); len(evs) != 1 {
		t.Fatalf("bob's overdue events: %+v", evs)
	}
	// bob acknowledges late: both nodes judge it late alike.
	if _, err := n.rb.Acknowledge(ctx, b.me, res.Request.ID); err != nil {
		t.Fatal(err)
	}
	b.fed.SendDue(ctx)
	for _, fn := range []*fedNode{a, b} {
		e := lastEntry(t, fn, res.Request.ID)
		if e.Kind != ledger.KindRequestAcknowledged || e.Attrs["in_time"] != "false" {
			t.Fatalf("ledger of %s ends with %s in_time=%s", fn.me.Name, e.Kind, e.Attrs["in_time"])
		}
	}
}

func lastEntry(t *testing.T, n *fedNode, subject string) ledger.Entry {
	t.Helper()
	es := entriesAbout(t, n, subject)
	if len(es) == 0 {
		t.Fatalf("no entry about %s", subject)
	}
	return es[len(es)-1]
}

// Fulfilment across nodes names a handover both party nodes hold under the
// same id (escrowed handovers across nodes keep it, and relay the case to
// the other party's node through the same ordered outbox before any answer
// naming it; here the test stores it on each node as they would). The
// answer is pending on both until the handover is released; the release,
// learned by each node itself, fulfils the request on each. An answer
// naming a handover the requester's node does not hold is refused for good
// (it is not coming), and bob is told; later steps still flow.
func TestRequestFulfilledAcrossNodes(t *testing.T) {
	n := newReqNodes(t)
	a, b := n.a, n.b
	res, err := n.ra.File(ctx, a.me, request.FileInput{AgreementID: n.agreement.ID, Subject: "crew X", Reason: "case 7"})
	if err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	id := res.Request.ID
	handover := func() store.Handover {
		return store.Handover{ID: party.NewID("handover"), AgreementID: n.agreement.ID, Proposer: b.me.PartyID, Counterpart: a.me.PartyID,
			ProposerDelivers: "dossier", CounterpartDelivers: "nothing", RequestID: id, Deadline: n.clock.Add(time.Hour),
			State: store.HandoverProposed, CreatedAt: n.clock}
	}

	// A handover only B holds: A refuses the answer for good; B's own copy
	// stays pending on it until it fails, and bob hears of the refusal.
	lost := handover()
	if err := b.st.Handovers().Create(ctx, lost); err != nil {
		t.Fatal(err)
	}
	if _, err := n.rb.Fulfil(ctx, b.me, id, lost.ID); err != nil {
		t.Fatal(err)
	}
	if got := b.fed.SendDue(ctx); got != 1 {
		t.Fatalf("the answer naming an unknown handover was not closed (%d)", got)
	}
	if all, _ := b.st.Federation().Outbox(ctx, n.agreement.ID, 1); all[0].State != store.OutboxRefused || all[0].LastError[:16] != "no_such_handover" {
		t.Fatalf("B's outbox: %+v", all[0])
	}
	if evs := events(t, b, b.me.PartyID, "node.delivery_refused"); len(evs) != 1 {
		t.Fatalf("bob's delivery_refused events: %+v", evs)
	}
	if onA, _ := n.ra.Get(ctx, a.me, id); onA.HandoverID != "" {
		t.Fatalf("A took an answer naming a handover it does not hold: %+v", onA)
	}
	// It fails on B (declined): the request reopens there, as on one server.
	if err := n.rb.SweepCase(ctx, func(store.Handle) (string, error) { return n.agreement.ID, nil }, func(st *exchange.Step) error {
		lost.State = store.HandoverDeclined
		if err := st.Tx.Handovers().Update(ctx, lost); err != nil {
			return err
		}
		return request.HandoverFailed(ctx, st, lost, request.CauseDeclined, a.me.PartyID)
	}); err != nil {
		t.Fatal(err)
	}

	// A handover both hold: the answer is pending on both.
	h := handover()
	for _, fn := range []*fedNode{a, b} {
		if err := fn.st.Handovers().Create(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.rb.Fulfil(ctx, b.me, id, h.ID); err != nil {
		t.Fatal(err)
	}
	if got := b.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d", got)
	}
	onA, _ := n.ra.Get(ctx, a.me, id)
	onB, _ := n.rb.Get(ctx, b.me, id)
	sameRequest(t, onA, onB)
	if !request.Pending(onA) || onA.HandoverID != h.ID {
		t.Fatalf("on A: %+v", onA)
	}
	if got := kinds(t, a, id); !equal(got, []string{"request.filed", "request.answer_pending"}) {
		t.Fatalf("ledger of A: %v", got)
	}
	if got := kinds(t, b, id); !equal(got, []string{"request.filed", "request.answer_pending", "request.reopened", "request.answer_pending"}) {
		t.Fatalf("ledger of B: %v", got)
	}
	// Each node learns of the release itself and fulfils its copy.
	for _, rs := range []*request.Service{n.ra, n.rb} {
		err := rs.SweepCase(ctx, func(store.Handle) (string, error) { return n.agreement.ID, nil }, func(st *exchange.Step) error {
			released := h
			released.State, released.ClosedAt = store.HandoverReleased, st.Now
			if err := st.Tx.Handovers().Update(ctx, released); err != nil {
				return err
			}
			return request.HandoverReleased(ctx, st, released)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	onA, _ = n.ra.Get(ctx, a.me, id)
	onB, _ = n.rb.Get(ctx, b.me, id)
	sameRequest(t, onA, onB)
	if onA.State != store.RequestFulfilled {
		t.Fatalf("on A after the release: %+v", onA)
	}
}

// A captured signed request re-sent as is is refused by the nonce check;
// the same body under a fresh signature is a duplicate, recorded once.
func TestRequestStepReplayed(t *testing.T) {
	n := newReqNodes(t)
	a, b := n.a, n.b
	at := n.clock
	d := n.agreement.RequestDeadlines
	body, _ := json.Marshal(request.Relayed{Action: request.RelayFile, Request: party.NewID("request"), Agreement: n.agreement.ID,
		Actor: a.me.PartyID, At: at, Subject: "s", Reason: "r", AckBy: at.Add(d.Acknowledge), FulfilBy: at.Add(d.Fulfil)})
	post := func(sign func(*http.Request)) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, b.srv.URL+PathRequestStep, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		sign(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb errorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb.Error
	}
	var saved http.Header
	if s, _ := post(func(r *http.Request) { a.id.SignRequest(r, body, time.Now()); saved = r.Header.Clone() }); s != 200 {
		t.Fatalf("signed: %d", s)
	}
	size, _ := b.st.Ledger().Size(ctx)
	if s, c := post(func(r *http.Request) { r.Header = saved }); s != 401 || c != "replayed" {
		t.Fatalf("replayed: %d %s", s, c)
	}
	if s, _ := post(func(r *http.Request) { a.id.SignRequest(r, body, time.Now()) }); s != 200 {
		t.Fatalf("re-signed: %d", s)
	}
	if s2, _ := b.st.Ledger().Size(ctx); s2 != size {
		t.Fatalf("the repeated step was recorded again: %d entries, was %d", s2, size)
	}
	stranger := newFedNode(t, "mallory")
	if s, c := post(func(r *http.Request) { stranger.id.SignRequest(r, body, time.Now()) }); s != 401 || c != "unknown_key" {
		t.Fatalf("unpinned: %d %s", s, c)
	}
}

// replayLedger runs n's whole ledger through verify's replay of the
// lifecycles, as parley verify does.
func replayLedger(t *testing.T, n *fedNode) {
	t.Helper()
	raws, es := ledgerOf(t, n)
	r := audit.NewReplay()
	for i, e := range es {
		if err := r.Apply(int64(i), raws[i], e); err != nil {
			t.Fatalf("the replay of %s's ledger: %v", n.me.Name, err)
		}
	}
}

// suspendOnB suspends the agreement on bob's node, B not telling A yet
// (its outbox is not sent), and moves the clock past the suspension.
func (n *reqNodes) suspendOnB(t *testing.T) {
	t.Helper()
	if _, _, err := n.b.ex.Sign(ctx, n.b.me, n.agreement.ID, n.b.sign(t, n.agreement, agreement.ActionSuspend)); err != nil {
		t.Fatal(err)
	}
	n.clock = time.Now().UTC().Add(time.Second)
}

// A filing bob's node refuses for good (the agreement is suspended there,
// and A has not heard yet) closes the request on alice's node in the
// transaction that records the refusal: undelivered, with B's code as its
// ground, a ledger entry and alice told. The sweeper no longer flags it,
// the lifecycle refuses every later step on it, and the ledger replays.
func TestRequestUndeliveredAcrossNodes(t *testing.T) {
	n := newReqNodes(t)
	a, b := n.a, n.b
	n.suspendOnB(t)
	res, err := n.ra.File(ctx, a.me, request.FileInput{AgreementID: n.agreement.ID, Subject: "crew X", Reason: "case 7"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Request.ID
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d", got)
	}
	onA, err := n.ra.Get(ctx, a.me, id)
	if err != nil {
		t.Fatal(err)
	}
	if onA.State != store.RequestUndelivered || onA.Ground != "not_in_force" || onA.GroundText == "" || !onA.AnsweredAt.IsZero() {
		t.Fatalf("on A after B refused the filing: %+v", onA)
	}
	if _, err := n.rb.Get(ctx, b.me, id); !errors.Is(err, request.ErrNotFound) {
		t.Fatalf("bob's node holds the refused filing: %v", err)
	}
	all, _ := a.st.Federation().Outbox(ctx, n.agreement.ID, 10)
	if len(all) == 0 || all[0].State != store.OutboxRefused || !strings.HasPrefix(all[0].LastError, "not_in_force: ") {
		t.Fatalf("A's outbox: %+v", all)
	}
	if got := kinds(t, a, id); !equal(got, []string{"request.filed", "request.undelivered"}) {
		t.Fatalf("ledger of A about the request: %v", got)
	}
	if e := lastEntry(t, a, id); e.Actor != "" || e.Attrs["code"] != "not_in_force" || e.Attrs["peer"] != "bravo" ||
		!slices.Equal(e.Parties, []string{a.me.PartyID, b.me.PartyID}) {
		t.Fatalf("the closing's entry: %+v", e)
	}
	if evs := events(t, a, a.me.PartyID, request.EventUndelivered); len(evs) != 1 || evs[0].Subject != id ||
		!bytes.Contains(evs[0].Data, []byte(`"code":"not_in_force"`)) || !bytes.Contains(evs[0].Data, []byte(`"peer":"bravo"`)) {
		t.Fatalf("alice's request.undelivered events: %+v", evs)
	}
	if evs := events(t, a, a.me.PartyID, "node.delivery_refused"); len(evs) != 1 {
		t.Fatalf("alice's node.delivery_refused events: %+v", evs)
	}
	// The counts: alice made it; bob never received it.
	stats, err := n.ra.Stats(ctx, a.me, n.agreement.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Party == a.me.PartyID && s.Made != 1 || s.Party == b.me.PartyID && (s.Received != 0 || s.Open != 0) {
			t.Fatalf("stats: %+v", stats)
		}
	}

	// The sweeper leaves it alone, past both deadlines.
	n.clock = onA.FulfilBy.Add(time.Minute)
	if got, err := n.ra.Sweep(ctx); err != nil || got != 0 {
		t.Fatalf("A's sweep flagged %d (%v)", got, err)
	}
	// A step from B on it is refused by the lifecycle, and changes nothing.
	for _, m := range []request.Relayed{
		{Action: request.RelayAcknowledge, Request: id, Agreement: n.agreement.ID, Actor: b.me.PartyID, At: n.clock},
		{Action: request.RelayRefuse, Request: id, Agreement: n.agreement.ID, Actor: b.me.PartyID, At: n.clock, Ground: request.GroundNoDataHeld},
		{Action: request.RelayFulfil, Request: id, Agreement: n.agreement.ID, Actor: b.me.PartyID, At: n.clock, Handover: "handover--00000000-0000-4000-8000-000000000000"},
	} {
		if status, code := relay(t, b, "alpha", m); status != 409 || code != "illegal_step" {
			t.Fatalf("%s of an undelivered request: %d %s, want 409 illegal_step", m.Action, status, code)
		}
	}
	if again, _ := n.ra.Get(ctx, a.me, id); again.State != store.RequestUndelivered || again.AckOverdue || again.AnswerOverdue || again.Ground != onA.Ground {
		t.Fatalf("on A at the end: %+v", again)
	}
	if got := kinds(t, a, id); !equal(got, []string{"request.filed", "request.undelivered"}) {
		t.Fatalf("ledger of A about the request at the end: %v", got)
	}
	// The same refusal recorded again (another instance sent the entry
	// too) closes nothing twice.
	if _, err := n.ra.RefusedForGood(ctx, mustPeer(t, a, "bravo"), all[0], "not_in_force", "again", "again"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a closed entry's refusal recorded again: %v, want store.ErrNotFound", err)
	}
	if got := kinds(t, a, id); len(got) != 2 {
		t.Fatalf("ledger of A after the repeat: %v", got)
	}
	// B tells A of the suspension; both ledgers replay.
	b.fed.SendDue(ctx)
	replayLedger(t, a)
	replayLedger(t, b)
}

// hostileB sends A's calls to bob's node instead to a node signing with
// B's key whose request step endpoint answers as answer says: B turned
// hostile, or confused. The other endpoints answer not_found.
func hostileB(t *testing.T, n *reqNodes, answer func(m request.Relayed) (int, any)) {
	t.Helper()
	posing(t, n, n.b, answer)
}

// posing is hostileB with the node signing as o (B, or another node
// posing as B), trusting the peers o pins.
func posing(t *testing.T, n *reqNodes, o *fedNode, answer func(m request.Relayed) (int, any)) {
	t.Helper()
	h := NewHandler(o.id, NewPeers(o.st), n.b.srv.URL, nil)
	h.Route("POST "+PathRequestStep, func(ctx context.Context, peer store.Peer, body []byte) (int, any) {
		var m request.Relayed
		json.Unmarshal(body, &m)
		return answer(m)
	})
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	n.a.fed.HTTP = &http.Client{Transport: to(srv)}
}

// to is a transport that delivers every request to srv, whatever its URL.
func to(srv *httptest.Server) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Host = srv.Listener.Addr().String()
		return http.DefaultTransport.RoundTrip(r)
	})
}

// Only bob's node's signed, final refusal of alice's filing closes a
// request undelivered on her node. A hostile or confused peer cannot
// close one any other way: not by refusing a later step, by naming
// another request, by answering for another peer, by replaying a signed
// refusal, by relaying a step that says so, or with a transient failure,
// which is retried as before.
func TestRequestUndeliveredHostile(t *testing.T) {
	file := func(t *testing.T, n *reqNodes) store.Request {
		t.Helper()
		res, err := n.ra.File(ctx, n.a.me, request.FileInput{AgreementID: n.agreement.ID, Subject: "crew X", Reason: "case 7"})
		if err != nil {
			t.Fatal(err)
		}
		return res.Request
	}
	// unchanged checks that r is on A as it was, with no closing of it.
	unchanged := func(t *testing.T, n *reqNodes, r store.Request) {
		t.Helper()
		got, err := n.ra.Get(ctx, n.a.me, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != r.State || got.Ground != r.Ground {
			t.Fatalf("request %s on A is %s (%s), was %s", r.ID, got.State, got.Ground, r.State)
		}
		if slices.Contains(kinds(t, n.a, r.ID), string(ledger.KindRequestUndelivered)) {
			t.Fatalf("request %s has a request.undelivered entry", r.ID)
		}
		for _, e := range events(t, n.a, n.a.me.PartyID, request.EventUndelivered) {
			if e.Subject == r.ID {
				t.Fatalf("alice was told request %s is undelivered", r.ID)
			}
		}
	}
	// retried checks that A's one pending entry, r's filing, was tried
	// once and stays pending, and r unchanged.
	retried := func(t *testing.T, n *reqNodes, r store.Request) {
		t.Helper()
		if got := n.a.fed.SendDue(ctx); got != 0 {
			t.Fatalf("SendDue closed %d", got)
		}
		if p := n.a.pending(t); len(p) != 1 || p[0].Attempts != 1 {
			t.Fatalf("A's outbox: %+v", p)
		}
		unchanged(t, n, r)
	}
	refusal := func(status int, code string) func(request.Relayed) (int, any) {
		return func(request.Relayed) (int, any) { return status, errorBody{Error: code, Message: "no"} }
	}

	t.Run("a refusal of a later step", func(t *testing.T) {
		// bob files on B; alice acknowledges on A; B refuses the
		// acknowledgement for good: alice's step is refused, the request
		// stays acknowledged on A.
		n := newReqNodes(t)
		res, err := n.rb.File(ctx, n.b.me, request.FileInput{AgreementID: n.agreement.ID, Subject: "wallets", Reason: "case 9"})
		if err != nil {
			t.Fatal(err)
		}
		n.b.fed.SendDue(ctx)
		acked, err := n.ra.Acknowledge(ctx, n.a.me, res.Request.ID)
		if err != nil {
			t.Fatal(err)
		}
		hostileB(t, n, refusal(http.StatusConflict, "illegal_step"))
		if got := n.a.fed.SendDue(ctx); got != 1 {
			t.Fatalf("SendDue closed %d", got)
		}
		if p := n.a.pending(t); len(p) != 0 {
			t.Fatalf("A's outbox still holds %+v", p)
		}
		unchanged(t, n, acked.Request)
		// The same for a step shaped as a filing but not alice's own
		// (the entry's party is not the filer).
		r := file(t, n)
		p := n.a.pending(t)
		p[0].PartyID = n.bobOnA.PartyID
		if closed, err := n.ra.RefusedForGood(ctx, mustPeer(t, n.a, "bravo"), p[0], "not_in_force", "no", "no"); err != nil || closed {
			t.Fatalf("a filing entry of another party: closed %v, %v", closed, err)
		}
		unchanged(t, n, r)
	})

	t.Run("a refusal naming another request", func(t *testing.T) {
		// B takes the first filing, then refuses the second with an
		// answer naming the first: the second alone is closed.
		n := newReqNodes(t)
		first := file(t, n)
		n.a.fed.SendDue(ctx)
		second := file(t, n)
		hostileB(t, n, func(m request.Relayed) (int, any) {
			return http.StatusForbidden, map[string]string{"error": "not_in_force", "message": "request " + first.ID + " is refused", "request": first.ID}
		})
		if got := n.a.fed.SendDue(ctx); got != 1 {
			t.Fatalf("SendDue closed %d", got)
		}
		unchanged(t, n, first)
		if got, _ := n.ra.Get(ctx, n.a.me, second.ID); got.State != store.RequestUndelivered {
			t.Fatalf("the refused filing: %+v", got)
		}
	})

	t.Run("a refusal by another peer", func(t *testing.T) {
		// A's outbox (confused) holds alice's filing of a request to bob
		// as an entry for carol's node C, which refuses it for good: C is
		// not where the agreement places bob, so nothing closes.
		n := newReqNodes(t)
		c := newFedNode(t, "carol")
		cAtA := n.a.pin(t, "charlie", c)
		c.pin(t, "alpha", n.a)
		r := file(t, n)
		p := n.a.pending(t)
		if err := n.a.st.Federation().OutboxDone(ctx, p[0].Seq, store.OutboxDelivered, n.clock, ""); err != nil {
			t.Fatal(err)
		}
		confused := p[0]
		confused.PeerKeyID = cAtA.KeyID
		if _, err := n.a.st.Federation().Enqueue(ctx, confused); err != nil {
			t.Fatal(err)
		}
		if got := n.a.fed.SendDue(ctx); got != 1 {
			t.Fatalf("SendDue closed %d", got)
		}
		all, _ := n.a.st.Federation().Outbox(ctx, n.agreement.ID, 1)
		if all[0].State != store.OutboxRefused || all[0].PeerKeyID != cAtA.KeyID {
			t.Fatalf("C did not refuse the entry: %+v", all[0])
		}
		unchanged(t, n, r)
		// Nor does C's refusal, posing as B's node in the call
		// (the entry names B's key), count: its answer does not verify.
		posing(t, n, c, refusal(http.StatusForbidden, "not_in_force"))
		retried(t, n, file(t, n))
	})

	t.Run("a replayed refusal", func(t *testing.T) {
		// B (suspended) refuses the first filing for good, signed; the
		// same signed answer replayed to the second filing does not
		// verify for it: retried, not closed.
		n := newReqNodes(t)
		n.suspendOnB(t)
		first := file(t, n)
		var saved *http.Response
		var savedBody []byte
		n.a.fed.HTTP = &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			if saved != nil {
				resp := *saved
				resp.Header = saved.Header.Clone()
				resp.Body = io.NopCloser(bytes.NewReader(savedBody))
				return &resp, nil
			}
			resp, err := http.DefaultTransport.RoundTrip(r)
			if err != nil {
				return nil, err
			}
			savedBody, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			saved = resp
			resp2 := *resp
			resp2.Body = io.NopCloser(bytes.NewReader(savedBody))
			return &resp2, nil
		})}
		if got := n.a.fed.SendDue(ctx); got != 1 {
			t.Fatalf("SendDue closed %d", got)
		}
		if got, _ := n.ra.Get(ctx, n.a.me, first.ID); got.State != store.RequestUndelivered {
			t.Fatalf("the refused filing: %+v", got)
		}
		retried(t, n, file(t, n))
	})

	t.Run("a refusal of a filing the peer acted on", func(t *testing.T) {
		// B fails the filing for now, relays bob's acknowledgement of it
		// (which A takes: it holds the request), then refuses the filing
		// for good: B's own steps show it has the request, so nothing
		// closes; the refusal is recorded and alice told, as before.
		n := newReqNodes(t)
		r := file(t, n)
		status := http.StatusServiceUnavailable
		hostileB(t, n, func(request.Relayed) (int, any) { return status, errorBody{Error: "not_in_force", Message: "no"} })
		n.a.fed.SendDue(ctx)
		n.clock = n.clock.Add(time.Second)
		if s, code := relay(t, n.b, "alpha", request.Relayed{Action: request.RelayAcknowledge, Request: r.ID, Agreement: n.agreement.ID,
			Actor: n.b.me.PartyID, At: n.clock}); s != 200 {
			t.Fatalf("bob's acknowledgement: %d %s", s, code)
		}
		acked, _ := n.ra.Get(ctx, n.a.me, r.ID)
		status = http.StatusForbidden
		due := n.a.pending(t)[0].NextAttempt
		n.a.fed.now = func() time.Time { return due }
		if got := n.a.fed.SendDue(ctx); got != 1 {
			t.Fatalf("SendDue closed %d", got)
		}
		unchanged(t, n, acked)
		if acked.State != store.RequestAcknowledged {
			t.Fatalf("on A: %+v", acked)
		}
		if evs := events(t, n.a, n.a.me.PartyID, "node.delivery_refused"); len(evs) != 1 {
			t.Fatalf("alice's node.delivery_refused events: %+v", evs)
		}
	})

	t.Run("a relayed step that claims it", func(t *testing.T) {
		// B cannot close a request by relaying a step: there is no such
		// action, and a peer's code is no refusal ground.
		n := newReqNodes(t)
		r := file(t, n)
		n.a.fed.SendDue(ctx)
		for _, m := range []request.Relayed{
			{Action: "undelivered", Request: r.ID, Agreement: n.agreement.ID, Actor: n.b.me.PartyID, At: n.clock},
			{Action: request.RelayRefuse, Request: r.ID, Agreement: n.agreement.ID, Actor: n.b.me.PartyID, At: n.clock, Ground: "not_in_force"},
		} {
			if status, code := relay(t, n.b, "alpha", m); status != 422 || code != "invalid" {
				t.Fatalf("%s: %d %s, want 422 invalid", m.Action, status, code)
			}
		}
		unchanged(t, n, r)
	})

	for _, c := range []struct {
		name   string
		answer func(request.Relayed) (int, any)
	}{
		{"a signed 500", refusal(http.StatusInternalServerError, "internal")},
		{"a signed 503", refusal(http.StatusServiceUnavailable, "unavailable")},
		{"a signed 429", refusal(http.StatusTooManyRequests, "busy")},
	} {
		t.Run("transient: "+c.name, func(t *testing.T) {
			n := newReqNodes(t)
			hostileB(t, n, c.answer)
			retried(t, n, file(t, n))
		})
	}
	t.Run("transient: an unsigned refusal", func(t *testing.T) {
		// A proxy in front of B (or anyone on the path) answers 403
		// without B's signature: not B's word, retried.
		n := newReqNodes(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusForbidden, errorBody{Error: "not_in_force", Message: "no"})
		}))
		t.Cleanup(srv.Close)
		n.a.fed.HTTP = &http.Client{Transport: to(srv)}
		retried(t, n, file(t, n))
	})

	t.Run("a refusal with a code and text no node writes", func(t *testing.T) {
		// What a hostile B puts in its refusal is kept only as a code
		// parley writes and a bounded, printable text.
		n := newReqNodes(t)
		r := file(t, n)
		hostileB(t, n, func(request.Relayed) (int, any) {
			return http.StatusForbidden, errorBody{Error: "<script>\x00", Message: strings.Repeat("é\n", 4096)}
		})
		if got := n.a.fed.SendDue(ctx); got != 1 {
			t.Fatalf("SendDue closed %d", got)
		}
		got, _ := n.ra.Get(ctx, n.a.me, r.ID)
		if got.State != store.RequestUndelivered || got.Ground != "refused" || len(got.GroundText) > 512 || strings.ContainsRune(got.GroundText, '\n') {
			t.Fatalf("on A: state %s ground %q, text of %d bytes", got.State, got.Ground, len(got.GroundText))
		}
		replayLedger(t, n.a)
	})
}
