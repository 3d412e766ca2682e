package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/node"
	"github.com/parley-cti/parley/internal/store"
)

func init() {
	register(command{"node", "this node's identity (operator): node id --data DIR | node hello --data DIR PEER", cmdNode})
	register(command{"peer", "pin other nodes (operator): peer add --data DIR NAME URL KEY | peer list | peer remove NAME | peer receipt NAME INDEX HASH | peer incidents | peer feeds", cmdPeer})
	register(command{"escrow", "the handovers this node holds as another agreement's escrow node (operator): escrow cases --data DIR [--limit N]", cmdEscrow})
}

func cmdNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: node id | node hello PEER", errUsage)
	}
	switch args[0] {
	case "id", "hello":
	default:
		return unknownSub("node", args[0])
	}
	fs := newFlags("node "+args[0], stderr)
	data := dataFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	st, err := openOperator(ctx, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	id, err := node.LoadIdentity(ctx, st)
	if err != nil {
		return err
	}
	self, err := node.PublicURL(ctx, st)
	if err != nil {
		return err
	}
	switch args[0] {
	case "id":
		if len(pos) != 0 {
			return fmt.Errorf("%w: node id takes no arguments", errUsage)
		}
		return emit(stdout, *asJSON, map[string]string{"url": self, "key": id.Public.VKey, "key_id": id.Public.ID}, func() {
			fmt.Fprintf(stdout, "node key id %s; give peers the line below (parley peer add NAME URL KEY)\n", id.Public.ID)
			fmt.Fprintf(stdout, "%s %s\n", self, id.Public.VKey)
		})
	default: // hello
		if len(pos) != 1 {
			return fmt.Errorf("%w: node hello needs exactly one PEER", errUsage)
		}
		peer, err := node.NewPeers(st).Get(ctx, pos[0])
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		a, err := (&node.Client{Self: id, Peer: peer}).Hello(cctx, self)
		if err != nil {
			return err
		}
		return emit(stdout, *asJSON, a, func() {
			fmt.Fprintf(stdout, "peer %s at %s answered, signed by its pinned key; it knows this node as %q at %s\n", peer.Name, peer.URL, a.Peer, a.PeerURL)
			if a.PeerURL != self {
				fmt.Fprintf(stdout, "note: this node's public URL is %s, not the %s the peer pinned\n", self, a.PeerURL)
			}
		})
	}
}

func cmdPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: peer add NAME URL KEY | peer list | peer remove NAME", errUsage)
	}
	if args[0] == "receipt" || args[0] == "incidents" {
		return cmdPeerWitness(ctx, args, stdout, stderr) // peerwitness.go
	}
	if args[0] == "feeds" {
		return cmdPeerFeeds(ctx, args[1:], stdout, stderr)
	}
	want := map[string]int{"add": 3, "list": 0, "remove": 1}
	n, ok := want[args[0]]
	if !ok {
		return unknownSub("peer", args[0])
	}
	fs := newFlags("peer "+args[0], stderr)
	data := dataFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != n {
		return fmt.Errorf("%w: parley peer add NAME URL KEY | peer list | peer remove NAME", errUsage)
	}
	st, err := openOperator(ctx, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	peers := node.NewPeers(st)
	switch args[0] {
	case "add":
		self, err := node.LoadIdentity(ctx, st)
		if err != nil {
			return err
		}
		p, err := peers.Add(ctx, self, pos[0], pos[1], pos[2])
		if err != nil {
			return err
		}
		return emit(stdout, *asJSON, peerJSON(p.Name, p.URL, p.Key, p.KeyID, p.AddedAt), func() {
			fmt.Fprintf(stdout, "peer %q pinned: %s, key id %s\n", p.Name, p.URL, p.KeyID)
		})
	case "list":
		ps, err := peers.List(ctx)
		if err != nil {
			return err
		}
		out := []map[string]string{}
		for _, p := range ps {
			out = append(out, peerJSON(p.Name, p.URL, p.Key, p.KeyID, p.AddedAt))
		}
		return emit(stdout, *asJSON, out, func() {
			for _, p := range ps {
				fmt.Fprintf(stdout, "%s\t%s\t%s\n", p.Name, p.URL, p.Key)
			}
		})
	default: // remove
		if err := peers.Remove(ctx, pos[0]); err != nil {
			return err
		}
		return emit(stdout, *asJSON, map[string]string{"removed": pos[0]}, func() {
			fmt.Fprintf(stdout, "peer %q removed; its key is no longer accepted\n", pos[0])
		})
	}
}

func peerJSON(name, url, key, keyID string, at time.Time) map[string]string {
	return map[string]string{"name": name, "url": url, "key": key, "key_id": keyID, "added_at": at.UTC().Format(time.RFC3339)}
}

