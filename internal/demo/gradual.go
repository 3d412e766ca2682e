package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
)

// GradualChunks is how many chunks a side the demo's gradual case has.
const GradualChunks = 3

// GradualStep is one verdict of the demo's gradual case: Recipient opened
// chunk Index of the other side's once it arrived on its node, when it
// held Held of the other's chunks and the other held HeldBack of its own,
// and confirmed it.
type GradualStep struct {
	Recipient, Depositor string
	Index, Objects       int
	Held, HeldBack       int
}

// GradualResult is what the gradual act did.
type GradualResult struct {
	Agreement, Handover string
	// Deposited and Opened are the objects each party put in its chunks
	// and the objects the other opened from them, by party name.
	Deposited, Opened map[string]int
	Steps             []GradualStep
}

// gradualAct shows gradual release between alpha and bravo with no escrow
// node at all: under a second agreement that names none, A proposes a case
// of GradualChunks chunks a side, B accepts, each deposits its bundle split
// into sealed chunks with a signed commitment, and then each party, in
// turn, opens the other's next chunk once its node received it and
// confirms it; each node sends its own party's next chunk only on that
// party's confirmation. The act fails if at any verdict a side holds more
// than one chunk more than it gave, or if what a side opened at the end
// is not exactly what the other deposited.
func gradualAct(ctx context.Context, a, b *Member, alpha, bravo *Node, rp *client.RemoteParty, res *NodesResult, say func(string, ...any)) error {
	doc, err := nodesAgreementDoc(a, rp, "", time.Now().UTC())
	if err != nil {
		return err
	}
	if _, _, err := agreeAcross(ctx, a, b, alpha, bravo, doc); err != nil {
		return fmt.Errorf("the agreement without an escrow node: %w", err)
	}
	g := &GradualResult{Agreement: doc.ID, Deposited: map[string]int{}, Opened: map[string]int{}}
	res.Gradual = g
	// With no node to release both deposits at once, a handover in one
	// step is refused, naming gradual release.
	_, err = a.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: doc.ID, Delivers: "x", Expects: "y"})
	var refused *client.APIError
	if !errors.As(err, &refused) || refused.Code != "not_across_nodes" {
		return fmt.Errorf("a handover in one step under an agreement naming no escrow node: %v, want refused as not_across_nodes", err)
	}
	h, err := a.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: doc.ID, Chunks: GradualChunks,
		Delivers: "payment-portal infrastructure of the Lantern crew (sealed, in chunks)", Expects: "affiliate negotiator handles (sealed, in chunks)"})
	if err != nil {
		return fmt.Errorf("%s proposes a gradual case: %w", a.Name, err)
	}
	g.Handover = h.ID
	if err := acceptAcross(ctx, a, b, h.ID, "the gradual case"); err != nil {
		return err
	}
	say("10. Gradual release, with no escrow node at all. A case is released gradually only under an agreement that")
	say("    names no escrow node, so the two signed a second one the same way (%s);", doc.ID)
	say("    under it alpha refused a handover in one step (%d %s). %s proposed gradual case", refused.StatusCode, refused.Code, a.Name)
	say("    %s on %s, %d chunks a side; %s accepted it on %s.", h.ID, alpha.Name, GradualChunks, b.Name, bravo.Name)
	say("    No third node is told anything.")

	// Each deposits a bundle none of the earlier steps used.
	dossiers := map[string][]json.RawMessage{
		a.ID: a.Crew.Objects[len(a.Crew.Objects)-42 : len(a.Crew.Objects)-30],
		b.ID: b.Crew.Objects[len(b.Crew.Objects)-29 : len(b.Crew.Objects)-20],
	}
	for _, p := range [][2]*Member{{a, b}, {b, a}} {
		from, to := p[0], p[1]
		rcpt, err := from.C.SealingRecipient(ctx, doc.ID, to.ID, from.Keys, nil)
		if err != nil {
			return err
		}
		parts, err := client.SplitBundle(bundleOf(dossiers[from.ID]), GradualChunks)
		if err != nil {
			return err
		}
		if _, _, err := from.C.DepositChunks(ctx, from.Keys, h.ID, from.ID, rcpt, parts); err != nil {
			return fmt.Errorf("%s deposits its chunks: %w", from.Name, err)
		}
		g.Deposited[from.Name] = len(dossiers[from.ID])
	}
	say("    Each split its bundle into %d STIX bundles (%s %d objects, %s %d),",
		GradualChunks, a.Name, g.Deposited[a.Name], b.Name, g.Deposited[b.Name])
	say("    sealed each to the other with age and deposited them on its own node with a signed commitment to their")
	say("    hashes, which its node sent to the other.")
	say("    Then the chunks alternate: a node sends its own party's next chunk only once its party has opened the other")
	say("    side's chunk before it and signed a confirmation, so at no moment does either side hold more than one chunk")
	say("    more than it gave:")

	// held counts the chunks of depositor that arrived on m's node.
	held := func(m *Member, depositor string) (int, *client.Handover, error) {
		hv, err := m.C.Handover(ctx, h.ID)
		if err != nil || hv.Gradual == nil {
			return 0, hv, errors.Join(err, fmt.Errorf("case %s is not gradual on %s's node", h.ID, m.Name))
		}
		n := 0
		for _, c := range hv.Gradual.List {
			if c.Depositor == depositor && c.MovedAt != nil {
				n++
			}
		}
		return n, hv, nil
	}
	opened := map[string][]string{} // object ids each party opened, in order
	for k := 1; k <= GradualChunks; k++ {
		for _, p := range [][2]*Member{{b, a}, {a, b}} {
			m, from := p[0], p[1]
			// m's verdict on from's chunk k is due once it arrived.
			hv, err := poll(ctx, func() (*client.Handover, bool, error) {
				n, hv, err := held(m, from.ID)
				return hv, err == nil && n >= k, err
			})
			if err != nil {
				return fmt.Errorf("%s's chunk %d never reached %s's node: %w", from.Name, k, m.Name, err)
			}
			mine, _, _ := held(m, from.ID)
			theirs, _, err := held(from, m.ID)
			if err != nil {
				return err
			}
			if mine-theirs > 1 || theirs-mine > 1 {
				return fmt.Errorf("before %s's verdict on chunk %d, %s holds %d of %s's chunks and %s %d of %s's: more than one apart",
					m.Name, k, m.Name, mine, from.Name, from.Name, theirs, m.Name)
			}
			objs, sum, err := openChunk(ctx, m, h.ID, from.ID, k)
			if err != nil {
				return err
			}
			opened[m.ID] = append(opened[m.ID], ids(objs)...)
			if _, _, err := m.C.JudgeChunk(ctx, m.Keys, agreement.ChunkVerdict{Action: agreement.ChunkConfirm, Handover: h.ID,
				Depositor: from.ID, Recipient: m.ID, Index: k, SHA256: sum}); err != nil {
				return fmt.Errorf("%s confirms chunk %d: %w", m.Name, k, err)
			}
			g.Steps = append(g.Steps, GradualStep{Recipient: m.Name, Depositor: from.Name, Index: k, Objects: len(objs), Held: mine, HeldBack: theirs})
			say("    %s's chunk %d of %d reached %s: %s holds %d of the other's, %s %d.",
				from.Name, k, hv.Gradual.Chunks, nodeName(m, a, alpha, bravo), m.Name, mine, from.Name, theirs)
			say("      %s opened it (a STIX bundle of %d objects) and confirmed it, signed.", m.Name, len(objs))
		}
	}
	for _, m := range []*Member{a, b} {
		if _, err := poll(ctx, func() (*client.Handover, bool, error) {
			hv, err := m.C.Handover(ctx, h.ID)
			if err != nil || hv.State != "released" || hv.Gradual == nil {
				return hv, false, err
			}
			// The last confirmation reaches the other node after that
			// node's own release: wait until each node recorded all.
			for _, c := range hv.Gradual.List {
				if c.ConfirmedAt == nil {
					return hv, false, nil
				}
			}
			return hv, len(hv.Gradual.List) == 2*GradualChunks, nil
		}); err != nil {
			return fmt.Errorf("the gradual case was not released with every chunk confirmed on %s's node: %w", m.Name, err)
		}
	}
	for _, p := range [][2]*Member{{a, b}, {b, a}} {
		m, from := p[0], p[1]
		if want := ids(dossiers[from.ID]); !slices.Equal(opened[m.ID], want) {
			return fmt.Errorf("%s opened %d objects from %s's chunks, not the %d it deposited", m.Name, len(opened[m.ID]), from.Name, len(want))
		}
		g.Opened[m.Name] = len(opened[m.ID])
	}
	say("    Both nodes released the case after the last confirmation. Each side holds the other's whole bundle, the")
	say("    very objects deposited: %s opened %d of %s's, %s %d of %s's.",
		a.Name, g.Opened[a.Name], b.Name, b.Name, g.Opened[b.Name], a.Name)
	say("    Had either stopped confirming or sending, the other would have been at most one chunk short; a rejection")
	say("    (parley handover reject, or the dashboard) stops both nodes at once. Every")
	say("    commitment, move and confirmation is in both nodes' ledgers, which parley verify replays below.")
	return nil
}

