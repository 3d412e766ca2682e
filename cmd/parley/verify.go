package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
)

func init() {
	register(command{"verify", "check the ledger: checkpoint, consistency, receipts, replayed balances: verify [--log-key VKEY] [--receipt N] [--require-cosigner NAME|VKEY] [--upload] | verify list [--limit N] | verify --peers --data DIR [--peer NAME] (operator: the pinned peers' logs)", cmdVerify})
}

// profileName is the profile a client command runs as ("default" when
// only --server and --token were given).
func (cf *clientFlags) profileName() string {
	if cf.profile != "" {
		return cf.profile
	}
	if ps, _, err := loadProfiles(); err == nil && ps.Current != "" {
		return ps.Current
	}
	return "default"
}

// auditState is the profile's local ledger state (pinned log key, last
// checkpoint, receipts), beside its config file and named after it and the
// profile: north.json keeps north.ledger/, so north's verify never compares
// against south's checkpoint. The default config file (profiles.json) keeps
// its earlier place, <config dir>/ledger/<profile>/, so pinned keys survive.
func (cf *clientFlags) auditState() (audit.State, error) {
	cp, err := configPath()
	if err != nil {
		return audit.State{}, err
	}
	if filepath.Base(cp) == "profiles.json" {
		return audit.State{Dir: filepath.Join(filepath.Dir(cp), "ledger", cf.profileName())}, nil
	}
	dir, err := profileFile(cf.profileName(), "ledger")
	return audit.State{Dir: dir}, err
}

// recordReceipt keeps the ledger index of a state-changing response so that
// `parley verify` proves it later. Client commands call it with the
// client.Receipt a call returned (ignored when -1), the kind of entry the
// change records and its subject when known ("" otherwise), e.g.
//
//	rc, err := c.SomeCall(...)
//	if err == nil { err = recordReceipt(cf, p, rc, ledger.KindFeedBatch, "status--"+id) }
func recordReceipt(cf *clientFlags, p profile, rc client.Receipt, kind ledger.Kind, subject string) error {
	return recordReceiptOf(cf, p, rc, kind, subject, nil)
}

// recordReceiptOf is recordReceipt for an entry whose commitments the
// party can check itself: digests (role → "sha256:<hex>") are what it knows
// the entry binds, and `parley verify` opens the entry's commitments with
// the key the server gives the party to check them.
func recordReceiptOf(cf *clientFlags, p profile, rc client.Receipt, kind ledger.Kind, subject string, digests map[string]string) error {
	if rc < 0 {
		return nil
	}
	st, err := cf.auditState()
	if err != nil {
		return err
	}
	return st.RecordReceipt(audit.Receipt{Index: int64(rc), Kind: kind, Subject: subject, Party: p.Party, Digests: digests})
}

type int64List []int64

func (l *int64List) String() string { return fmt.Sprint(*l) }
func (l *int64List) Set(v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a ledger index", v)
	}
	*l = append(*l, n)
	return nil
}

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "list" {
		return cmdVerifyList(ctx, args[1:], stdout, stderr)
	}
	if wantsPeers(args) {
		return cmdVerifyPeers(ctx, args, stdout, stderr)
	}
	fs := newFlags("verify", stderr)
	cf := addClientFlags(fs)
	logKey := fs.String("log-key", env("log-key", ""), "the log's verifier key, pinned instead of trusting the server on first use")
	var receipts int64List
	fs.Var(&receipts, "receipt", "a ledger index (X-Parley-Ledger-Index) to record and prove; repeat for several")
	var cosigners listFlag
	fs.Var(&cosigners, "require-cosigner", "witness NAME (pinned) or VKEY (pinned now) that must have cosigned the checkpoint; repeat for several")
	settle := fs.Duration("settle", 15*time.Second, "how long to wait for a checkpoint covering recent changes")
	upload := fs.Bool("upload", false, "after a successful verification, sign what was verified with the profile's keys and send it to the server, for the dashboard")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	c, p, err := cf.client()
	if err != nil {
		return err
	}
	if p.Party == "" {
		me, err := c.Me(ctx)
		if err != nil {
			return fmt.Errorf("the server did not accept the token: %w", err)
		}
		p.Party = me.PartyID
	}
	st, err := cf.auditState()
	if err != nil {
		return err
	}
	for _, n := range receipts {
		if err := st.RecordReceipt(audit.Receipt{Index: n, Party: p.Party}); err != nil {
			return err
		}
	}
	vkeys, err := cosignerKeys(st, cosigners)
	if err != nil {
		return err
	}
	rep, err := audit.Verify(ctx, audit.Options{
		State: st, Remote: audit.NewRemote(p.Server, p.Token, nil), API: c, Party: p.Party,
		LogKey: *logKey, Cosigners: vkeys, Settle: *settle,
		FetchKey: func(ctx context.Context) (string, error) { return audit.FetchLogKey(ctx, p.Server, p.Token, nil) },
	})
	if err != nil {
		return err
	}
	if rep.Pinned && *logKey == "" {
		fmt.Fprintf(stderr, "NOTICE: trust on first use: no log key was pinned, so parley pinned the key the server presented:\n  %s\n"+
			"Compare it with the key the operator publishes out of band; from now on any other key fails verification.\n"+
			"State kept in %s\n", rep.LogKey, st.Dir)
	}
	if err := emit(stdout, cf.json, rep, func() { printReport(stdout, rep) }); err != nil {
		return err
	}
	if err := rep.Err(); err != nil {
		var names []string
		for _, ch := range rep.Checks {
			if !ch.OK {
				names = append(names, ch.Name)
			}
		}
		// The report above names each failure; the error names the checks.
		return fmt.Errorf("verification FAILED: %s", strings.Join(names, ", "))
	}
	if *upload {
		return uploadVerification(ctx, c, p, rep, stderr)
	}
	return nil
}

