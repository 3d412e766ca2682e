package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
)

func init() {
	register(command{"agreement", "signed agreements: agreement propose|sign|show|list|amend|suspend|resume|terminate", cmdAgreement})
	register(command{"balance", "give-to-get balance under an agreement: balance AGREEMENT-ID", cmdBalance})
}

// termsFlags are the agreement terms a proposal or amendment sets.
type termsFlags struct {
	with, types, maxTLP, unmarked, ratio, window, escrow, ack, fulfil, notice, file, contestWindow, escrowNode string
	grace, days                                                                                                int
	matchCap                                                                                                   int64
	cosign                                                                                                     bool
}

func addTermsFlags(fs *flag.FlagSet) *termsFlags {
	t := &termsFlags{}
	fs.StringVar(&t.with, "with", "", "the other party: a name or id on this server, or PARTY@PEER for a party of a pinned peer node")
	fs.StringVar(&t.file, "file", "", "take the whole document from this JSON file instead of flags")
	fs.StringVar(&t.types, "types", "indicator,malware,threat-actor,intrusion-set,infrastructure,campaign,attack-pattern,tool,identity,relationship,report", "STIX types in scope, comma-separated")
	fs.StringVar(&t.maxTLP, "max-tlp", "amber", "highest TLP allowed: clear, green, amber, amber+strict, red")
	fs.StringVar(&t.unmarked, "unmarked", "allow", "objects without a TLP marking: allow or refuse")
	fs.StringVar(&t.ratio, "ratio", "1:1", "give:get — objects readable per credit earned, e.g. 1:1 or 2:1")
	fs.IntVar(&t.grace, "grace", 10, "objects readable before contributing anything")
	fs.StringVar(&t.window, "window", "", "rolling window for credits, e.g. 30d (default: credits never lapse)")
	fs.StringVar(&t.contestWindow, "contest-window", "", "how long after a contribution the receiving side may contest its credit, e.g. 7d (default: no contests)")
	fs.StringVar(&t.escrow, "escrow-deadline", "3d", "longest a handover waits for both deposits")
	fs.StringVar(&t.escrowNode, "escrow-node", "", "with a party of a peer node: the key of a third node both sides choose to hold handovers as escrow (its 'parley node id'; your node's operator pins it)")
	fs.StringVar(&t.ack, "ack-deadline", "1d", "time to acknowledge a request")
	fs.StringVar(&t.fulfil, "fulfil-deadline", "7d", "time to fulfil or refuse a request")
	fs.IntVar(&t.days, "days", 365, "validity in days from now")
	fs.StringVar(&t.notice, "notice", "30d", "termination notice period")
	fs.Int64Var(&t.matchCap, "match-cap", 1_000_000, "largest wanted list in private matching")
	fs.BoolVar(&t.cosign, "require-cosignature", false, "require the counterpart's cosignature on ledger checkpoints")
	return t
}

