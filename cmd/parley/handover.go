package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/ledger"
)

func init() {
	register(command{"handover", "escrowed swaps: handover propose|accept|decline|deposit [--sealed]|withdraw|show|fetch|confirm|reject|dispute|list", cmdHandover})
}

const handoverUsage = `handover propose --agreement A --delivers TEXT --expects TEXT [--request R] [--deadline 48h|RFC3339] [--chunks N]
  handover accept ID | decline ID | withdraw ID | show ID
  handover deposit ID FILE [--sealed]     (FILE - reads stdin; --sealed encrypts to the counterpart's key first;
                                           a gradual case's bundle is split into its chunks, each sealed)
  handover fetch ID [--out FILE] [--chunk K]  (decrypts a sealed deposit with your key and validates it;
                                           of a gradual case, the other side's chunks that arrived, merged)
  handover confirm ID [--print]           (gradual: opens the other side's next chunk and confirms it, signed;
                                           --print writes the signed verdict for the dashboard instead of sending it)
  handover reject ID --reason TEXT [--print] (gradual: rejects the other side's next chunk, signed; stops the exchange)
  handover dispute ID --reason TEXT       (signed with your key; --text is the same)
  handover list [--agreement A]`

func cmdHandover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, handoverUsage)
	}
	sub := args[0]
	fs := newFlags("handover "+sub, stderr)
	cf := addClientFlags(fs)
	agreementID := fs.String("agreement", "", "agreement id (propose, list; deposit: refuse unless the case is under it)")
	delivers := fs.String("delivers", "", "what you deliver (propose)")
	expects := fs.String("expects", "", "what you expect from the other side (propose)")
	requestID := fs.String("request", "", "the request this case answers (propose)")
	deadline := fs.String("deadline", "", "deadline as a duration from now (2d, 48h) or an RFC 3339 time; default the latest the agreement allows (propose)")
	sealed := fs.Bool("sealed", false, "encrypt the bundle to the counterpart's registered sealing key before it leaves this machine (deposit)")
	out := fs.String("out", "", "write the fetched bundle to FILE instead of stdout (fetch)")
	from := fs.String("from", "", "depositor whose deposit to fetch (default: the other side)")
	text := fs.String("text", "", "what is wrong with what you received (dispute; same as --reason)")
	reason := fs.String("reason", "", "what is wrong with what you received (dispute, reject; signed with your key when the profile has one)")
	chunks := fs.Int("chunks", 0, "release gradually in N chunks a side, 2 to 64 (propose; only between two nodes without an escrow node)")
	chunk := fs.Int("chunk", 0, "fetch only chunk K of a gradual case (fetch)")
	printOnly := fs.Bool("print", false, "print the signed verdict (JSON) instead of sending it, e.g. to paste into the dashboard (confirm, reject)")
	onlyOwnFlags := forSubcommand(fs, "handover", sub, map[string][]string{
		"agreement": {"propose", "list", "deposit"}, "delivers": {"propose"}, "expects": {"propose"}, "request": {"propose"},
		"deadline": {"propose"}, "sealed": {"deposit"}, "out": {"fetch"}, "from": {"fetch"}, "text": {"dispute"}, "reason": {"dispute", "reject"},
		"chunks": {"propose"}, "chunk": {"fetch"}, "print": {"confirm", "reject"}})
	pos, err := parse(fs, args[1:])
	if err == nil {
		err = onlyOwnFlags()
	}
	if err != nil {
		return err
	}
	c, prof, err := cf.client()
	if err != nil {
		return err
	}
	// Ids may be given by a unique prefix.
	if len(pos) > 0 && sub != "propose" && sub != "list" && slices.Contains(subcommands["handover"], sub) {
		if pos[0], err = resolveID(ctx, c, "handover", pos[0]); err != nil {
			return err
		}
	}
	if *agreementID, err = resolveID(ctx, c, "agreement", *agreementID); err != nil {
		return err
	}
	if *requestID, err = resolveID(ctx, c, "request", *requestID); err != nil {
		return err
	}
	needID := func() (string, error) {
		if len(pos) < 1 {
			return "", fmt.Errorf("%w: handover %s needs the handover ID", errUsage, sub)
		}
		return pos[0], nil
	}
	show := func(h *client.Handover) error {
		return emit(stdout, cf.json, h, func() { printHandover(stdout, h) })
	}
	switch sub {
	case "propose":
		if *agreementID == "" || *delivers == "" || *expects == "" {
			return fmt.Errorf("%w: handover propose needs --agreement, --delivers and --expects", errUsage)
		}
		var dl time.Time
		if *deadline != "" {
			if d, err := parseHumanDuration(*deadline); err == nil {
				dl = time.Now().Add(d)
			} else if dl, err = time.Parse(time.RFC3339, *deadline); err != nil {
				return fmt.Errorf("%w: --deadline %q is neither a duration nor an RFC 3339 time", errUsage, *deadline)
			}
		}
		h, err := c.ProposeHandover(ctx, client.HandoverProposal{Agreement: *agreementID, Delivers: *delivers, Expects: *expects, Request: *requestID,
			Deadline: dl, Chunks: *chunks})
		if err != nil {
			return err
		}
		return show(h)
	case "accept", "decline", "withdraw", "show":
		id, err := needID()
		if err != nil {
			return err
		}
		var h *client.Handover
		switch sub {
		case "accept":
			h, err = c.AcceptHandover(ctx, id)
		case "decline":
			h, err = c.DeclineHandover(ctx, id)
		case "withdraw":
			h, err = c.Withdraw(ctx, id)
		default:
			h, err = c.Handover(ctx, id)
		}
		if err != nil {
			return err
		}
		return show(h)
	case "deposit":
		if len(pos) != 2 {
			return fmt.Errorf("%w: handover deposit ID FILE [--sealed]", errUsage)
		}
		bundle, err := readInput(pos[1])
		if err != nil {
			return err
		}
		// Validate locally first: a sealed bundle cannot be checked by
		// the server, so this is the only check before release.
		if _, err := escrow.ParseBundle(bundle); err != nil {
			return fmt.Errorf("%s: %w", pos[1], err)
		}
		if hv, err := c.Handover(ctx, pos[0]); err != nil {
			return err
		} else if hv.Gradual != nil {
			return depositGradual(ctx, c, cf, prof, hv, bundle, *sealed, *agreementID, stdout)
		}
		opt := client.DepositOptions{Agreement: *agreementID}
		var res *client.DepositResult
		sent := bundle
		me, err := c.Me(ctx)
		if err != nil {
			return err
		}
		// With a key file, each deposit goes with a signed manifest
		// (count, types, content fingerprints) the recipient checks.
		keys, kerr := prof.privateKeys()
		manifest := func(content []byte) error {
			if kerr != nil {
				return nil
			}
			opt.Manifest, err = client.SignedManifest(keys, pos[0], me.PartyID, bundle, content)
			return err
		}
		if *sealed {
			h, err := c.Handover(ctx, pos[0])
			if err != nil {
				return err
			}
			counterpart := h.Proposer
			if counterpart == me.PartyID {
				counterpart = h.Counterpart
			}
			rcpt, err := sealingRecipient(ctx, c, cf, prof, h.Agreement, counterpart)
			if err != nil {
				return err
			}
			ct, sum, err := client.Seal(bundle, rcpt)
			if err != nil {
				return err
			}
			sent = ct
			if err := manifest(ct); err != nil {
				return err
			}
			res, err = c.DepositSealed(ctx, pos[0], ct, sum, opt)
			if err != nil {
				return err
			}
		} else {
			if err := manifest(bundle); err != nil {
				return err
			}
			if res, err = c.Deposit(ctx, pos[0], bundle, opt); err != nil {
				return err
			}
		}
		// The ledger entry must commit to exactly the bytes sent (hashed
		// here, not taken from the server): verify checks it.
		role := "bundle"
		if *sealed {
			role = "ciphertext"
		}
		sentSum := sha256.Sum256(sent)
		if err := recordReceiptOf(cf, prof, res.Receipt, ledger.KindHandoverDepositCommitted, res.Handover.ID,
			map[string]string{role: "sha256:" + hex.EncodeToString(sentSum[:])}); err != nil {
			return err
		}
		return emit(stdout, cf.json, res, func() {
			fmt.Fprintf(stdout, "deposited in %s (sha256 %s", res.Handover.ID, res.SHA256)
			if res.Receipt >= 0 {
				fmt.Fprintf(stdout, ", ledger entry %d", res.Receipt)
			}
			fmt.Fprintln(stdout, ")")
			if res.Released {
				fmt.Fprintln(stdout, "both deposits are in: the handover is released; fetch the other side's with 'parley handover fetch "+res.Handover.ID+"'")
			} else {
				fmt.Fprintf(stdout, "waiting for the other side until %s\n", res.Handover.Deadline.Format(time.RFC3339))
			}
		})
	case "fetch":
		id, err := needID()
		if err != nil {
			return err
		}
		if hv, err := c.Handover(ctx, id); err != nil {
			return err
		} else if hv.Gradual != nil {
			return fetchGradual(ctx, c, cf, prof, hv, *from, *chunk, *out, stdout, stderr)
		}
		d, err := c.FetchDeposit(ctx, id, *from)
		if err != nil {
			return err
		}
		bundle := d.Content
		if d.Sealed {
			keys, err := prof.privateKeys()
			if err != nil {
				return err
			}
			if bundle, err = client.Unseal(d.Content, keys.Sealing); err != nil {
				return fmt.Errorf("the sealed deposit does not decrypt with your key (%w); file a dispute with 'parley handover dispute %s --text ...'", err, id)
			}
		}
		b, err := escrow.ParseBundle(bundle)
		if err != nil {
			return fmt.Errorf("the deposit is not a valid STIX bundle (%w); file a dispute with 'parley handover dispute %s --text ...'", err, id)
		}
		// Hold the deposit to its depositor's signed manifest.
		hv, err := c.Handover(ctx, id)
		if err != nil {
			return err
		}
		_, merr := c.CheckDeposit(ctx, hv, d, bundle)
		switch {
		case errors.Is(merr, client.ErrNoManifest):
			fmt.Fprintf(stderr, "warning: %s sent no signed manifest; nothing proves what was promised\n", names.name(d.Depositor))
		case merr != nil && !errors.Is(merr, client.ErrManifestMismatch):
			return merr
		}
		if *out != "" {
			if err := os.WriteFile(*out, bundle, 0o600); err != nil {
				return err
			}
		} else if !cf.json && merr == nil {
			_, err := stdout.Write(bundle)
			return err
		}
		if errors.Is(merr, client.ErrManifestMismatch) {
			return fmt.Errorf("%w; file a signed dispute with 'parley handover dispute %s --reason ...'", merr, id)
		}
		return emit(stdout, cf.json, map[string]any{"handover": id, "depositor": d.Depositor, "sealed": d.Sealed, "sha256": d.SHA256,
			"objects": len(b.Objects), "file": *out}, func() {
			fmt.Fprintf(stderr, "%d valid objects from %s written to %s\n", len(b.Objects), names.name(d.Depositor), *out)
		})
	case "confirm", "reject":
		id, err := needID()
		if err != nil {
			return err
		}
		if sub == "reject" && strings.TrimSpace(*reason) == "" {
			return fmt.Errorf("%w: handover reject ID --reason TEXT", errUsage)
		}
		return judgeGradual(ctx, c, cf, prof, id, sub == "confirm", *reason, *printOnly, stdout)
	case "dispute":
		id, err := needID()
		if err != nil {
			return err
		}
		if *reason != "" {
			*text = *reason
		}
		if strings.TrimSpace(*text) == "" {
			return fmt.Errorf("%w: handover dispute ID --reason TEXT", errUsage)
		}
		keys, err := prof.privateKeys()
		if err != nil {
			// Without a key file the dispute is recorded unsigned.
			h, err := c.DisputeHandover(ctx, id, *text)
			if err != nil {
				return err
			}
			return show(h)
		}
		hv, err := c.Handover(ctx, id)
		if err != nil {
			return err
		}
		me := prof.Party
		if me == "" {
			m, err := c.Me(ctx)
			if err != nil {
				return err
			}
			me = m.PartyID
		}
		st := agreement.Dispute{Handover: id, Disputer: me, Depositor: hv.Proposer, Reason: *text, SignedAt: time.Now().UTC()}
		if st.Depositor == me {
			st.Depositor = hv.Counterpart
		}
		for _, dep := range hv.Deposits {
			var m agreement.Manifest
			if dep.Party == st.Depositor && len(dep.Manifest) > 0 && json.Unmarshal(dep.Manifest, &m) == nil {
				st.ManifestSHA256 = agreement.ManifestRef(m)
			}
		}
		if st, err = agreement.SignDispute(keys, st); err != nil {
			return err
		}
		h, err := c.DisputeHandoverSigned(ctx, st)
		if err != nil {
			return err
		}
		return show(h)
	case "list":
		hs, err := c.Handovers(ctx, *agreementID)
		if err != nil {
			return err
		}
		return emit(stdout, cf.json, map[string]any{"handovers": hs}, func() {
			for _, h := range hs {
				other := h.Counterpart
				if other == prof.Party {
					other = h.Proposer
				}
				fmt.Fprintf(stdout, "%s\t%s\twith %s\t%s\tdeadline %s\n", h.ID, h.State, names.name(other), h.Agreement, h.Deadline.Format(time.RFC3339))
			}
		})
	}
	return unknownSub("handover", sub)
}