// cmdVerifyList lists the verifications the party uploaded (verify
// --upload), newest first: what the dashboard shows in place of the
// server's claim about itself.
func cmdVerifyList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify list", stderr)
	cf := addClientFlags(fs)
	limit := fs.Int("limit", 20, "how many to list, newest first (1 to 100)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	if *limit < 1 || *limit > 100 {
		return fmt.Errorf("%w: --limit must be 1 to 100", errUsage)
	}
	c, _, err := cf.client()
	if err != nil {
		return err
	}
	vs, err := c.Verifications(ctx, *limit)
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []client.Verification{}
	}
	return emit(stdout, cf.json, vs, func() {
		if len(vs) == 0 {
			fmt.Fprintln(stdout, "no verifications uploaded yet; run parley verify --upload")
			return
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tVERIFIED\tSIZE\tYOUR ENTRIES\tRESULT\tKEY\tROOT\tRECEIVED")
		for _, v := range vs {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", v.Seq, v.VerifiedAt.UTC().Format(time.RFC3339), v.Size, v.Entries,
				v.Statement.Result, v.Statement.KeyID, v.Root, v.ReceivedAt.UTC().Format(time.RFC3339))
		}
		tw.Flush()
	})
}

// uploadVerification signs, with the profile's own keys, what this
// verification checked and sends it to the server, which shows the party
// its latest one on the dashboard. Only a passed verification is sent.
func uploadVerification(ctx context.Context, c *client.Client, p profile, rep *audit.Report, stderr io.Writer) error {
	keys, err := p.privateKeys()
	if err != nil {
		return fmt.Errorf("--upload signs with the profile's keys: %w", err)
	}
	sv, err := agreement.SignVerification(keys, agreement.VerificationStatement{PartyID: p.Party, Origin: rep.Checkpoint.Origin,
		Size: rep.Size, Root: rep.Root, Result: agreement.VerificationOK, Entries: rep.Mine, VerifiedAt: time.Now()})
	if err != nil {
		return err
	}
	v, err := c.UploadVerification(ctx, sv)
	if err != nil {
		return fmt.Errorf("uploading the verification: %w", err)
	}
	fmt.Fprintf(stderr, "uploaded: your verification #%d of the ledger at size %d (%d of your entries), signed with key %s\n", v.Seq, v.Size, v.Entries, sv.KeyID)
	return nil
}

// cosignerKeys resolves --require-cosigner values: a vkey is pinned (and
// must not contradict a pinned one); a bare name must already be pinned.
func cosignerKeys(st audit.State, args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if strings.Contains(a, "+") {
			if _, err := st.PinWitness(a); err != nil {
				return nil, fmt.Errorf("--require-cosigner: %w", err)
			}
			out = append(out, a)
			continue
		}
		ws, err := st.Witnesses()
		if err != nil {
			return nil, err
		}
		k, ok := ws[a]
		if !ok {
			return nil, fmt.Errorf("%w: witness %q has no pinned key; pass its VKEY once (--require-cosigner VKEY) or run parley witness keygen", errUsage, a)
		}
		out = append(out, k)
	}
	return out, nil
}

func printReport(w io.Writer, rep *audit.Report) {
	for _, ch := range rep.Checks {
		mark := "ok  "
		if !ch.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %-13s %s\n", mark, ch.Name, ch.Detail)
	}
	for _, a := range rep.Agreements {
		fmt.Fprintf(w, "agreement %s: you contributed %d, the counterpart %d, released to you %d (ledger entries %d–%d)\n",
			a.ID, a.Contributed, a.Available, a.Released, a.Entries[0], a.Entries[1])
	}
	for _, out := range slices.Sorted(maps.Keys(rep.Handovers)) {
		fmt.Fprintf(w, "handovers %s: %d\n", strings.TrimPrefix(out, "handover."), rep.Handovers[out])
	}
	for _, out := range slices.Sorted(maps.Keys(rep.Matches)) {
		fmt.Fprintf(w, "matching sessions %s: %d\n", strings.TrimPrefix(out, "handover."), rep.Matches[out])
	}
	if rep.Err() == nil {
		fmt.Fprintf(w, "ledger verified at size %d (root %s); %d receipt(s), %d entries replayed\n", rep.Size, rep.Root, rep.Receipts, rep.Entries)
	}
}

// errNoLogKey is returned by commands needing a pinned log key.
var errNoLogKey = errors.New("no log key pinned for this profile; run 'parley verify' (or pass --log-key) first")
