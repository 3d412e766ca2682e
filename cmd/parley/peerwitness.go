package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/crosswitness"
	"github.com/parley-cti/parley/internal/server"
)

// errPeersFailed: `parley verify --peers` found a peer's log failing a check.
var errPeersFailed = errors.New("a peer's log failed its checks")

// cmdVerifyPeers is the operator's form of verify: this node checks the
// logs of its pinned peers (internal/crosswitness).
func cmdVerifyPeers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify --peers", stderr)
	data := dataFlag(fs)
	fs.Bool("peers", true, "check the pinned peers' logs as this node (operator)")
	var only listFlag
	fs.Var(&only, "peer", "check only this peer; repeat for several (default: every pinned peer)")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	timeout := fs.Duration("timeout", time.Minute, "give up on the peers after this long")
	settle := fs.Duration("settle", 0, "check again for up to this long until every peer's checkpoint passes and carries the cosignatures of every witness this node knows")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	st, err := openOperator(ctx, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	w, err := server.Witnessing(ctx, st)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	deadline := time.Now().Add(*settle)
	var reps []*crosswitness.PeerReport
	for {
		if reps, err = w.CheckPeers(cctx, only...); err != nil {
			return err
		}
		if settled(reps) || !time.Now().Before(deadline) || caughtAny(reps) {
			break
		}
		select {
		case <-cctx.Done():
			return cctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	var failed []string
	for _, r := range reps {
		if !r.OK() {
			failed = append(failed, r.Peer)
		}
	}
	err = emit(stdout, *asJSON, map[string]any{"peers": reps, "ok": len(failed) == 0}, func() {
		for _, r := range reps {
			fmt.Fprintf(stdout, "peer %s at %s (node key %s)\n", r.Peer, r.URL, r.NodeKey)
			if r.LogKey != "" {
				fmt.Fprintf(stdout, "  log key %s: checkpoint size %d root %s (this node cosigned size %d)\n", r.LogKey, r.Size, r.Root, r.ViewSize)
			}
			for _, c := range r.Checks {
				mark := "ok  "
				if !c.OK {
					mark = "FAIL"
				}
				fmt.Fprintf(stdout, "  %s %-13s %s\n", mark, c.Name, c.Detail)
			}
			for _, in := range r.Incidents {
				fmt.Fprintf(stdout, "  CAUGHT %s: peer %q, node key %s: %s\n", in.Kind, in.Peer, in.PeerKey, in.Detail)
				if len(in.Ours) > 0 {
					fmt.Fprintf(stdout, "    held:\n%s", indent(string(in.Ours), "      "))
				}
				if len(in.Theirs) > 0 {
					fmt.Fprintf(stdout, "    shown:\n%s", indent(string(in.Theirs), "      "))
				}
			}
		}
		if len(reps) == 0 {
			fmt.Fprintln(stdout, "no peers pinned (parley peer add)")
		}
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %s (the incidents are recorded in the ledger and sent to this node's parties)", errPeersFailed, strings.Join(failed, ", "))
	}
	return nil
}

func settled(reps []*crosswitness.PeerReport) bool {
	for _, r := range reps {
		if !r.Settled() {
			return false
		}
	}
	return true
}

func caughtAny(reps []*crosswitness.PeerReport) bool {
	for _, r := range reps {
		if len(r.Incidents) > 0 {
			return true
		}
	}
	return false
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}

// cmdPeerWitness serves `peer receipt` and `peer incidents`.
func cmdPeerWitness(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("peer "+args[0], stderr)
	data := dataFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	limit := 0
	if args[0] == "incidents" {
		fs.IntVar(&limit, "limit", 50, "show at most this many, newest first")
	}
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	st, err := openOperator(ctx, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	w, err := server.Witnessing(ctx, st)
	if err != nil {
		return err
	}
	if args[0] == "receipt" {
		if len(pos) != 3 {
			return fmt.Errorf("%w: peer receipt PEER INDEX LEAF_HASH", errUsage)
		}
		idx, err := strconv.ParseInt(pos[1], 10, 64)
		if err != nil {
			return fmt.Errorf("%w: %q is not a ledger index", errUsage, pos[1])
		}
		if err := w.AddReceipt(ctx, pos[0], idx, pos[2]); err != nil {
			return err
		}
		return emit(stdout, *asJSON, map[string]any{"peer": pos[0], "index": idx, "leaf_hash": pos[2]}, func() {
			fmt.Fprintf(stdout, "receipt recorded: peer %s's log holds entry %d (leaf hash %s); parley verify --peers holds it to that\n", pos[0], idx, pos[2])
		})
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: peer incidents takes no arguments", errUsage)
	}
	is, err := w.Incidents(ctx, limit)
	if err != nil {
		return err
	}
	out := []map[string]string{}
	for _, i := range is {
		out = append(out, map[string]string{"peer": i.Peer, "peer_key_id": i.KeyID, "incident": i.Kind, "detail": i.Detail,
			"ours": string(i.Ours), "theirs": string(i.Theirs), "at": i.At.Format(time.RFC3339)})
	}
	return emit(stdout, *asJSON, out, func() {
		for _, i := range is {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", i.At.Format(time.RFC3339), i.Peer, i.Kind, i.Detail)
		}
	})
}

// wantsPeers reports whether verify's arguments ask for the operator form.
func wantsPeers(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return a == "--peers" || a == "-peers" || a == "--peers=true" })
}