// document builds the agreement document from the flags.
func (t *termsFlags) document(ctx context.Context, c *client.Client, me *client.Me, id string, version, supersedes int) (*agreement.Document, error) {
	if t.file != "" {
		raw, err := os.ReadFile(t.file)
		if err != nil {
			return nil, err
		}
		return agreement.ParseDocument(raw)
	}
	if t.with == "" {
		return nil, fmt.Errorf("%w: name the other party with --with", errUsage)
	}
	if len(me.Keys) == 0 {
		return nil, fmt.Errorf("%w: you have not registered keys; run 'parley keygen'", errUsage)
	}
	myKey := me.Keys[len(me.Keys)-1].Keys
	mine := map[string]any{"party_id": me.PartyID, "name": me.Name, "key_id": myKey.KeyID}
	theirs, err := counterpart(ctx, c, t.with)
	if err != nil {
		return nil, err
	}
	if theirs["node"] != nil {
		mine["node"] = theirs["self"]
		delete(theirs, "self")
	}
	now := time.Now().UTC().Truncate(time.Second)
	recip := map[string]any{"ratio": t.ratio, "grace": t.grace}
	if t.window != "" {
		recip["window"] = goDuration(t.window)
	}
	if t.contestWindow != "" {
		recip["contest_window"] = goDuration(t.contestWindow)
	}
	m := map[string]any{
		"schema_version": agreement.SchemaVersion, "id": id, "version": version,
		"parties":              []map[string]any{mine, theirs},
		"scope":                map[string]any{"types": strings.Split(t.types, ","), "max_tlp": t.maxTLP, "unmarked": t.unmarked},
		"reciprocity":          recip,
		"escrow_deadline":      goDuration(t.escrow),
		"request_deadlines":    map[string]any{"acknowledge": goDuration(t.ack), "fulfil": goDuration(t.fulfil)},
		"not_before":           now.Format(time.RFC3339),
		"not_after":            now.Add(time.Duration(t.days) * 24 * time.Hour).Format(time.RFC3339),
		"termination_notice":   goDuration(t.notice),
		"requires_cosignature": t.cosign,
		"match_cap":            t.matchCap,
	}
	if supersedes > 0 {
		m["supersedes"] = supersedes
	}
	if t.escrowNode != "" {
		m["escrow_node"] = t.escrowNode
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return agreement.ParseDocument(raw)
}

// counterpart names the other party of a document: a party of this server
// (by name or id), or PARTY@PEER, a party of the peer node this server's
// operator pinned as PEER, which this server looks up on that peer (the
// token never leaves this server). A peer's party names its node, and
// "self" carries this node's key for the proposer's own entry.
func counterpart(ctx context.Context, c *client.Client, with string) (map[string]any, error) {
	remote := func(peer, party string) (map[string]any, error) {
		rp, err := c.RemoteParty(ctx, peer, party)
		if err != nil {
			return nil, err
		}
		if !rp.HasKeys {
			return nil, fmt.Errorf("%s on %s has not registered keys yet (they run 'parley keygen' on their node)", rp.Name, peer)
		}
		return map[string]any{"party_id": rp.PartyID, "name": rp.Name, "key_id": rp.KeyID, "node": rp.Node, "self": rp.Self}, nil
	}
	var remoteErr error
	if i := strings.LastIndex(with, "@"); i > 0 && i < len(with)-1 {
		m, err := remote(with[i+1:], with[:i])
		if !errors.Is(err, client.ErrNotFound) {
			return m, err
		}
		remoteErr = fmt.Errorf("no peer node %q pinned on your server (its operator runs parley peer add): %w", with[i+1:], err)
	}
	other, err := c.PartyByName(ctx, with)
	if err != nil && remoteErr != nil {
		return nil, remoteErr
	}
	if err != nil {
		return nil, err
	}
	// A peer's party is in this server's directory as NAME@PEER: an
	// amendment addresses it again through its node.
	if i := strings.LastIndex(other.Name, "@"); i > 0 && i < len(other.Name)-1 {
		m, err := remote(other.Name[i+1:], other.ID)
		if !errors.Is(err, client.ErrNotFound) {
			return m, err
		}
	}
	otherKey, err := c.CurrentKey(ctx, other.ID)
	if err != nil {
		return nil, fmt.Errorf("%s has not registered keys yet (they run 'parley keygen'): %w", other.Name, err)
	}
	return map[string]any{"party_id": other.ID, "name": other.Name, "key_id": otherKey.KeyID}, nil
}

func signStatement(keys *agreement.PrivateKeys, d *agreement.Document, action agreement.Action, partyID, reason string) (agreement.Signature, error) {
	st := agreement.StatementFor(d, action, partyID, keys.KeyID(), time.Now())
	switch action {
	case agreement.ActionSuspend, agreement.ActionResume, agreement.ActionTerminate:
		st.EffectiveAt = st.SignedAt
		st.Reason = reason
		if st.Reason == "" {
			return agreement.Signature{}, fmt.Errorf("%w: %s needs --reason", errUsage, action)
		}
	}
	return agreement.Sign(keys, st)
}

// printTerms writes the terms of one document version: what a party
// reviews before it signs.
func printTerms(w io.Writer, d *agreement.Document) {
	h := d.Hash()
	fmt.Fprintf(w, "  version %d, document sha256 %s\n", d.Version, hex.EncodeToString(h[:]))
	fmt.Fprintf(w, "  parties: %s (key %s) and %s (key %s)\n", d.Parties[0].Name, d.Parties[0].KeyID, d.Parties[1].Name, d.Parties[1].KeyID)
	if d.CrossNode() {
		fmt.Fprintf(w, "  nodes: %s on %s; %s on %s\n", d.Parties[0].Name, d.Parties[0].Node, d.Parties[1].Name, d.Parties[1].Node)
	}
	if d.EscrowNode != "" {
		fmt.Fprintf(w, "  escrow node: %s\n", d.EscrowNode)
	}
	fmt.Fprintf(w, "  scope: %s, up to %s, unmarked %s\n", strings.Join(d.Scope.Types, ", "), d.Scope.MaxTLP.Label(), map[bool]string{true: "allowed", false: "refused"}[d.Scope.AllowUnmarked])
	fmt.Fprintf(w, "  reciprocity: %g:%g, grace %d", d.Reciprocity.Give, d.Reciprocity.Get, d.Reciprocity.Grace)
	if d.Reciprocity.Window > 0 {
		fmt.Fprintf(w, ", window %s", humanDuration(d.Reciprocity.Window))
	}
	for _, typ := range slices.Sorted(maps.Keys(d.Reciprocity.Weights)) {
		fmt.Fprintf(w, ", %s weighs %g", typ, d.Reciprocity.Weights[typ])
	}
	if d.Reciprocity.ContestWindow > 0 {
		fmt.Fprintf(w, ", credits contestable for %s", humanDuration(d.Reciprocity.ContestWindow))
	}
	if len(d.Reciprocity.Quality) > 0 {
		fmt.Fprintf(w, ", quality floor for %s", strings.Join(slices.Sorted(maps.Keys(d.Reciprocity.Quality)), ", "))
	}
	fmt.Fprintf(w, "\n  valid %s to %s; escrow deadline %s; requests: acknowledge within %s, answer within %s; termination notice %s\n",
		d.NotBefore.Format(time.RFC3339), d.NotAfter.Format(time.RFC3339), humanDuration(d.EscrowDeadline),
		humanDuration(d.RequestDeadlines.Acknowledge), humanDuration(d.RequestDeadlines.Fulfil), humanDuration(d.TerminationNotice))
}

// printDocument writes the whole document, every term included (also any
// a summary does not show), indented; its hash covers the canonical form.
func printDocument(w io.Writer, d *agreement.Document) {
	var b bytes.Buffer
	if err := json.Indent(&b, d.Canonical(), "  ", "  "); err != nil {
		b.Reset()
		b.Write(d.Canonical())
	}
	fmt.Fprintf(w, "  the whole document (sha256 of its canonical form as above):\n  %s\n", b.String())
}

func printAgreement(w io.Writer, a *client.Agreement) {
	fmt.Fprintf(w, "agreement %s\n  phase: %s (in force: %v), version %d", a.ID, a.Phase, a.InForce, a.Version)
	if a.PendingVersion > 0 {
		fmt.Fprintf(w, ", version %d awaits countersignature", a.PendingVersion)
	}
	fmt.Fprintln(w)
	if d, err := a.Doc(); err == nil {
		printTerms(w, d)
	}
	if a.AwaitingVersion > 0 && a.AwaitingVersion != a.Version {
		if d, err := a.VersionDoc(a.AwaitingVersion); err == nil {
			fmt.Fprintf(w, "  awaiting countersignature:\n")
			printTerms(w, d)
		}
	}
	if a.AwaitingVersion > 0 {
		fmt.Fprintf(w, "  to countersign exactly version %d: parley agreement sign %s --version %d --hash %s\n", a.AwaitingVersion, a.ID, a.AwaitingVersion, a.AwaitingDocumentHash)
	}
	for _, s := range a.Signatures {
		fmt.Fprintf(w, "  signed: %s v%d by %s (key %s) at %s\n", s.Action, s.Version, names.name(s.PartyID), s.KeyID, s.SignedAt.Format(time.RFC3339))
	}
	if a.TerminationAt != "" {
		fmt.Fprintf(w, "  termination effective at %s (%s)\n", a.TerminationAt, a.Reason)
	}
	fmt.Fprintf(w, "  TAXII API root: %s\n", a.APIRoot)
}

// printDelivery says, for an agreement between two nodes, what this node
// has delivered to the other party's node and what it still owes.
func printDelivery(ctx context.Context, c *client.Client, w io.Writer, a *client.Agreement) {
	d, err := a.Doc()
	if err != nil || !d.CrossNode() {
		return
	}
	es, err := c.Outbox(ctx, a.ID)
	if err != nil {
		fmt.Fprintf(w, "  steps owed to the other node: unknown (%v)\n", err)
		return
	}
	n := map[string]int{}
	for _, e := range es {
		n[e.State]++
	}
	fmt.Fprintf(w, "  steps sent from this node to the other party's node: %d delivered, %d pending, %d refused\n", n["delivered"], n["pending"], n["refused"])
	for _, e := range es {
		if e.State != "delivered" && e.LastError != "" {
			fmt.Fprintf(w, "    step %d %s after %d attempts: %s\n", e.Seq, e.State, e.Attempts, e.LastError)
		}
	}
}

func cmdAgreement(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: agreement propose|sign|show|list|amend|suspend|resume|terminate", errUsage)
	}
	sub := args[0]
	fs := newFlags("agreement "+sub, stderr)
	cf := addClientFlags(fs)
	// Each subcommand lists only its own flags (-h).
	var tf *termsFlags
	if sub == "propose" || sub == "amend" {
		tf = addTermsFlags(fs)
	}
	reason := new(string)
	var signVersion int
	var signHash string
	var printOnly bool
	switch sub {
	case "suspend", "resume", "terminate":
		fs.StringVar(reason, "reason", "", "why (recorded in the signed statement)")
	case "sign":
		fs.IntVar(&signVersion, "version", 0, "the version you reviewed (agreement show prints it)")
		fs.StringVar(&signHash, "hash", "", "the sha256 of the document you reviewed (agreement show prints it)")
		fs.BoolVar(&printOnly, "print", false, "print the signed statement (JSON) instead of sending it, e.g. to paste into the dashboard")
	case "propose", "show", "list", "amend":
	default:
		return unknownSub("agreement", sub)
	}
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	c, prof, err := cf.client()
	if err != nil {
		return err
	}
	needID := func() (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("%w: agreement %s needs the agreement id", errUsage, sub)
		}
		return resolveID(ctx, c, "agreement", pos[0])
	}
	show := func(a *client.Agreement) error {
		// A state change carries its ledger index: keep it for parley verify.
		if a.LedgerIndex != nil {
			if err := recordReceipt(cf, prof, client.Receipt(*a.LedgerIndex), "", a.ID); err != nil {
				fmt.Fprintf(stderr, "parley: the receipt (ledger entry %d) could not be saved: %v\n", *a.LedgerIndex, err)
			}
		}
		return emit(stdout, cf.json, a, func() { printAgreement(stdout, a); printDelivery(ctx, c, stdout, a) })
	}
	switch sub {
	case "list":
		as, err := c.Agreements(ctx)
		if err != nil {
			return err
		}
		self := prof.Party
		if self == "" {
			if me, err := c.Me(ctx); err == nil {
				self = me.PartyID
			}
		}
		return emit(stdout, cf.json, as, func() {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCOUNTERPART\tPHASE\tVERSION\tIN FORCE")
			for _, a := range as {
				if a.Problem != "" {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", a.ID, "", a.Phase, a.Problem)
					continue
				}
				other := ""
				for _, p := range a.Parties {
					if p != self {
						other = names.name(p)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\tv%d\t%v\n", a.ID, other, a.Phase, a.Version, a.InForce)
			}
			tw.Flush()
		})
	case "show":
		id, err := needID()
		if err != nil {
			return err
		}
		a, err := c.Agreement(ctx, id)
		if err != nil {
			return err
		}
		return show(a)
	}
	keys, err := prof.privateKeys()
	if err != nil {
		return err
	}
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	switch sub {
	case "propose":
		d, err := tf.document(ctx, c, me, agreement.NewID(), 1, 0)
		if err != nil {
			return err
		}
		sig, err := signStatement(keys, d, agreement.ActionPropose, me.PartyID, "")
		if err != nil {
			return err
		}
		a, err := c.Propose(ctx, d, sig)
		if err != nil {
			return err
		}
		return show(a)
	case "amend":
		id, err := needID()
		if err != nil {
			return err
		}
		cur, err := c.Agreement(ctx, id)
		if err != nil {
			return err
		}
		latest := cur.Version
		if cur.PendingVersion > latest {
			latest = cur.PendingVersion
		}
		if tf.with == "" {
			for _, p := range cur.Parties {
				if p != me.PartyID {
					tf.with = p
				}
			}
		}
		d, err := tf.document(ctx, c, me, id, latest+1, cur.Version)
		if err != nil {
			return err
		}
		sig, err := signStatement(keys, d, agreement.ActionAmend, me.PartyID, "")
		if err != nil {
			return err
		}
		a, err := c.Amend(ctx, d, sig)
		if err != nil {
			return err
		}
		return show(a)
	case "sign", "suspend", "resume", "terminate":
		id, err := needID()
		if err != nil {
			return err
		}
		cur, err := c.Agreement(ctx, id)
		if err != nil {
			return err
		}
		action := agreement.Action(sub)
		version := cur.Version
		if sub == "sign" {
			// A countersignature names what was reviewed: never "whatever
			// is latest", which the proposer could amend in between.
			action = agreement.ActionCountersign
			if signVersion == 0 || signHash == "" {
				if cur.AwaitingVersion == 0 {
					return fmt.Errorf("%w: nothing in agreement %s awaits your countersignature (phase %s)", errUsage, id, cur.Phase)
				}
				d, err := cur.VersionDoc(cur.AwaitingVersion)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "agreement %s: version %d awaits your countersignature\n", id, d.Version)
				printTerms(stdout, d)
				printDocument(stdout, d)
				return fmt.Errorf("%w: review the terms above; to countersign exactly them, run: parley agreement sign %s --version %d --hash %s",
					errUsage, id, d.Version, cur.AwaitingDocumentHash)
			}
			version = signVersion
		}
		d, err := cur.VersionDoc(version)
		if err != nil {
			return err
		}
		if sub == "sign" {
			if h := d.Hash(); hex.EncodeToString(h[:]) != strings.ToLower(signHash) {
				return fmt.Errorf("version %d's document has sha256 %s, not the %s you reviewed; not signing — review it again with 'parley agreement show %s'", version, hex.EncodeToString(h[:]), signHash, id)
			}
			fmt.Fprintf(stderr, "countersigning agreement %s:\n", id)
			printTerms(stderr, d)
			// Check the proposer's signature ourselves before adding ours.
			if err := verifyProposal(ctx, c, cur, d); err != nil {
				return err
			}
		}
		sig, err := signStatement(keys, d, action, me.PartyID, *reason)
		if err != nil {
			return err
		}
		if printOnly {
			return json.NewEncoder(stdout).Encode(sig)
		}
		a, err := c.Sign(ctx, sig)
		if err != nil {
			return err
		}
		return show(a)
	}
	return unknownSub("agreement", sub)
}

