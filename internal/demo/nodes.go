package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/crosswitness"
)

// NodeOperator is what the demo does as one node's operator, as the
// operator commands do it on that node's own database: `parley node id`,
// `parley peer add`, `parley party add` and `parley verify --peers`.
type NodeOperator interface {
	// Identity returns the node's public URL and node key.
	Identity(ctx context.Context) (url, key string, err error)
	// Pin pins another node under name.
	Pin(ctx context.Context, name, url, key string) error
	// CreateParty registers a party on this node and returns its id and
	// first token.
	CreateParty(ctx context.Context, name string) (id, token string, err error)
	// VerifyPeers checks every pinned peer's log as this node, waiting
	// until every witness cosigned; it fails naming a peer that failed.
	VerifyPeers(ctx context.Context) ([]crosswitness.PeerReport, error)
}

// Node is one sovereign node of the demo: its own process, database and
// operator.
type Node struct {
	Name string // the name the other nodes pin it under
	Role string // what it is in the demo, for the walkthrough
	Op   NodeOperator
	// URL and Key are what `parley node id` prints; RunNodes fills them.
	URL, Key string
}

// Allowance is one party's standing on its own node at one moment.
type Allowance struct {
	Gave    int64 // new objects it contributed, as its node counts them
	Credits float64
	Allow   int64 // grace + ratio × credits
	Held    int64 // the other party's objects its node holds (pulled from the other node)
	Reads   int   // what it reads of them over TAXII
}

// NodesResult is what the nodes demo did, for its test and its summary.
type NodesResult struct {
	Alpha, Bravo, Charlie *Node
	A, B                  *Member
	Agreement             string
	// DocumentHash is the countersigned document's hash on alpha and on
	// bravo: the same bytes on both nodes.
	DocumentHash, DocumentHashOnB string
	EscrowNode                    string
	// Feeds are the allowances after each step, each party on its own node.
	FeedsA, FeedsB []Allowance
	// Request is the request filed on bravo, acknowledged on alpha and
	// answered through Handover; RequestState its state on both nodes
	// afterwards.
	Request, RequestState, Handover string
	// SealedA and SealedB are the sizes of the two sealed deposits;
	// UnsealedA and UnsealedB the objects each party decrypted from the
	// other's.
	SealedA, SealedB, UnsealedA, UnsealedB int
	// Match is the private matching session across the nodes; MatchedA
	// and MatchedB what each party learned the other holds of its list.
	Match              string
	MatchedA, MatchedB []string
	// Gradual is the case released gradually between alpha and bravo
	// without an escrow node.
	Gradual *GradualResult
	// Witnessed holds each node's verify --peers reports.
	Witnessed map[string][]crosswitness.PeerReport
	// Verified holds each party's verification of its own node's ledger.
	VerifiedA, VerifiedB *audit.Report
}

// waitFor is how long the demo waits for the nodes to deliver a step or a
// feed page to each other before it gives up.
const waitFor = 60 * time.Second

