package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// fedNode is a node with the agreement endpoints, its exchange, one party
// with keys, a switch that takes it off the network, and a record of
// every request it received.
type fedNode struct {
	st    store.Store
	id    *Identity
	ex    *exchange.Service
	esc   *escrow.Service
	mat   *matching.Service
	rep   *report.Service
	fed   *Federation
	srv   *httptest.Server
	me    party.Principal
	keys  *agreement.PrivateKeys
	token string // the first party's bearer token
	down  atomic.Bool
	mu    sync.Mutex
	heard [][]byte // every request: headers and body
	// onRequest, when set, sees each request's path and body before it is
	// served.
	onRequest func(path string, body []byte)
	// depositBytes counts the deposit content bytes the escrow service read
	// from the store outside a transaction (depositCounter).
	depositBytes atomic.Int64
}

func newFedNode(t testing.TB, partyName string) *fedNode {
	t.Helper()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := LoadIdentity(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	n := &fedNode{st: st, id: id, ex: exchange.New(st)}
	n.ex.SetNode(id.Public.VKey)
	n.esc = escrow.New(depositCounter{Store: st, n: &n.depositBytes}, n.ex)
	n.mat = matching.New(st, n.ex)
	n.rep = report.New(n.ex, st.Ledger(), party.New(st))
	n.fed = &Federation{Self: id, Peers: NewPeers(st), Ex: n.ex, Escrow: n.esc, Matching: n.mat, Reports: n.rep}
	h := NewHandler(id, NewPeers(st), "", nil)
	n.fed.Mount(h)
	mux := http.NewServeMux()
	h.Register(mux)
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.down.Load() {
			// Off the network: the connection drops without an answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		var rec bytes.Buffer
		r.Header.Write(&rec)
		rec.Write(body)
		n.mu.Lock()
		n.heard = append(n.heard, rec.Bytes())
		hook := n.onRequest
		n.mu.Unlock()
		if hook != nil {
			hook(r.URL.Path, body)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(n.srv.Close)
	n.me = n.addParty(t, partyName)
	return n
}

// addParty creates a local party with registered keys.
func (n *fedNode) addParty(t testing.TB, name string) party.Principal {
	t.Helper()
	p, token, err := party.New(n.st).Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if n.token == "" {
		n.token = token
	}
	k, err := agreement.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	pr := party.Principal{PartyID: p.ID, Name: p.Name}
	if err := n.ex.RegisterKeys(ctx, pr, k.Public()); err != nil {
		t.Fatal(err)
	}
	if n.keys == nil {
		n.keys = k
	}
	return pr
}

func (n *fedNode) pin(t testing.TB, name string, o *fedNode) store.Peer {
	t.Helper()
	p, err := NewPeers(n.st).Add(ctx, n.id, name, o.srv.URL, o.id.Public.VKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// document is a cross-node document between n's party and other.
func (n *fedNode) document(t testing.TB, other exchange.RemoteParty) *agreement.Document {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	d := &agreement.Document{SchemaVersion: agreement.SchemaVersion, ID: agreement.NewID(), Version: 1,
		Parties: [2]agreement.Party{
			{PartyID: n.me.PartyID, Name: n.me.Name, KeyID: n.keys.KeyID(), Node: n.id.Public.VKey},
			{PartyID: other.PartyID, Name: other.Name, KeyID: other.KeyID, Node: other.Node},
		},
		Scope:       agreement.Scope{Types: []string{"indicator"}, MaxTLP: agreement.TLPAmber, AllowUnmarked: true},
		Reciprocity: agreement.Terms{Give: 1, Get: 1, Grace: 10}, EscrowDeadline: time.Hour,
		RequestDeadlines: agreement.RequestDeadlines{Acknowledge: time.Hour, Fulfil: 2 * time.Hour},
		NotBefore:        now, NotAfter: now.Add(24 * time.Hour), MatchCap: agreement.DefaultMatchCap}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	return d
}

func (n *fedNode) sign(t testing.TB, d *agreement.Document, action agreement.Action) agreement.Signature {
	t.Helper()
	st := agreement.StatementFor(d, action, n.me.PartyID, n.keys.KeyID(), time.Now())
	if action == agreement.ActionSuspend || action == agreement.ActionResume {
		st.EffectiveAt, st.Reason = st.SignedAt, "test"
	}
	sig, err := agreement.Sign(n.keys, st)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// pending returns the pending outbox entries of n, oldest first.
func (n *fedNode) pending(t testing.TB) []store.OutboxEntry {
	t.Helper()
	all, err := n.st.Federation().Outbox(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.OutboxEntry
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].State == store.OutboxPending {
			out = append(out, all[i])
		}
	}
	return out
}

// history is an agreement's stored bytes: every version's document and
// every signature, in order.
func history(t testing.TB, st store.Store, id string) []byte {
	t.Helper()
	var b bytes.Buffer
	vs, err := st.Agreements().Versions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		b.Write(v.Document)
		b.WriteByte('\n')
	}
	sigs, err := st.Agreements().Signatures(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sigs {
		b.Write(s.Raw)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// twoNodes returns alice's node A and bob's node B, pinned to each other,
// with A knowing bob from B.
func twoNodes(t testing.TB) (a, b *fedNode, bob exchange.RemoteParty) {
	t.Helper()
	a, b = newFedNode(t, "alice"), newFedNode(t, "bob")
	a.pin(t, "bravo", b)
	b.pin(t, "alpha", a)
	bob, err := a.fed.LookupRemote(ctx, "bravo", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if bob.PartyID != b.me.PartyID || bob.Name != "bob" || bob.KeyID != b.keys.KeyID() || bob.Node != b.id.Public.VKey || bob.Self != a.id.Public.VKey {
		t.Fatalf("lookup of bob = %+v", bob)
	}
	return a, b, bob
}

func TestAgreementAcrossNodes(t *testing.T) {
	a, b, bob := twoNodes(t)
	doc := a.document(t, bob)
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), a.sign(t, doc, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d entries, want 1", got)
	}
	ag, err := b.ex.Agreement(ctx, b.me, doc.ID)
	if err != nil {
		t.Fatalf("bob does not see the proposal on his node: %v", err)
	}
	if ag.Status.Phase != agreement.PhaseProposed || ag.Record.PartyA != a.me.PartyID {
		t.Fatalf("on B: phase %s, proposer %s", ag.Status.Phase, ag.Record.PartyA)
	}
	if _, _, err := b.ex.Sign(ctx, b.me, doc.ID, b.sign(t, doc, agreement.ActionCountersign)); err != nil {
		t.Fatal(err)
	}
	if got := b.fed.SendDue(ctx); got != 1 {
		t.Fatalf("B's SendDue closed %d entries, want 1", got)
	}
	for _, n := range []*fedNode{a, b} {
		ag, err := n.ex.Agreement(ctx, n.me, doc.ID)
		if err != nil || ag.Status.Phase != agreement.PhaseActive {
			t.Fatalf("on %s: %v, %v", n.me.Name, ag.Status.Phase, err)
		}
		// Both contribution collections on each node (feeds.go); the
		// pull of the other party's is registered.
		if cs, err := n.st.Collections().List(ctx, doc.ID); err != nil || len(cs) != 2 {
			t.Fatalf("on %s the agreement has collections %v (%v)", n.me.Name, cs, err)
		}
		if cur, err := n.st.Federation().FeedCursors(ctx); err != nil || len(cur) != 1 || cur[0].PartyID == n.me.PartyID {
			t.Fatalf("on %s the feed cursors are %+v (%v)", n.me.Name, cur, err)
		}
	}
	// Suspension from B and resumption reach A.
	for _, action := range []agreement.Action{agreement.ActionSuspend, agreement.ActionResume} {
		if _, _, err := b.ex.Sign(ctx, b.me, doc.ID, b.sign(t, doc, action)); err != nil {
			t.Fatal(err)
		}
		b.fed.SendDue(ctx)
	}
	hA, hB := history(t, a.st, doc.ID), history(t, b.st, doc.ID)
	if !bytes.Equal(hA, hB) {
		t.Fatalf("the nodes hold different bytes:\nA: %s\nB: %s", hA, hB)
	}
	if n := bytes.Count(hA, []byte("\n")); n != 5 {
		t.Fatalf("history holds %d lines, want 1 document and 4 signatures", n)
	}
	// Each node recorded each step in its own ledger.
	for _, n := range []*fedNode{a, b} {
		size, err := n.st.Ledger().Size(ctx)
		if err != nil || size < 4 {
			t.Fatalf("ledger of %s has %d entries (%v)", n.me.Name, size, err)
		}
	}
	// Sending a delivered step again changes nothing: B answers duplicate.
	all, _ := a.st.Federation().Outbox(ctx, doc.ID, 10)
	_, out, err := a.fed.client(mustPeer(t, a, "bravo")).Do(ctx, http.MethodPost, PathStep, all[len(all)-1].Body)
	if err != nil || !bytes.Contains(out, []byte(`"duplicate":true`)) {
		t.Fatalf("a repeated step: %s, %v", out, err)
	}
	if !bytes.Equal(history(t, b.st, doc.ID), hB) {
		t.Fatal("a repeated step changed B's history")
	}
}

func mustPeer(t testing.TB, n *fedNode, name string) store.Peer {
	t.Helper()
	p, err := NewPeers(n.st).Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOutboxWaitsForAnOfflinePeer(t *testing.T) {
	a, b, bob := twoNodes(t)
	b.down.Store(true)
	// The lookup falls back to what A learned before.
	again, err := a.fed.LookupRemote(ctx, "bravo", "bob")
	if err != nil || !again.Stored || again.KeyID != bob.KeyID {
		t.Fatalf("lookup with B offline = %+v, %v", again, err)
	}
	doc := a.document(t, bob)
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), a.sign(t, doc, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	a.fed.now = func() time.Time { return clock }
	for i := 1; i <= 3; i++ {
		if got := a.fed.SendDue(ctx); got != 0 {
			t.Fatalf("SendDue to an offline peer closed %d", got)
		}
		p := a.pending(t)
		if len(p) != 1 || p[0].Attempts != i || !p[0].NextAttempt.After(clock) || p[0].LastError != "the peer did not answer" {
			t.Fatalf("after attempt %d: %+v", i, p)
		}
		// Not due yet: no attempt is made.
		a.fed.SendDue(ctx)
		if p2 := a.pending(t); p2[0].Attempts != i {
			t.Fatalf("an entry was tried before it was due: %+v", p2)
		}
		clock = p[0].NextAttempt
	}
	if _, err := b.ex.Agreement(ctx, b.me, doc.ID); !errors.Is(err, exchange.ErrNotFound) {
		t.Fatalf("B has the agreement while offline: %v", err)
	}
	b.down.Store(false)
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue once B is back closed %d", got)
	}
	if p := a.pending(t); len(p) != 0 {
		t.Fatalf("still pending: %+v", p)
	}
	if _, err := b.ex.Agreement(ctx, b.me, doc.ID); err != nil {
		t.Fatalf("B does not have the agreement after delivery: %v", err)
	}
}

// refusedCode sends body to B as A's node and returns B's coded refusal.
func refusedCode(t testing.TB, a *fedNode, body []byte) (int, string) {
	t.Helper()
	_, _, err := a.fed.client(mustPeer(t, a, "bravo")).Do(ctx, http.MethodPost, PathStep, body)
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("B accepted a hostile step (%v)", err)
	}
	if !re.Signed {
		t.Fatalf("B's refusal %s is not signed", re.Code)
	}
	return re.Status, re.Code
}

func stepBody(t testing.TB, card exchange.PartyCard, doc []byte, sig agreement.Signature) []byte {
	t.Helper()
	raw, err := json.Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(exchange.StepMessage{Signer: card, Document: doc, Signature: raw})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestHostilePeer(t *testing.T) {
	a, b, bob := twoNodes(t)
	aliceCard, err := a.ex.LocalParty(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bobCard, err := b.ex.LocalParty(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	// bob has a local agreement with carol on B, which A's party is not in.
	carol := b.addParty(t, "carol")
	_ = carol
	events := func() []store.Event {
		evs, err := b.st.Events().After(ctx, b.me.PartyID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}

	doc := a.document(t, bob)
	sig := a.sign(t, doc, agreement.ActionPropose)
	changed := *doc
	changed.Reciprocity.Grace = 1_000_000 // the signature was over grace 10

	ghost := bob
	ghost.PartyID, ghost.Name = "party--ghost", "ghost"
	ghostDoc := a.document(t, ghost)

	forged := *doc
	forged.Parties[0].Node = b.id.Public.VKey // alice placed on B
	forged.Parties[1].Node = a.id.Public.VKey

	for _, c := range []struct {
		name   string
		body   []byte
		status int
		code   string
		told   bool // bob hears of it (he is named by the document or the agreement)
	}{
		{"document changed in transit", stepBody(t, aliceCard, changed.Canonical(), sig), 422, "document_changed", true},
		{"signature changed", func() []byte {
			s := sig
			s.Sig = bytes.Clone(s.Sig)
			s.Sig[0] ^= 1
			return stepBody(t, aliceCard, doc.Canonical(), s)
		}(), 422, "signature_invalid", true},
		{"peer speaks for a party of this node", stepBody(t, bobCard, doc.Canonical(), sig), 403, "not_peers_party", true},
		{"signature by another party than the card", func() []byte {
			c := aliceCard
			c.PartyID = "party--someone"
			return stepBody(t, c, doc.Canonical(), sig)
		}(), 403, "not_peers_party", true},
		{"party this node does not have", stepBody(t, aliceCard, ghostDoc.Canonical(), a.sign(t, ghostDoc, agreement.ActionPropose)), 404, "no_such_party", false},
		{"nodes swapped", stepBody(t, aliceCard, forged.Canonical(), a.sign(t, &forged, agreement.ActionPropose)), 403, "not_peers_party", true},
		{"step for an agreement the peer is not party to", func() []byte {
			local := b.localAgreement(t, carol)
			return stepBody(t, aliceCard, nil, a.signFor(t, local, agreement.ActionSuspend))
		}(), 404, "not_party", true},
		{"step for an agreement that does not exist", stepBody(t, aliceCard, nil, a.sign(t, doc, agreement.ActionSuspend)), 404, "not_party", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(events())
			status, code := refusedCode(t, a, c.body)
			if status != c.status || code != c.code {
				t.Fatalf("refused %d %s, want %d %s", status, code, c.status, c.code)
			}
			evs := events()
			if told := len(evs) > before; told != c.told {
				t.Fatalf("bob told: %v, want %v (%d events before, %d after)", told, c.told, before, len(evs))
			}
			if c.told && (evs[len(evs)-1].Kind != "node.step_refused" || !bytes.Contains(evs[len(evs)-1].Data, []byte(c.code))) {
				t.Fatalf("bob's event = %s %s", evs[len(evs)-1].Kind, evs[len(evs)-1].Data)
			}
		})
	}
	if _, err := b.ex.Agreement(ctx, b.me, doc.ID); !errors.Is(err, exchange.ErrNotFound) {
		t.Fatalf("a refused proposal was stored: %v", err)
	}
	// B keeps serving: the genuine proposal goes through afterwards.
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), sig); err != nil {
		t.Fatal(err)
	}
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d", got)
	}
	if _, err := b.ex.Agreement(ctx, b.me, doc.ID); err != nil {
		t.Fatalf("B refused the genuine proposal after the hostile ones: %v", err)
	}
}

// localAgreement makes an agreement on n between its party and other,
// both of n.
func (n *fedNode) localAgreement(t testing.TB, other party.Principal) *agreement.Document {
	t.Helper()
	k, err := n.ex.PartyKeys(ctx, other.PartyID)
	if err != nil || len(k) == 0 {
		t.Fatal(err)
	}
	var pub agreement.PublicKeys
	json.Unmarshal(k[0].Public, &pub)
	d := n.document(t, exchange.RemoteParty{PartyID: other.PartyID, Name: other.Name, KeyID: pub.KeyID, Node: "elsewhere"})
	d.Parties[0].Node, d.Parties[1].Node = "", ""
	if _, _, err := n.ex.Propose(ctx, n.me, d.Canonical(), n.sign(t, d, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	return d
}

// signFor signs action on d as n's party, whether or not it is a party.
func (n *fedNode) signFor(t testing.TB, d *agreement.Document, action agreement.Action) agreement.Signature {
	return n.sign(t, d, action)
}

// The node endpoints refuse what internal/node refuses everywhere: no
// signature, an unpinned key, a replay, a party's token.
func TestStepEndpointAuthentication(t *testing.T) {
	a, b, bob := twoNodes(t)
	aliceCard, _ := a.ex.LocalParty(ctx, "alice")
	doc := a.document(t, bob)
	body := stepBody(t, aliceCard, doc.Canonical(), a.sign(t, doc, agreement.ActionPropose))
	url := b.srv.URL + PathStep

	post := func(sign func(*http.Request)) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
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
	if s, c := post(func(*http.Request) {}); s != 401 || c != "unsigned" {
		t.Fatalf("unsigned: %d %s", s, c)
	}
	stranger := newFedNode(t, "mallory")
	if s, c := post(func(r *http.Request) { stranger.id.SignRequest(r, body, time.Now()) }); s != 401 || c != "unknown_key" {
		t.Fatalf("unpinned: %d %s", s, c)
	}
	if s, c := post(func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer secret")
		a.id.SignRequest(r, body, time.Now())
	}); s != 401 || c != "party_token" {
		t.Fatalf("with a token: %d %s", s, c)
	}
	var saved http.Header
	if s, _ := post(func(r *http.Request) { a.id.SignRequest(r, body, time.Now()); saved = r.Header.Clone() }); s != 200 {
		t.Fatalf("signed: %d", s)
	}
	if s, c := post(func(r *http.Request) { r.Header = saved }); s != 401 || c != "replayed" {
		t.Fatalf("replayed: %d %s", s, c)
	}
	if _, err := b.ex.Agreement(ctx, b.me, doc.ID); err != nil {
		t.Fatalf("the one genuine request was not recorded: %v", err)
	}
}

// A party's token never leaves its node: everything B heard from A's
// node holds no Authorization header and no token of alice's.
func TestTokenNeverLeaves(t *testing.T) {
	a, b, bob := twoNodes(t)
	token := a.token
	if token == "" {
		t.Fatal("alice has no token")
	}
	doc := a.document(t, bob)
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), a.sign(t, doc, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.heard) < 2 {
		t.Fatalf("B heard %d requests, want the lookup and the step", len(b.heard))
	}
	for _, h := range b.heard {
		if bytes.Contains(bytes.ToLower(h), []byte("authorization:")) || bytes.Contains(h, []byte(token)) {
			t.Fatalf("a request to B carried a party's credentials:\n%s", h)
		}
		if !strings.Contains(string(h), "Signature-Input") {
			t.Fatalf("a request to B was not node-signed:\n%s", h)
		}
	}
}

// A step the peer refuses in a signed answer is not sent again: it is
// closed as refused, and the party that signed it hears why.
func TestDeliveryRefusedForGood(t *testing.T) {
	a, b, bob := twoNodes(t)
	// bob rotates his keys on B after A learned them: A's proposal names
	// the retired key, which B refuses.
	next, err := agreement.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	rot, err := agreement.RotateKeys(b.keys, b.me.PartyID, next.Public(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ex.RotateKeys(ctx, b.me, rot); err != nil {
		t.Fatal(err)
	}
	doc := a.document(t, bob)
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), a.sign(t, doc, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	if got := a.fed.SendDue(ctx); got != 1 {
		t.Fatalf("SendDue closed %d", got)
	}
	all, err := a.st.Federation().Outbox(ctx, doc.ID, 10)
	if err != nil || len(all) != 1 || all[0].State != store.OutboxRefused || !strings.HasPrefix(all[0].LastError, "identity_mismatch: ") {
		t.Fatalf("outbox = %+v, %v", all, err)
	}
	if got := a.fed.SendDue(ctx); got != 0 {
		t.Fatalf("a refused step was sent again (%d)", got)
	}
	evs, err := a.st.Events().After(ctx, a.me.PartyID, 0, 10)
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Kind != "node.delivery_refused" || !bytes.Contains(evs[len(evs)-1].Data, []byte("identity_mismatch")) {
		t.Fatalf("alice's events = %+v, %v", evs, err)
	}
}

// A peer's party gets no token on this node, and a card that is not a
// party of any node (a malformed id or name) is refused.
func TestRemotePartyLimits(t *testing.T) {
	a, _, bob := twoNodes(t)
	if _, _, err := party.New(a.st).AddToken(ctx, bob.PartyID, "x"); !errors.Is(err, party.ErrRemoteParty) {
		t.Fatalf("a token for a peer's party: %v, want ErrRemoteParty", err)
	}
	peer := mustPeer(t, a, "bravo")
	for _, card := range []exchange.PartyCard{
		{PartyID: "party--not-a-uuid", Name: "eve"},
		{PartyID: "party--00000000-0000-4000-8000-000000000001", Name: "eve@alpha"},
		{PartyID: "party--00000000-0000-4000-8000-000000000001", Name: "eve\nroot"},
	} {
		if _, err := a.ex.LearnRemoteParty(ctx, peer, card); !errors.Is(err, exchange.ErrInvalid) {
			t.Errorf("card %+v: %v, want ErrInvalid", card, err)
		}
	}
	// A card for a party of this node is refused, whatever the peer says.
	if _, err := a.ex.LearnRemoteParty(ctx, peer, exchange.PartyCard{PartyID: a.me.PartyID, Name: "alice"}); !errors.Is(err, exchange.ErrNotPeersParty) {
		t.Fatalf("a card for alice from B: %v, want ErrNotPeersParty", err)
	}
}

// An agreement step B records answers with its entry's index and leaf
// hash, and A keeps that as B's receipt (parley verify --peers holds B to
// it); a step sent again (a duplicate) records no second receipt.
func TestStepReceiptKept(t *testing.T) {
	a, b, bob := twoNodes(t)
	type receipt struct {
		peer  string
		index int64
		leaf  string
	}
	var kept []receipt
	a.fed.Receipts = func(_ context.Context, peer string, index int64, leaf string) error {
		kept = append(kept, receipt{peer, index, leaf})
		return nil
	}
	doc := a.document(t, bob)
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), a.sign(t, doc, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	heads, err := a.ex.OutboxHeads(ctx)
	if err != nil || len(heads) != 1 {
		t.Fatalf("A's outbox: %+v, %v", heads, err)
	}
	if a.fed.SendDue(ctx) != 1 || len(kept) != 1 {
		t.Fatalf("after the proposal reached B, A kept %+v", kept)
	}
	r := kept[0]
	es, err := b.st.Ledger().ReadEntries(ctx, r.index, r.index+1)
	if err != nil {
		t.Fatal(err)
	}
	if r.peer != "bravo" || r.leaf != ledger.ReceiptFor(r.index, es[0]).Hash.String() {
		t.Fatalf("receipt %+v does not name B's entry %d", r, r.index)
	}
	e, err := ledger.DecodeEntry(es[0])
	if err != nil || e.Kind != ledger.KindAgreementProposed || e.Agreement != doc.ID {
		t.Fatalf("B's entry %d is %+v (%v), not the proposal", r.index, e, err)
	}
	// The same step again (A crashed before closing its outbox entry):
	// B answers a duplicate, with no receipt in it.
	status, code, out := call(t, a, b, PathStep, json.RawMessage(heads[0].Body))
	var again exchange.StepReceipt
	if err := json.Unmarshal(out, &again); err != nil || status != 200 || !again.Duplicate || again.LeafHash != "" {
		t.Fatalf("the step again: %d %q %s", status, code, out)
	}
}