// openChunk fetches chunk index of depositor in case id from m's node,
// checks it decrypts with m's key into a STIX bundle, and returns its
// objects and the sealed bytes' SHA-256 its verdict names.
func openChunk(ctx context.Context, m *Member, id, depositor string, index int) ([]json.RawMessage, string, error) {
	d, err := m.C.FetchChunk(ctx, id, depositor, index)
	if err != nil {
		return nil, "", fmt.Errorf("%s fetches chunk %d: %w", m.Name, index, err)
	}
	plain, err := client.Unseal(d.Content, m.Keys.Sealing)
	if err != nil {
		return nil, "", fmt.Errorf("%s opens chunk %d: %w", m.Name, index, err)
	}
	var b struct {
		Type    string            `json:"type"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(plain, &b); err != nil || b.Type != "bundle" {
		return nil, "", fmt.Errorf("chunk %d of %s is not a STIX bundle", index, depositor)
	}
	return b.Objects, d.SHA256, nil
}

// ids are the objects' STIX ids, in order.
func ids(objs []json.RawMessage) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		var x struct{ ID string }
		json.Unmarshal(o, &x) // generated objects: always valid JSON
		out = append(out, x.ID)
	}
	return out
}

// nodeName is the name of m's node.
func nodeName(m, a *Member, alpha, bravo *Node) string {
	if m == a {
		return alpha.Name
	}
	return bravo.Name
}