// RunNodes plays the exchange across three nodes already serving: alpha
// (party A's), bravo (party B's) and charlie (the escrow node both name).
// stateDir is where each party keeps its `parley verify` state.
func RunNodes(ctx context.Context, alpha, bravo, charlie *Node, stateDir string, out io.Writer) (*NodesResult, error) {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	res := &NodesResult{Alpha: alpha, Bravo: bravo, Charlie: charlie, Witnessed: map[string][]crosswitness.PeerReport{}}
	now := time.Now().UTC()
	nodes := []*Node{alpha, bravo, charlie}
	for _, n := range nodes {
		u, k, err := n.Op.Identity(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: node id: %w", n.Name, err)
		}
		n.URL, n.Key = u, k
	}
	say("parley demo --nodes: two parties, each on its own node, and a neutral escrow node; no server that both")
	say("parties must trust. They exchange intelligence on the ransomware crew \"Black Lantern\".")
	say("")
	say("1. Three sovereign nodes, each a `parley serve` process with its own data directory and node key:")
	for _, n := range nodes {
		say("   %-8s %s  %s", n.Name, n.URL, n.Role)
		say("            node key %s", n.Key)
	}

	for _, n := range nodes {
		for _, p := range nodes {
			if p == n {
				continue
			}
			if err := n.Op.Pin(ctx, p.Name, p.URL, p.Key); err != nil {
				return nil, fmt.Errorf("%s pins %s: %w", n.Name, p.Name, err)
			}
		}
	}
	say("2. Each node's operator pinned the two others by URL and node key (parley peer add NAME URL KEY).")
	say("   Every request between nodes is signed with the node key (RFC 9421) and accepted only from a pinned key.")

	mk := func(n *Node, name string, seed uint64, size int) (*Member, error) {
		id, tok, err := n.Op.CreateParty(ctx, name)
		if err != nil {
			return nil, err
		}
		c, err := client.New(strings.TrimSuffix(n.URL, "/")+"/taxii2/", client.WithToken(tok))
		if err != nil {
			return nil, err
		}
		keys, err := agreement.GenerateKeys()
		if err != nil {
			return nil, err
		}
		if err := c.RegisterKeys(ctx, keys.Public()); err != nil {
			return nil, err
		}
		return &Member{Name: name, ID: id, Token: tok, Keys: keys, C: c, Crew: GenerateCrew(seed, name, size, now)}, nil
	}
	a, err := mk(alpha, "CERT-Nordland", 1, 240)
	if err != nil {
		return nil, fmt.Errorf("a party on %s: %w", alpha.Name, err)
	}
	b, err := mk(bravo, "Police-Suedmark", 2, 160)
	if err != nil {
		return nil, fmt.Errorf("a party on %s: %w", bravo.Name, err)
	}
	res.A, res.B = a, b
	say("3. %s is a party on %s, %s on %s; each made its own signing and sealing keys", a.Name, alpha.Name, b.Name, bravo.Name)
	say("   and holds a token for its own node only. charlie holds no party.")

	// A finds B through its own node, which asks bravo (node-signed).
	rp, err := a.C.RemoteParty(ctx, bravo.Name, b.Name)
	if err != nil {
		return nil, fmt.Errorf("looking up %s@%s: %w", b.Name, bravo.Name, err)
	}
	doc, err := nodesAgreementDoc(a, rp, charlie.Key, now)
	if err != nil {
		return nil, err
	}
	onA, onB, err := agreeAcross(ctx, a, b, alpha, bravo, doc)
	if err != nil {
		return nil, err
	}
	res.Agreement, res.EscrowNode = doc.ID, doc.EscrowNode
	say("4. %s asked %s for %s@%s; %s looked the party up on %s (signing key %s).", a.Name, alpha.Name, b.Name, bravo.Name, alpha.Name, bravo.Name, rp.KeyID)
	say("   %s proposed an agreement naming charlie as escrow node; %s's outbox delivered the", a.Name, alpha.Name)
	say("   signed proposal to %s.", bravo.Name)
	say("   Scope: indicators, malware, actors, infrastructure up to TLP:AMBER. Terms: 1:1, a grace of 20 objects.")

	res.DocumentHash, res.DocumentHashOnB = onA.DocumentHash, onB.DocumentHash
	say("   %s read the proposal on %s, the escrow node named in the signed bytes, and", b.Name, bravo.Name)
	say("   countersigned it there; %s delivered the signature to %s. Document hash on both nodes:", bravo.Name, alpha.Name)
	say("   %s", onB.DocumentHash)
	say("   Agreement %s is %s on %s and %s on %s.", doc.ID, onA.Phase, alpha.Name, onB.Phase, bravo.Name)

	// Feeds: each party pushes to and reads from its own node only.
	collA, err := onA.CollectionOf(a.ID, true)
	if err != nil {
		return nil, err
	}
	readA, err := onA.CollectionOf(a.ID, false)
	if err != nil {
		return nil, err
	}
	collB, err := onB.CollectionOf(b.ID, true)
	if err != nil {
		return nil, err
	}
	readB, err := onB.CollectionOf(b.ID, false)
	if err != nil {
		return nil, err
	}
	standing := func(m *Member, coll string) (Allowance, error) {
		bal, err := m.C.Balance(ctx, doc.ID)
		if err != nil {
			return Allowance{}, err
		}
		n := 0
		for _, err := range m.C.AllObjects(ctx, doc.ID, coll, client.Filter{Limit: 200}) {
			if err != nil {
				return Allowance{}, err
			}
			n++
		}
		return Allowance{Gave: bal.Contributed, Credits: bal.Credits, Allow: bal.Allowance, Held: bal.Available, Reads: n}, nil
	}
	// settle waits until each party reads what give-to-get releases
	// between the nodes, each node counting the other party's credits from
	// what it pulled: B reads min(A's, grace + B's), A reads min(B's,
	// grace + what bravo pulled of A's), converging in turns.
	settle := func(step string) error {
		var sa, sb Allowance
		_, err := poll(ctx, func() (struct{}, bool, error) {
			var err error
			if sa, err = standing(a, readA); err != nil {
				return struct{}{}, false, err
			}
			if sb, err = standing(b, readB); err != nil {
				return struct{}{}, false, err
			}
			wantB := min(sa.Gave, 20+sb.Gave)
			wantA := min(sb.Gave, 20+int64(sb.Reads))
			// Held and Reads are read one after the other, while the
			// nodes may still be pulling: settled is when they agree.
			return struct{}{}, int64(sb.Reads) == wantB && int64(sa.Reads) == wantA &&
				sb.Held == int64(sb.Reads) && sa.Held == int64(sa.Reads), nil
		})
		if err != nil {
			return fmt.Errorf("%s: the nodes did not converge (%s on %s: %+v; %s on %s: %+v): %w",
				step, b.Name, bravo.Name, sb, a.Name, alpha.Name, sa, err)
		}
		res.FeedsA, res.FeedsB = append(res.FeedsA, sa), append(res.FeedsB, sb)
		return nil
	}
	show := func() {
		sa, sb := res.FeedsA[len(res.FeedsA)-1], res.FeedsB[len(res.FeedsB)-1]
		say("   on %s, %s gave %d new, allowance 20 + 1 × %g = %d, reads %d of the %d %s holds of %s's",
			bravo.Name, b.Name, sb.Gave, sb.Credits, sb.Allow, sb.Reads, sb.Held, bravo.Name, a.Name)
		say("   on %s, %s gave %d new, allowance 20 + 1 × %g = %d, reads %d of the %d %s holds of %s's",
			alpha.Name, a.Name, sa.Gave, sa.Credits, sa.Allow, sa.Reads, sa.Held, alpha.Name, b.Name)
	}
	push := func(m *Member, coll string, objs []json.RawMessage) error {
		st, err := m.C.AddObjects(ctx, doc.ID, coll, objs)
		if err != nil {
			return fmt.Errorf("%s publishes: %w", m.Name, err)
		}
		if st.FailureCount > 0 {
			return fmt.Errorf("%s publishes: %d objects refused, first: %s", m.Name, st.FailureCount, st.Failures[0].Message)
		}
		return nil
	}
	if err := push(a, collA, a.Crew.Objects); err != nil {
		return nil, err
	}
	if err := settle("the grace"); err != nil {
		return nil, err
	}
	say("5. Feeds. %s published its dossier on %s over TAXII 2.1: %d objects (%d new by content).", a.Name, alpha.Name, len(a.Crew.Objects), res.FeedsA[0].Gave)
	say("   %s serves %s only what it releases to it, by its own count; %s pulled it.", alpha.Name, b.Name, bravo.Name)
	say("   %s has given nothing, so it reads the grace:", b.Name)
	show()
	own := apart(b.Crew.Objects, a.Crew.Objects)
	half := len(own) / 2
	if err := push(b, collB, own[:half]); err != nil {
		return nil, err
	}
	if err := settle("half of B's dossier"); err != nil {
		return nil, err
	}
	say("6. %s published %d objects on %s. The nodes release in turns, each counting the other", b.Name, half, bravo.Name)
	say("   party's credits only from what it pulled itself and checked:")
	show()
	if err := push(b, collB, own[half:]); err != nil {
		return nil, err
	}
	// Re-sending what it already gave earns nothing.
	if err := push(b, collB, own[:10]); err != nil {
		return nil, err
	}
	if err := settle("all of B's dossier"); err != nil {
		return nil, err
	}
	say("7. %s published the rest of its dossier and re-sent 10 objects, which earn nothing:", b.Name)
	show()

	// A request across nodes: B files it on bravo, A answers on alpha,
	// each node relaying its own party's step to the other.
	req, err := b.C.FileRequest(ctx, client.NewRequest{Agreement: doc.ID, Urgency: "high",
		Subject: "Ransom wallets and negotiator handles of the Black Lantern affiliate 'NightOwl'",
		Reason:  "victim negotiation in an open case"})
	if err != nil {
		return nil, fmt.Errorf("%s files a request on %s: %w", b.Name, bravo.Name, err)
	}
	if _, err := poll(ctx, func() (*client.Request, bool, error) {
		r, err := a.C.Request(ctx, req.ID)
		if errors.Is(err, client.ErrNotFound) {
			return nil, false, nil
		}
		return r, err == nil, err
	}); err != nil {
		return nil, fmt.Errorf("the request never reached %s: %w", alpha.Name, err)
	}
	if _, err := a.C.AckRequest(ctx, req.ID); err != nil {
		return nil, fmt.Errorf("%s acknowledges on %s: %w", a.Name, alpha.Name, err)
	}
	onBravo, err := poll(ctx, func() (*client.Request, bool, error) {
		r, err := b.C.Request(ctx, req.ID)
		return r, err == nil && r.State == "acknowledged", err
	})
	if err != nil {
		return nil, fmt.Errorf("the acknowledgement never reached %s: %w", bravo.Name, err)
	}
	res.Request, res.RequestState = req.ID, onBravo.State
	say("8. %s filed a request on %s (%s);", b.Name, bravo.Name, req.Subject)
	say("   %s relayed it to %s, where %s acknowledged it within the agreement's deadline; %s relayed", bravo.Name, alpha.Name, a.Name, alpha.Name)
	say("   that back: the request is %s on both nodes, under one id with each node's own ledger entries.", onBravo.State)

	if err := answerThroughEscrow(ctx, a, b, doc.ID, req.ID, res); err != nil {
		return nil, err
	}
	say("9. %s answered it with a handover through charlie, proposed on %s; %s accepted it on %s.", a.Name, alpha.Name, b.Name, bravo.Name)
	say("   Each deposited a dossier sealed with age to the other's key on its own node (%d and %d bytes of", res.SealedA, res.SealedB)
	say("   ciphertext), which forwarded it to charlie; charlie released both in one transaction, each node")
	say("   fetched the other side's deposit from charlie, and the release fulfilled the request on both nodes.")
	say("   %s decrypted %d objects, %s %d; charlie never held a key to either. The request is %s.", b.Name, res.UnsealedB, a.Name, res.UnsealedA, res.RequestState)

	oa, ob, err := matchLists(ctx, a, b, doc.ID)
	if err != nil {
		return nil, err
	}
	for _, it := range oa.Matched {
		res.MatchedA = append(res.MatchedA, it.Value)
	}
	for _, it := range ob.Matched {
		res.MatchedB = append(res.MatchedB, it.Value)
	}
	res.Match = oa.Session.ID
	say("   Private matching: %s started a session on %s with its %d wanted identifiers; %s joined it on", a.Name, alpha.Name, oa.OwnCount, b.Name)
	say("   %s with the %d it holds. Each node relayed its party's blinded round 1 to the other; both sealed", bravo.Name, oa.PeerCount)
	say("   round-2 messages went through charlie, which released both at once; no node saw an identifier.")
	say("   %s learned that %s holds %d of them: %s.", a.Name, b.Name, len(res.MatchedA), strings.Join(res.MatchedA, ", "))
	say("   %s learned %d of its own.", b.Name, len(res.MatchedB))

	if err := gradualAct(ctx, a, b, alpha, bravo, rp, res, say); err != nil {
		return nil, err
	}

	say("11. Cross-witnessing: each node cosigns the others' checkpoints; each operator ran parley verify --peers:")
	for _, n := range nodes {
		reps, err := n.Op.VerifyPeers(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: verify --peers: %w", n.Name, err)
		}
		res.Witnessed[n.Name] = reps
		var parts []string
		for _, r := range reps {
			if r.Size == 0 {
				parts = append(parts, fmt.Sprintf("%s's log (empty: it holds nothing yet)", r.Peer))
				continue
			}
			parts = append(parts, fmt.Sprintf("%s's log (size %d, cosigned by %s)", r.Peer, r.Size, strings.Join(r.CosignedBy, " and ")))
		}
		say("   %-8s checked %s: all checks passed", n.Name, strings.Join(parts, " and "))
	}

	verify := func(m *Member, n *Node) (*audit.Report, error) {
		rep, err := audit.Verify(ctx, audit.Options{
			State: audit.State{Dir: stateDir + "/" + m.Name}, Remote: audit.NewRemote(n.URL, m.Token, nil), API: m.C, Party: m.ID,
			Settle:   20 * time.Second,
			FetchKey: func(ctx context.Context) (string, error) { return audit.FetchLogKey(ctx, n.URL, m.Token, nil) },
		})
		if err != nil {
			return nil, err
		}
		return rep, rep.Err()
	}
	if res.VerifiedA, err = verify(a, alpha); err != nil {
		return nil, fmt.Errorf("%s verifies %s: %w", a.Name, alpha.Name, err)
	}
	if res.VerifiedB, err = verify(b, bravo); err != nil {
		return nil, fmt.Errorf("%s verifies %s: %w", b.Name, bravo.Name, err)
	}
	say("12. Each party checked its own node's ledger (parley verify): signed checkpoint, consistency, its")
	say("    receipts, and its balance replayed from the entries:")
	for _, v := range []struct {
		m   *Member
		n   *Node
		rep *audit.Report
	}{{a, alpha, res.VerifiedA}, {b, bravo, res.VerifiedB}} {
		say("    %s on %s: checkpoint of %d entries, %d of them its own; all %d checks passed",
			v.m.Name, v.n.Name, v.rep.Entries, v.rep.Mine, len(v.rep.Checks))
	}
	return res, nil
}

