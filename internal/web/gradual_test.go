package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	parleynode "github.com/parley-cti/parley/internal/node"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// gradualNode is one sovereign node for the dashboard's gradual-release
// tests: its store and services, its node endpoints and its dashboard,
// each on its own loopback server, and one party with its keys.
type gradualNode struct {
	st    store.Store
	id    *parleynode.Identity
	ex    *exchange.Service
	esc   *escrow.Service
	fed   *parleynode.Federation
	srv   *httptest.Server // node endpoints
	dash  *httptest.Server // the dashboard
	me    party.Principal
	token string
	keys  *agreement.PrivateKeys
	other string // a second local party's token, in no case of the other node's
}

func newGradualNode(t *testing.T, partyName string) *gradualNode {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n := &gradualNode{st: st}
	if n.id, err = parleynode.LoadIdentity(ctx, st); err != nil {
		t.Fatal(err)
	}
	n.ex = exchange.New(st)
	n.ex.SetNode(n.id.Public.VKey)
	n.esc = escrow.New(st, n.ex)
	parties := party.New(st)
	n.fed = &parleynode.Federation{Self: n.id, Peers: parleynode.NewPeers(st), Ex: n.ex, Escrow: n.esc, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := parleynode.NewHandler(n.id, parleynode.NewPeers(st), "", nil)
	n.fed.Mount(h)
	mux := http.NewServeMux()
	h.Register(mux)
	n.srv = httptest.NewServer(mux)
	t.Cleanup(n.srv.Close)
	dash, err := New(Options{Exchange: n.ex, Parties: parties, Ledger: st.Ledger(), Handovers: n.esc,
		Reports: report.New(n.ex, st.Ledger(), parties), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	dmux := http.NewServeMux()
	dash.Register(dmux)
	n.dash = httptest.NewServer(dmux)
	t.Cleanup(n.dash.Close)
	p, tok, err := parties.Create(ctx, partyName)
	if err != nil {
		t.Fatal(err)
	}
	n.me, n.token = party.Principal{PartyID: p.ID, Name: p.Name}, tok
	if n.keys, err = agreement.GenerateKeys(); err != nil {
		t.Fatal(err)
	}
	if err := n.ex.RegisterKeys(ctx, n.me, n.keys.Public()); err != nil {
		t.Fatal(err)
	}
	if _, n.other, err = parties.Create(ctx, partyName+"-colleague"); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *gradualNode) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, url: n.dash.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// gradualPair is alice on A and bob on B under an active agreement that
// names no escrow node.
type gradualPair struct {
	a, b *gradualNode
	doc  *agreement.Document
}

func newGradualPair(t *testing.T) *gradualPair {
	t.Helper()
	ctx := context.Background()
	a, b := newGradualNode(t, "alice"), newGradualNode(t, "bob")
	if _, err := parleynode.NewPeers(a.st).Add(ctx, a.id, "bravo", b.srv.URL, b.id.Public.VKey); err != nil {
		t.Fatal(err)
	}
	if _, err := parleynode.NewPeers(b.st).Add(ctx, b.id, "alpha", a.srv.URL, a.id.Public.VKey); err != nil {
		t.Fatal(err)
	}
	bob, err := a.fed.LookupRemote(ctx, "bravo", "bob")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	doc := &agreement.Document{SchemaVersion: agreement.SchemaVersion, ID: agreement.NewID(), Version: 1,
		Parties: [2]agreement.Party{
			{PartyID: a.me.PartyID, Name: a.me.Name, KeyID: a.keys.KeyID(), Node: a.id.Public.VKey},
			{PartyID: bob.PartyID, Name: bob.Name, KeyID: bob.KeyID, Node: bob.Node},
		},
		Scope:       agreement.Scope{Types: []string{"indicator"}, MaxTLP: agreement.TLPAmber, AllowUnmarked: true},
		Reciprocity: agreement.Terms{Give: 1, Get: 1, Grace: 10}, EscrowDeadline: time.Hour,
		RequestDeadlines: agreement.RequestDeadlines{Acknowledge: time.Hour, Fulfil: 2 * time.Hour},
		NotBefore:        now, NotAfter: now.Add(24 * time.Hour), MatchCap: agreement.DefaultMatchCap}
	sign := func(n *gradualNode, action agreement.Action) agreement.Signature {
		sig, err := agreement.Sign(n.keys, agreement.StatementFor(doc, action, n.me.PartyID, n.keys.KeyID(), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), sign(a, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	w := &gradualPair{a: a, b: b, doc: doc}
	w.deliver(t)
	if _, _, err := b.ex.Sign(ctx, b.me, doc.ID, sign(b, agreement.ActionCountersign)); err != nil {
		t.Fatal(err)
	}
	w.deliver(t)
	return w
}

// deliver sends what both nodes' outboxes hold until neither has more.
func (w *gradualPair) deliver(t *testing.T) {
	t.Helper()
	for range 20 {
		if w.a.fed.SendDue(context.Background())+w.b.fed.SendDue(context.Background()) == 0 {
			return
		}
	}
	t.Fatal("the outboxes did not drain")
}

// gradualCase proposes a case of n chunks on A, accepts it on B, and has
// both deposit their sealed chunks with signed commitments.
func (w *gradualPair) gradualCase(t *testing.T, n int) string {
	t.Helper()
	ctx := context.Background()
	prop, err := w.a.esc.Propose(ctx, w.a.me, escrow.ProposeInput{AgreementID: w.doc.ID, Delivers: "C2 servers", Expects: "wallets", Chunks: n})
	if err != nil {
		t.Fatal(err)
	}
	id := prop.Handover.ID
	w.deliver(t)
	if _, err := w.b.esc.Decide(ctx, w.b.me, id, true); err != nil {
		t.Fatal(err)
	}
	w.deliver(t)
	return id
}

func (w *gradualPair) deposit(t *testing.T, from, to *gradualNode, id string, n int) {
	t.Helper()
	ctx := context.Background()
	com := agreement.ChunkCommitment{Handover: id, Depositor: from.me.PartyID, SignedAt: time.Now()}
	var chunks [][]byte
	for i := range n {
		ct, sum, err := client.Seal([]byte(fmt.Sprintf(`{"type":"bundle","id":"bundle--%d","objects":[]}`, i)), to.keys.Public().SealingRecipient)
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, ct)
		com.Chunks = append(com.Chunks, agreement.ChunkRef{SHA256: sum, Size: int64(len(ct))})
	}
	signed, err := agreement.SignCommitment(from.keys, com)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(signed)
	if _, err := from.esc.DepositChunks(ctx, from.me, id, raw, chunks); err != nil {
		t.Fatal(err)
	}
	w.deliver(t)
}

// verdict is what `parley handover confirm|reject ID --print` writes for
// n's party: its signed verdict on chunk index of the other side's, as n's
// node holds that chunk's hash.
func verdictOf(t *testing.T, n *gradualNode, keys *agreement.PrivateKeys, action, id string, index int, reason string) string {
	t.Helper()
	v, err := n.esc.Show(context.Background(), n.me, id)
	if err != nil {
		t.Fatal(err)
	}
	other := v.Proposer
	if other == n.me.PartyID {
		other = v.Counterpart
	}
	sum := ""
	for _, c := range v.Gradual.List {
		if c.Depositor == other && c.Index == index {
			sum = c.SHA256
		}
	}
	if sum == "" {
		t.Fatalf("%s's node holds no hash of chunk %d of the other side's", n.me.Name, index)
	}
	signed, err := client.SignChunkVerdict(keys, agreement.ChunkVerdict{Action: action, Handover: id, Depositor: other,
		Recipient: n.me.PartyID, Index: index, SHA256: sum, Reason: reason})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(signed)
	return string(raw)
}

func ledgerSizeOf(t *testing.T, st store.Store) int64 {
	t.Helper()
	n, err := st.Ledger().Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A gradual case across two nodes, judged through each party's own
// dashboard: the page shows the chunks each way and, only to the party
// whose verdict is due, the confirm and reject buttons with the exact CLI
// command that signs the verdict (the browser cannot: the server holds no
// key). The verdicts pasted under the buttons go through escrow.JudgeChunk
// to the end: the case is released on both nodes. The party whose turn it
// is not gets no button and its POST is refused; so are a stale CSRF
// token, a verdict pasted under the other button, a verdict signed with
// another key, and a party of the node not in the case.
func TestGradualVerdictsThroughTheDashboard(t *testing.T) {
	ctx := context.Background()
	w := newGradualPair(t)
	a, b := w.a, w.b
	id := w.gradualCase(t, 2)
	alice, bob := a.browser(t), b.browser(t)
	alice.signIn(a.token)
	bob.signIn(b.token)
	path := "/ui/handovers/" + id

	// Accepted, nothing deposited: alice is told to deposit, with the
	// command; no plain deposit form (gradual cases take only sealed
	// chunks); no verdict buttons.
	resp, page := alice.do("GET", path, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Gradual release: 2 chunks a side") ||
		!strings.Contains(page, "parley handover deposit "+id+" FILE --sealed") || strings.Contains(page, `id="deposit-form"`) ||
		strings.Contains(page, `id="chunk-verdict-form"`) {
		t.Fatalf("alice's page before deposits: %s\n%s", resp.Status, page)
	}

	w.deposit(t, a, b, id, 2)
	w.deposit(t, b, a, id, 2)
	// alice's chunk 1 went to B at once: bob's verdict is due, not alice's.
	_, page = alice.do("GET", path, nil)
	if strings.Contains(page, `id="chunk-verdict-form"`) || strings.Contains(page, `id="confirm-chunk"`) ||
		!strings.Contains(page, "Waiting for bob@bravo to open and confirm your chunk 1.") {
		t.Fatalf("alice's page while bob's verdict is due:\n%s", page)
	}
	resp, page = bob.do("GET", path, nil)
	csrfB := csrf(t, page)
	for _, want := range []string{`id="chunk-verdict-form"`, "Confirm chunk 1", "Reject chunk 1", `name="index" value="1"`,
		"parley handover confirm " + id, "parley handover reject " + id + ` --reason &#34;what is wrong with it&#34;`,
		"cannot be made in this browser", "--print"} {
		if !strings.Contains(page, want) {
			t.Fatalf("bob's page lacks %q:\n%s", want, page)
		}
	}

	// Refusals, each leaving both ledgers as they were.
	sizeA, sizeB := ledgerSizeOf(t, a.st), ledgerSizeOf(t, b.st)
	csrfA := csrf(t, func() string { _, p := alice.do("GET", path, nil); return p }())
	// alice, out of turn: bob's chunk 1 has not come (her node holds its
	// hash from his commitment, so she can sign a verdict on it).
	early := verdictOf(t, a, a.keys, agreement.ChunkConfirm, id, 1, "")
	if resp, page := alice.do("POST", path+"/chunk-verdicts", url.Values{"csrf": {csrfA}, "action": {"confirm"}, "index": {"1"}, "verdict": {early}}); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(page, "the chunk to judge is 1") {
		t.Errorf("alice's verdict out of turn: %s\n%s", resp.Status, page)
	}
	good := verdictOf(t, b, b.keys, agreement.ChunkConfirm, id, 1, "")
	forged := verdictOf(t, b, a.keys, agreement.ChunkConfirm, id, 1, "") // names bob, signed with alice's key
	reject := verdictOf(t, b, b.keys, agreement.ChunkReject, id, 1, "not what was promised")
	carol := b.browser(t)
	csrfC := carol.signIn(b.other)
	for _, c := range []struct {
		name   string
		br     *browser
		form   url.Values
		status int
	}{
		{"no CSRF token", bob, url.Values{"action": {"confirm"}, "index": {"1"}, "verdict": {good}}, http.StatusForbidden},
		{"another session's CSRF token", bob, url.Values{"csrf": {csrfC}, "action": {"confirm"}, "index": {"1"}, "verdict": {good}}, http.StatusForbidden},
		{"a rejection under the confirm button", bob, url.Values{"csrf": {csrfB}, "action": {"confirm"}, "index": {"1"}, "verdict": {reject}}, http.StatusBadRequest},
		{"another chunk's button", bob, url.Values{"csrf": {csrfB}, "action": {"confirm"}, "index": {"2"}, "verdict": {good}}, http.StatusBadRequest},
		{"no action", bob, url.Values{"csrf": {csrfB}, "index": {"1"}, "verdict": {good}}, http.StatusBadRequest},
		{"not JSON", bob, url.Values{"csrf": {csrfB}, "action": {"confirm"}, "index": {"1"}, "verdict": {"yes please"}}, http.StatusBadRequest},
		{"signed with another key", bob, url.Values{"csrf": {csrfB}, "action": {"confirm"}, "index": {"1"}, "verdict": {forged}}, http.StatusBadRequest},
		{"a party of bob's node not in the case", carol, url.Values{"csrf": {csrfC}, "action": {"confirm"}, "index": {"1"}, "verdict": {good}}, http.StatusNotFound},
	} {
		if resp, page := c.br.do("POST", path+"/chunk-verdicts", c.form); resp.StatusCode != c.status {
			t.Errorf("%s: %s, want %d\n%s", c.name, resp.Status, c.status, page)
		}
	}
	if resp, _ := carol.do("GET", path, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a party not in the case sees its page: %s", resp.Status)
	}
	w.deliver(t)
	if ledgerSizeOf(t, a.st) != sizeA || ledgerSizeOf(t, b.st) != sizeB {
		t.Fatalf("a refused verdict changed a ledger: A %d → %d, B %d → %d", sizeA, ledgerSizeOf(t, a.st), sizeB, ledgerSizeOf(t, b.st))
	}

	// The alternation to the end, each verdict through its party's own
	// dashboard.
	judge := func(br *browser, n *gradualNode, index int, wantDone string) {
		t.Helper()
		_, page := br.do("GET", path, nil)
		if !strings.Contains(page, fmt.Sprintf("Confirm chunk %d", index)) {
			t.Fatalf("%s's page offers no confirmation of chunk %d:\n%s", n.me.Name, index, page)
		}
		v := verdictOf(t, n, n.keys, agreement.ChunkConfirm, id, index, "")
		resp, _ := br.do("POST", path+"/chunk-verdicts", url.Values{"csrf": {csrf(t, page)}, "action": {"confirm"}, "index": {fmt.Sprint(index)}, "verdict": {v}})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != path+"?done="+wantDone {
			t.Fatalf("%s confirms chunk %d: %s → %q, want %s", n.me.Name, index, resp.Status, loc, wantDone)
		}
		w.deliver(t)
	}
	judge(bob, b, 1, "chunk_confirmed")   // B sends bob's chunk 1
	judge(alice, a, 1, "chunk_confirmed") // A sends alice's chunk 2
	judge(bob, b, 2, "chunks_released")   // B sends bob's chunk 2 and, all sent and confirmed, releases
	judge(alice, a, 2, "chunks_released")
	for _, n := range []*gradualNode{a, b} {
		v, err := n.esc.Show(ctx, n.me, id)
		if err != nil || v.State != store.HandoverReleased {
			t.Fatalf("on %s's node the case is %s (%v), want released", n.me.Name, v.State, err)
		}
		for _, c := range v.Gradual.List {
			if c.MovedAt.IsZero() || c.Confirmed.IsZero() {
				t.Errorf("on %s's node chunk %d of %s is not handed over and confirmed: %+v", n.me.Name, c.Index, c.Depositor, c)
			}
		}
	}
	_, page = alice.do("GET", path+"?done=chunks_released", nil)
	if !strings.Contains(page, "the handover is released") || strings.Contains(page, `id="chunk-verdict-form"`) ||
		!strings.Contains(page, "<td>you</td><td>signed, here</td><td>2 of 2</td><td>2 of 2</td>") {
		t.Errorf("alice's page after release:\n%s", page)
	}

	// A second case, stopped by bob's rejection through his dashboard.
	id2 := w.gradualCase(t, 2)
	w.deposit(t, a, b, id2, 2)
	w.deposit(t, b, a, id2, 2)
	path2 := "/ui/handovers/" + id2
	_, page = bob.do("GET", path2, nil)
	v := verdictOf(t, b, b.keys, agreement.ChunkReject, id2, 1, "not crew X's servers")
	resp, _ = bob.do("POST", path2+"/chunk-verdicts", url.Values{"csrf": {csrf(t, page)}, "action": {"reject"}, "index": {"1"}, "verdict": {v}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != path2+"?done=chunk_rejected" {
		t.Fatalf("bob rejects: %s → %q", resp.Status, loc)
	}
	w.deliver(t)
	for _, c := range []struct {
		br *browser
		n  *gradualNode
	}{{alice, a}, {bob, b}} {
		_, page := c.br.do("GET", path2, nil)
		if !strings.Contains(page, "not crew X&#39;s servers") || !strings.Contains(page, `id="gradual-stopped"`) || strings.Contains(page, `id="chunk-verdict-form"`) {
			t.Errorf("%s's page of the stopped case:\n%s", c.n.me.Name, page)
		}
		if v, err := c.n.esc.Show(ctx, c.n.me, id2); err != nil || v.State != store.HandoverStopped {
			t.Errorf("on %s's node the case is %s (%v), want stopped", c.n.me.Name, v.State, err)
		}
	}
}
