package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
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

// entriesAbout returns n's ledger entries about subject, in order.
func entriesAbout(t *testing.T, n *fedNode, subject string) []ledger.Entry {
	t.Helper()
	size, err := n.st.Ledger().Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raws, err := n.st.Ledger().ReadEntries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	var out []ledger.Entry
	for _, raw := range raws {
		e, err := ledger.DecodeEntry(raw)
		if err != nil {
			t.Fatal(err)
		}
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