func printHandover(w io.Writer, h *client.Handover) {
	fmt.Fprintf(w, "handover %s (%s) under %s\n", h.ID, h.State, h.Agreement)
	fmt.Fprintf(w, "  %s delivers: %s\n  %s delivers: %s\n", names.name(h.Proposer), h.ProposerDelivers, names.name(h.Counterpart), h.CounterpartDelivers)
	if h.Request != "" {
		fmt.Fprintf(w, "  answers request %s\n", h.Request)
	}
	fmt.Fprintf(w, "  deadline %s\n", h.Deadline.Format(time.RFC3339))
	for _, d := range h.Deposits {
		kind := "plain"
		if d.Sealed {
			kind = "sealed"
		}
		sum := d.SHA256
		if sum == "" {
			sum = "withheld until release"
		}
		fmt.Fprintf(w, "  deposit by %s: %s, sha256 %s, at %s\n", names.name(d.Party), kind, sum, d.DepositedAt.Format(time.RFC3339))
		if m := manifestOf(d.Manifest); m != nil {
			fmt.Fprintf(w, "    signed manifest: %d objects %v, key %s\n", m.Objects, m.Types, m.KeyID)
		}
		if d.Dispute != "" {
			fmt.Fprintf(w, "    disputed: %s\n", d.Dispute)
			var st agreement.Dispute
			if len(d.DisputeStatement) > 0 && json.Unmarshal(d.DisputeStatement, &st) == nil {
				fmt.Fprintf(w, "    dispute signed by %s with key %s at %s\n", names.name(st.Disputer), st.KeyID, st.SignedAt.Format(time.RFC3339))
			}
		}
	}
	if g := h.Gradual; g != nil {
		fmt.Fprintf(w, "  gradual release: %d chunks a side\n", g.Chunks)
		for _, side := range []string{h.Proposer, h.Counterpart} {
			moved, confirmed := 0, 0
			for _, c := range g.List {
				if c.Depositor != side {
					continue
				}
				if c.MovedAt != nil {
					moved++
				}
				if c.ConfirmedAt != nil {
					confirmed++
				}
			}
			committed := "not committed yet"
			if slices.Contains(g.Committed, side) {
				committed = "committed"
			}
			fmt.Fprintf(w, "  chunks of %s: %s, %d of %d handed over, %d confirmed by the other side\n", names.name(side), committed, moved, g.Chunks, confirmed)
		}
		if g.StoppedBy != "" {
			fmt.Fprintf(w, "  stopped by %s: %s\n", names.name(g.StoppedBy), g.StopReason)
		}
	}
	if h.LedgerIndex != nil {
		fmt.Fprintf(w, "  ledger entry %d\n", *h.LedgerIndex)
	}
}

// sealingRecipient returns the counterpart's sealing key, refusing one not
// bound to the signing key the agreement names for it and pinning it on
// first use in the profile's state directory (sealing-keys.json).
func sealingRecipient(ctx context.Context, c *client.Client, cf *clientFlags, prof profile, agreementID, counterpart string) (string, error) {
	pins, err := sealingPins(cf)
	if err != nil {
		return "", err
	}
	mine, err := prof.privateKeys()
	if err != nil {
		mine = nil // without a key file the own-signature check is skipped; the others stand
	}
	rcpt, err := c.SealingRecipient(ctx, agreementID, counterpart, mine, pins)
	if err != nil {
		return "", fmt.Errorf("%s's sealing key: %w", counterpart, err)
	}
	return rcpt, nil
}

func sealingPins(cf *clientFlags) (client.PinFile, error) {
	st, err := cf.auditState()
	if err != nil {
		return "", err
	}
	return client.PinFile(filepath.Join(st.Dir, "sealing-keys.json")), nil
}

// readInput reads a file, or stdin for "-".
func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, escrow.MaxDeposit+1))
	}
	return os.ReadFile(path)
}

func manifestOf(raw json.RawMessage) *agreement.Manifest {
	var m agreement.Manifest
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return &m
}