// apart returns the objects of mine that say something theirs do not: the
// crews' well-known actor, malware and shared identifiers are left out.
// Between nodes such a repeat earns credit or not depending on whether the
// other party's copy has reached this node yet, which would make the
// demo's allowances depend on timing; on one server it simply earns
// nothing.
func apart(mine, theirs []json.RawMessage) []json.RawMessage {
	type says struct{ Type, Name, Pattern string }
	key := func(raw json.RawMessage) says {
		var k says
		json.Unmarshal(raw, &k) // generated objects: always valid JSON
		return k
	}
	known := map[says]bool{}
	for _, o := range theirs {
		known[key(o)] = true
	}
	var out []json.RawMessage
	for _, o := range mine {
		if !known[key(o)] {
			out = append(out, o)
		}
	}
	return out
}

// answerThroughEscrow answers request reqID (filed by b, acknowledged by a)
// with a handover through the escrow node: a proposes it on its node
// naming the request and answers the request with it; b accepts on its
// node; each deposits a bundle sealed to the other's key on its own node,
// which forwards it to charlie; charlie releases both in one transaction
// and each party's node fetches the other's deposit from it; the release
// fulfils the request on both nodes.
func answerThroughEscrow(ctx context.Context, a, b *Member, agreementID, reqID string, res *NodesResult) error {
	h, err := a.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: agreementID, Request: reqID,
		Delivers: "dossier on affiliate NightOwl (sealed)", Expects: "server logs seized from the Lantern C2 cluster (sealed)"})
	if err != nil {
		return fmt.Errorf("%s proposes a handover: %w", a.Name, err)
	}
	res.Handover = h.ID
	if _, err := a.C.FulfilRequest(ctx, reqID, h.ID); err != nil {
		return fmt.Errorf("%s answers the request with the handover: %w", a.Name, err)
	}
	if err := acceptAcross(ctx, a, b, h.ID, "the handover"); err != nil {
		return err
	}
	depositSealed := func(from, to *Member, objs []json.RawMessage) (int, error) {
		r, err := from.C.SealingRecipient(ctx, agreementID, to.ID, from.Keys, nil)
		if err != nil {
			return 0, err
		}
		sealed, sum, err := client.Seal(bundleOf(objs), r)
		if err != nil {
			return 0, err
		}
		if _, err := from.C.DepositSealed(ctx, h.ID, sealed, sum, client.DepositOptions{Agreement: agreementID}); err != nil {
			return 0, fmt.Errorf("%s deposits: %w", from.Name, err)
		}
		return len(sealed), nil
	}
	if res.SealedA, err = depositSealed(a, b, a.Crew.Objects[len(a.Crew.Objects)-30:]); err != nil {
		return err
	}
	if res.SealedB, err = depositSealed(b, a, b.Crew.Objects[len(b.Crew.Objects)-20:]); err != nil {
		return err
	}
	open := func(m *Member) (int, error) {
		if _, err := poll(ctx, func() (*client.Handover, bool, error) {
			hv, err := m.C.Handover(ctx, h.ID)
			return hv, err == nil && hv.State == "released", err
		}); err != nil {
			return 0, fmt.Errorf("the handover was not released on %s's node: %w", m.Name, err)
		}
		got, err := m.C.FetchDeposit(ctx, h.ID, "")
		if err != nil {
			return 0, err
		}
		plain, err := client.Unseal(got.Content, m.Keys.Sealing)
		if err != nil {
			return 0, fmt.Errorf("%s unseals: %w", m.Name, err)
		}
		var opened struct {
			Objects []json.RawMessage `json:"objects"`
		}
		if err := json.Unmarshal(plain, &opened); err != nil {
			return 0, err
		}
		return len(opened.Objects), nil
	}
	if res.UnsealedB, err = open(b); err != nil {
		return err
	}
	if res.UnsealedA, err = open(a); err != nil {
		return err
	}
	for _, m := range []*Member{a, b} {
		r, err := poll(ctx, func() (*client.Request, bool, error) {
			r, err := m.C.Request(ctx, reqID)
			return r, err == nil && r.State == "fulfilled", err
		})
		if err != nil {
			return fmt.Errorf("the request is not fulfilled on %s's node: %w", m.Name, err)
		}
		res.RequestState = r.State
	}
	return nil
}