// cmdPeerFeeds serves `peer feeds`: every pull this node makes of its
// peers' parties' contributions, for its operator.
func cmdPeerFeeds(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("peer feeds", stderr)
	data := dataFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: peer feeds takes no arguments", errUsage)
	}
	st, err := openOperator(ctx, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	fp, err := exchange.New(st).AllFeedPulls(ctx)
	if err != nil {
		return err
	}
	return emit(stdout, *asJSON, fp, func() {
		if len(fp) == 0 {
			fmt.Fprintln(stdout, "no feed pulls: no agreement between this node's parties and a peer's is countersigned")
		}
		out := make([]client.FeedPull, len(fp))
		for i, f := range fp {
			out[i] = client.FeedPull{Agreement: f.Agreement, Peer: f.Peer, Party: f.Party, PartyName: f.PartyName, Cursor: f.Cursor,
				PeerReleased: f.PeerReleased, Pulled: f.Pulled, Refused: f.Refused, Attempts: f.Attempts, LastSuccess: f.LastSuccess,
				LastError: f.LastError, NextAttempt: f.NextAttempt, UpdatedAt: f.UpdatedAt}
		}
		printFeedPulls(stdout, out)
	})
}

// cmdEscrow serves `escrow cases`: the cases this node holds as the escrow
// node of agreements between two other nodes, for its operator. It shows
// what the node holds of each deposit (hash, size), never the content.
func cmdEscrow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: escrow cases --data DIR", errUsage)
	}
	if args[0] != "cases" {
		return unknownSub("escrow", args[0])
	}
	fs := newFlags("escrow cases", stderr)
	data := dataFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	limit := fs.Int("limit", 100, "show at most this many cases, newest first")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 || *limit < 1 {
		return fmt.Errorf("%w: escrow cases takes no arguments and a --limit of at least 1", errUsage)
	}
	st, err := openOperator(ctx, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	cs, err := escrow.New(st, exchange.New(st)).HeldCases(ctx, *limit)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, c := range cs {
		ds := []map[string]any{}
		for _, d := range c.Deposits {
			ds = append(ds, map[string]any{"party": d.PartyID, "sha256": hex.EncodeToString(d.SHA256[:]), "bytes": d.Size,
				"deposited_at": d.DepositedAt.UTC().Format(time.RFC3339Nano), "ledger_index": d.LedgerIndex})
		}
		m := map[string]any{"id": c.HandoverID, "agreement": c.AgreementID, "document_sha256": c.DocumentSHA256,
			"proposer": c.Proposer, "proposer_node": c.ProposerNode, "proposer_peer": c.ProposerPeer,
			"counterpart": c.Counterpart, "counterpart_node": c.CounterpartNode, "counterpart_peer": c.CounterpartPeer,
			"state": c.State, "stage": c.Stage, "deadline": c.Deadline.UTC().Format(time.RFC3339Nano),
			"created_at": c.CreatedAt.UTC().Format(time.RFC3339Nano), "deposits": ds}
		if !c.ClosedAt.IsZero() {
			m["closed_at"] = c.ClosedAt.UTC().Format(time.RFC3339Nano)
		}
		if c.ReleaseIndex != 0 {
			m["release_ledger_index"] = c.ReleaseIndex
		}
		out = append(out, m)
	}
	return emit(stdout, *asJSON, out, func() {
		if len(cs) == 0 {
			fmt.Fprintln(stdout, "no cases held: no agreement between two other nodes has sent this node a handover as its escrow node")
		}
		for _, c := range cs {
			fmt.Fprintf(stdout, "%s\t%s\tdeadline %s\n", c.HandoverID, c.Stage, c.Deadline.UTC().Format(time.RFC3339))
			fmt.Fprintf(stdout, "  agreement %s\n", c.AgreementID)
			fmt.Fprintf(stdout, "  proposer    %s on %s\n", c.Proposer, nodeName(c.ProposerPeer, c.ProposerNode))
			fmt.Fprintf(stdout, "  counterpart %s on %s\n", c.Counterpart, nodeName(c.CounterpartPeer, c.CounterpartNode))
			for _, d := range c.Deposits {
				fmt.Fprintf(stdout, "  deposit of %s: %d bytes sealed, sha256 %x, at %s\n", d.PartyID, d.Size, d.SHA256, d.DepositedAt.UTC().Format(time.RFC3339))
			}
			switch c.State {
			case store.HeldReleased:
				fmt.Fprintf(stdout, "  released at %s (ledger index %d)\n", c.ClosedAt.UTC().Format(time.RFC3339), c.ReleaseIndex)
			case store.HeldExpired, store.HeldDeclined:
				fmt.Fprintf(stdout, "  %s at %s; deposits destroyed\n", c.State, c.ClosedAt.UTC().Format(time.RFC3339))
			}
		}
	})
}

// nodeName is a party node as its operator knows it: the name it pinned,
// or the key when it is no longer pinned.
func nodeName(peer, key string) string {
	if peer == "" {
		return "node " + key + " (not pinned)"
	}
	return "peer " + peer
}