// verifyProposal checks that the version about to be countersigned carries a
// valid proposal or amendment signature by the other party.
func verifyProposal(ctx context.Context, c *client.Client, a *client.Agreement, d *agreement.Document) error {
	for _, s := range a.Signatures {
		if s.Version != d.Version || (s.Action != agreement.ActionPropose && s.Action != agreement.ActionAmend) {
			continue
		}
		keys, err := c.PartyKeys(ctx, s.PartyID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Keys.KeyID == s.KeyID {
				if err := agreement.Verify(k.Keys, s); err != nil {
					return fmt.Errorf("the proposer's signature does not verify; not signing: %w", err)
				}
				h := d.Hash()
				if s.DocumentHash != fmt.Sprintf("%x", h[:]) {
					return errors.New("the proposer signed a different document; not signing")
				}
				return nil
			}
		}
	}
	return fmt.Errorf("version %d carries no proposal signature this CLI can verify; not signing", d.Version)
}

func cmdBalance(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("balance", stderr)
	cf := addClientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: balance needs the agreement id", errUsage)
	}
	c, _, err := cf.client()
	if err != nil {
		return err
	}
	id, err := resolveID(ctx, c, "agreement", pos[0])
	if err != nil {
		return err
	}
	b, err := c.Balance(ctx, id)
	if err != nil {
		return err
	}
	return emit(stdout, cf.json, b, func() {
		fmt.Fprintf(stdout, "agreement %s (%s)\n", b.Agreement, b.Phase)
		fmt.Fprintf(stdout, "  you contributed %d new objects, worth %g credits\n", b.Contributed, b.Credits)
		if b.Contested > 0 {
			fmt.Fprintf(stdout, "  the other side contests %g more credits of yours (parley contest list %s)\n", b.Contested, b.Agreement)
		}
		fmt.Fprintf(stdout, "  your allowance: %d; the other side contributed %d; released to you: %d\n", b.Allowance, b.Available, b.Released)
		fmt.Fprintf(stdout, "  your next credit unlocks %d more\n", b.NextUnlocks)
	})
}