// agreeAcross has a propose doc on alpha and b, once the proposal reached
// bravo, review the bytes that arrived there (the escrow node they name
// included) and countersign them; it returns the agreement as each node
// holds it once active on both.
func agreeAcross(ctx context.Context, a, b *Member, alpha, bravo *Node, doc *agreement.Document) (onA, onB *client.Agreement, err error) {
	ps, err := agreement.Sign(a.Keys, agreement.StatementFor(doc, agreement.ActionPropose, a.ID, a.Keys.KeyID(), time.Now()))
	if err != nil {
		return nil, nil, err
	}
	if _, err := a.C.Propose(ctx, doc, ps); err != nil {
		return nil, nil, fmt.Errorf("propose on %s: %w", alpha.Name, err)
	}
	// B reviews what arrived on its own node and countersigns those bytes.
	got, err := poll(ctx, func() (*client.Agreement, bool, error) {
		ag, err := b.C.Agreement(ctx, doc.ID)
		if errors.Is(err, client.ErrNotFound) {
			return nil, false, nil
		}
		return ag, err == nil && ag.AwaitingDocumentHash != "", err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("the proposal never reached %s: %w", bravo.Name, err)
	}
	arrived, err := got.Doc()
	if err != nil {
		return nil, nil, err
	}
	if arrived.EscrowNode != doc.EscrowNode {
		return nil, nil, fmt.Errorf("the document on %s names escrow node %q, not %q", bravo.Name, arrived.EscrowNode, doc.EscrowNode)
	}
	cs, err := agreement.Sign(b.Keys, agreement.StatementFor(arrived, agreement.ActionCountersign, b.ID, b.Keys.KeyID(), time.Now()))
	if err != nil {
		return nil, nil, err
	}
	if onB, err = b.C.Sign(ctx, cs); err != nil {
		return nil, nil, fmt.Errorf("countersign on %s: %w", bravo.Name, err)
	}
	onA, err = poll(ctx, func() (*client.Agreement, bool, error) {
		ag, err := a.C.Agreement(ctx, doc.ID)
		return ag, err == nil && ag.Phase == "active", err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("the countersignature never reached %s: %w", alpha.Name, err)
	}
	return onA, onB, nil
}

// poll calls f until it reports done, fails, or waitFor passes.
// acceptAcross waits for case id, proposed by a, to reach b's node; b
// accepts it there, and it waits for the acceptance to reach a's node.
func acceptAcross(ctx context.Context, a, b *Member, id, what string) error {
	if _, err := poll(ctx, func() (*client.Handover, bool, error) {
		hv, err := b.C.Handover(ctx, id)
		if errors.Is(err, client.ErrNotFound) {
			return nil, false, nil
		}
		return hv, err == nil, err
	}); err != nil {
		return fmt.Errorf("%s never reached %s's node: %w", what, b.Name, err)
	}
	if _, err := b.C.AcceptHandover(ctx, id); err != nil {
		return fmt.Errorf("%s accepts %s: %w", b.Name, what, err)
	}
	if _, err := poll(ctx, func() (*client.Handover, bool, error) {
		hv, err := a.C.Handover(ctx, id)
		return hv, err == nil && hv.State == "accepted", err
	}); err != nil {
		return fmt.Errorf("the acceptance never reached %s's node: %w", a.Name, err)
	}
	return nil
}

func poll[T any](ctx context.Context, f func() (T, bool, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	for {
		v, done, err := f()
		if err != nil || done {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// nodesAgreementDoc is the demo's agreement between A on its node and the
// party rp its node looked up on the peer, naming escrowNode.
func nodesAgreementDoc(a *Member, rp *client.RemoteParty, escrowNode string, now time.Time) (*agreement.Document, error) {
	m := map[string]any{
		"schema_version": agreement.SchemaVersion, "id": agreement.NewID(), "version": 1,
		"parties": []map[string]any{
			{"party_id": a.ID, "name": a.Name, "key_id": a.Keys.KeyID(), "node": rp.Self},
			{"party_id": rp.PartyID, "name": rp.Name, "key_id": rp.KeyID, "node": rp.Node},
		},
		"scope": map[string]any{"types": []string{"identity", "threat-actor", "intrusion-set", "malware", "infrastructure", "indicator", "relationship"},
			"max_tlp": "amber", "unmarked": "refuse"},
		"reciprocity":        map[string]any{"ratio": "1:1", "grace": 20},
		"escrow_deadline":    "72h",
		"request_deadlines":  map[string]any{"acknowledge": "24h", "fulfil": "168h"},
		"not_before":         now.Add(-time.Minute).Format(time.RFC3339),
		"not_after":          now.Add(365 * 24 * time.Hour).Format(time.RFC3339),
		"termination_notice": "720h",
	}
	if escrowNode != "" {
		m["escrow_node"] = escrowNode
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return agreement.ParseDocument(raw)
}
