package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
)

// API is the part of parley's management API an audit compares the ledger
// with; *client.Client implements it.
type API interface {
	Agreements(ctx context.Context) ([]client.Agreement, error)
	Balance(ctx context.Context, agreementID string) (*client.Balance, error)
}

// Opener is the part of the management API that hands out the keys opening
// ledger commitments (GET /api/v1/ledger/openings/{index});
// *client.Client implements it.
type Opener interface {
	LedgerOpening(ctx context.Context, index int64) (*client.LedgerOpening, error)
}

// Options configure Verify.
type Options struct {
	State  State
	Remote ledger.Remote
	// API, if set, is compared with the replayed ledger.
	API API
	// Party is the auditing party's id.
	Party string
	// LogKey pins the log's key explicitly; "" uses the pinned key, or on
	// first use the one FetchKey returns (trust on first use).
	LogKey   string
	FetchKey func(ctx context.Context) (string, error)
	// Cosigners are witness vkeys that must each have cosigned the checkpoint.
	Cosigners []string
	// Settle is how long to wait for a checkpoint that covers the party's
	// latest receipts and balances (the server signs every few seconds).
	Settle time.Duration
	Now    func() time.Time
}

// Check is the outcome of one named check.
type Check struct {
	Name   string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	err    error
}

// AgreementResult is one agreement's replayed standing for the party.
type AgreementResult struct {
	ID          string `json:"id"`
	Contributed int64  `json:"contributed"` // by the party, per the ledger
	Available   int64  `json:"available"`   // contributed by the counterpart
	Released    int64  `json:"released"`    // released to the party
	Entries     [2]int64
}

// Report is what Verify found.
type Report struct {
	LogKey string `json:"log_key"`
	// Pinned is set when this run pinned the key on first use.
	Pinned     bool              `json:"pinned_now"`
	Previous   int64             `json:"previous_size"` // -1 if no checkpoint was seen before
	Checkpoint ledger.Checkpoint `json:"-"`
	Size       int64             `json:"size"`
	Root       string            `json:"root"`
	Cosigned   []string          `json:"cosigned_by,omitempty"`
	Receipts   int               `json:"receipts"`
	Entries    int64             `json:"entries"`
	Mine       int64             `json:"party_entries"` // of Entries, those the party acted in or is named by
	Genesis    int               `json:"genesis_entries"`
	Agreements []AgreementResult `json:"agreements"`
	Handovers  map[string]int    `json:"handovers,omitempty"` // outcome → count
	// Matches counts the round-2 escrows of matching sessions by outcome,
	// apart from Handovers: no party proposed them as cases.
	Matches map[string]int `json:"matching_sessions,omitempty"`
	Checks  []Check        `json:"checks"`
}

// Err joins the errors of the failed checks; nil if all passed.
func (r *Report) Err() error {
	var errs []error
	for _, c := range r.Checks {
		if !c.OK {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, c.err))
		}
	}
	return errors.Join(errs...)
}

func (r *Report) pass(name, detail string) {
	r.Checks = append(r.Checks, Check{Name: name, OK: true, Detail: detail})
}
func (r *Report) fail(name string, err error) {
	r.Checks = append(r.Checks, Check{Name: name, Detail: err.Error(), err: err})
}

// Verify runs every check of `parley verify` and returns a report. A
// non-nil error is returned only when the audit could not run at all
// (local state unreadable); failed checks are in Report.Err, each wrapping
// its sentinel: ledger.ErrBadSignature, ErrRollback, ErrFork,
// ErrInconsistent, ErrTruncatedProof, ErrBadProof, ErrEntryMismatch, or
// this package's ErrKeyChanged, ErrReceipt, ErrInvariant, ErrMismatch.
func Verify(ctx context.Context, opt Options) (*Report, error) {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	rep := &Report{Previous: -1}
	vkey, err := resolveKey(ctx, opt, rep)
	if err != nil {
		rep.fail("log-key", err)
		return rep, nil
	}
	v, err := ledger.NewVerifier(vkey, opt.State.CheckpointPath())
	if err != nil {
		return nil, fmt.Errorf("local checkpoint state: %w", err)
	}
	if last, ok := v.Last(); ok {
		rep.Previous = last.Size
	}
	if err := v.RequireCosignatures(opt.Cosigners, len(opt.Cosigners)); err != nil {
		return nil, err
	}
	nv, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	receipts, err := opt.State.Receipts()
	if err != nil {
		return nil, err
	}
	rep.Receipts = len(receipts)
	deadline := now().Add(opt.Settle)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		waiting := now().Before(deadline)
		final := *rep
		final.Checks = slices.Clone(rep.Checks)
		retry := runOnce(ctx, opt, v, nv, receipts, &final, waiting, now())
		if !retry {
			*rep = final
			return rep, nil
		}
	}
}

// resolveKey returns the log key to verify with, pinning it on first use.
func resolveKey(ctx context.Context, opt Options, rep *Report) (string, error) {
	pinned, err := opt.State.LogKey()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	switch {
	case pinned != "" && opt.LogKey != "" && pinned != opt.LogKey:
		return "", fmt.Errorf("--log-key %s but %s is pinned: %w", opt.LogKey, pinned, ErrKeyChanged)
	case pinned != "":
		rep.LogKey = pinned
		rep.pass("log-key", "pinned key "+pinned)
		return pinned, nil
	case opt.LogKey != "":
		if _, err := note.NewVerifier(opt.LogKey); err != nil {
			return "", fmt.Errorf("--log-key: %w", ledger.ErrMalformed)
		}
		if err := opt.State.PinLogKey(opt.LogKey); err != nil {
			return "", err
		}
		rep.LogKey, rep.Pinned = opt.LogKey, true
		rep.pass("log-key", "pinned the given key "+opt.LogKey)
		return opt.LogKey, nil
	}
	if opt.FetchKey == nil {
		return "", fmt.Errorf("no log key pinned and none given: %w", ErrNotPinned)
	}
	k, err := opt.FetchKey(ctx)
	if err != nil {
		return "", err
	}
	if err := opt.State.PinLogKey(k); err != nil {
		return "", err
	}
	rep.LogKey, rep.Pinned = k, true
	rep.pass("log-key", "trust on first use: pinned the server's key "+k)
	return k, nil
}

// runOnce runs the checks against the current checkpoint. It returns true
// if it should be retried because the checkpoint does not yet cover what
// the party knows happened (and waiting is still allowed).
func runOnce(ctx context.Context, opt Options, v *ledger.Verifier, nv note.Verifier, receipts []Receipt, rep *Report, waiting bool, now time.Time) bool {
	// Snapshot the API first: a checkpoint fetched afterwards covers at
	// least what it reported, once the server has signed it.
	var ags []client.Agreement
	bals := map[string]*client.Balance{}
	var apiErr error
	if opt.API != nil {
		if ags, apiErr = opt.API.Agreements(ctx); apiErr == nil {
			for _, a := range ags {
				if a.Problem != "" {
					continue // broken: compare names it; it has no balance
				}
				b, err := opt.API.Balance(ctx, a.ID)
				if err != nil {
					apiErr = fmt.Errorf("balance of %s: %w", a.ID, err)
					break
				}
				bals[a.ID] = b
			}
		}
	}
	signed, err := opt.Remote.Checkpoint(ctx)
	if err != nil {
		rep.fail("checkpoint", fmt.Errorf("fetch checkpoint: %w", err))
		return false
	}
	c, err := ledger.OpenCheckpoint(signed, nv)
	if err != nil {
		rep.fail("checkpoint", err)
		return false
	}
	rep.pass("checkpoint", fmt.Sprintf("size %d root %s signed by %s", c.Size, c.Hash, nv.Name()))
	var cosigned []string
	for _, k := range opt.Cosigners {
		w, err := ledger.NewCosignatureVerifier(k)
		if err != nil {
			rep.fail("cosignatures", err)
			return false
		}
		if _, err := note.Open(signed, note.VerifierList(w)); err != nil {
			rep.fail("cosignatures", fmt.Errorf("checkpoint %d lacks a valid cosignature by witness %s: %w", c.Size, w.Name(), ledger.ErrBadSignature))
			return false
		}
		cosigned = append(cosigned, w.Name())
	}
	if len(opt.Cosigners) > 0 {
		rep.Cosigned = cosigned
		rep.pass("cosignatures", fmt.Sprintf("checkpoint %d cosigned by %v", c.Size, cosigned))
	}
	var proof tlog.TreeProof
	if last, ok := v.Last(); ok && c.Size > last.Size {
		if proof, err = opt.Remote.ConsistencyProof(ctx, last.Size, c.Size); err != nil {
			rep.fail("consistency", fmt.Errorf("fetch consistency proof %d→%d: %w", last.Size, c.Size, err))
			return false
		}
	}
	if _, err := v.Accept(signed, proof); err != nil {
		rep.fail("consistency", err)
		return false
	}
	rep.Checkpoint, rep.Size, rep.Root = c, c.Size, c.Hash.String()
	if rep.Previous >= 0 {
		rep.pass("consistency", fmt.Sprintf("size %d extends the size %d seen before", c.Size, rep.Previous))
	} else {
		rep.pass("consistency", "first checkpoint seen; saved for next time")
	}

	for _, rc := range receipts {
		if rc.Index >= c.Size && waiting {
			return true
		}
	}
	if err := checkReceipts(ctx, opt, v, c, receipts); err != nil {
		rep.fail("receipts", err)
	} else {
		rep.pass("receipts", fmt.Sprintf("%d receipt(s) included in checkpoint %d", len(receipts), c.Size))
	}

	rp := NewReplay()
	rp.Party = opt.Party
	if err := v.Replay(ctx, opt.Remote, rp.Apply); err != nil {
		name := "entries"
		if errors.Is(err, ErrInvariant) {
			name = "replay"
		}
		rep.fail(name, err)
		return false
	}
	rep.pass("entries", fmt.Sprintf("all %d entries hash to checkpoint %d", rp.Entries, c.Size))
	rep.Entries, rep.Genesis, rep.Mine = rp.Entries, rp.Genesis, rp.Mine
	rep.Handovers, rep.Matches = map[string]int{}, map[string]int{}
	for _, h := range rp.Handovers {
		out := string(h.Outcome)
		if out == "" {
			out = "open"
		}
		if h.Match != "" {
			rep.Matches[out]++
			continue
		}
		rep.Handovers[out]++
	}
	rep.Agreements = nil
	for _, a := range rp.Involving(opt.Party) {
		other := a.Counterpart(opt.Party)
		rep.Agreements = append(rep.Agreements, AgreementResult{ID: a.ID, Contributed: a.Contributed[opt.Party],
			Available: a.Contributed[other], Released: a.Released[opt.Party], Entries: [2]int64{a.FirstIndex, a.LastIndex}})
	}
	if opt.API == nil {
		return false
	}
	if apiErr != nil {
		rep.fail("api", fmt.Errorf("read the server's claims: %w", apiErr))
		return false
	}
	if err := compare(opt.Party, rp, ags, bals, now); err != nil {
		if waiting {
			return true
		}
		rep.fail("api", err)
		return false
	}
	rep.pass("api", fmt.Sprintf("%d agreement(s): balances, releases and phases match the ledger", len(ags)))
	return false
}

// checkReceipts proves each receipt and pins its leaf hash.
func checkReceipts(ctx context.Context, opt Options, v *ledger.Verifier, c ledger.Checkpoint, receipts []Receipt) error {
	var errs []error
	changed := false
	for i, rc := range receipts {
		if rc.Index >= c.Size {
			errs = append(errs, fmt.Errorf("receipt for entry %d is not covered by checkpoint size %d: %w", rc.Index, c.Size, ledger.ErrNotFound))
			continue
		}
		es, err := opt.Remote.Entries(ctx, rc.Index, rc.Index+1)
		if err != nil || len(es) == 0 {
			errs = append(errs, fmt.Errorf("receipt for entry %d: the log does not serve it (%v): %w", rc.Index, err, ledger.ErrEntryMismatch))
			continue
		}
		raw := es[0]
		leaf := tlog.RecordHash(raw)
		if rc.Hash != nil && *rc.Hash != leaf {
			errs = append(errs, fmt.Errorf("receipt for entry %d: the log now serves different bytes (leaf hash %s, first seen %s): %w", rc.Index, leaf, *rc.Hash, ErrReceipt))
			continue
		}
		if err := v.CheckReceipts(ctx, opt.Remote, []ledger.Receipt{{Index: rc.Index, Hash: leaf}}); err != nil {
			errs = append(errs, err)
			continue
		}
		e, err := ledger.DecodeEntry(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("receipt for entry %d: %w", rc.Index, err))
			continue
		}
		switch {
		case rc.Party != "" && e.Actor != rc.Party && !slices.Contains(e.Parties, rc.Party):
			err = fmt.Errorf("receipt for entry %d: the entry (%s by %q) does not concern party %s: %w", rc.Index, e.Kind, e.Actor, rc.Party, ErrReceipt)
		case rc.Kind != "" && e.Kind != rc.Kind:
			err = fmt.Errorf("receipt for entry %d: the entry is %s, want %s: %w", rc.Index, e.Kind, rc.Kind, ErrReceipt)
		case rc.Subject != "" && e.Subject != rc.Subject:
			err = fmt.Errorf("receipt for entry %d: the entry is about %s, want %s: %w", rc.Index, e.Subject, rc.Subject, ErrReceipt)
		}
		if err == nil && len(rc.Digests) > 0 {
			err = openReceipt(ctx, opt, rc, e)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if rc.Hash == nil {
			receipts[i].Hash, changed = &leaf, true
		}
	}
	if changed {
		if err := opt.State.saveReceipts(receipts); err != nil {
			errs = append(errs, fmt.Errorf("pin receipt hashes: %w", err))
		}
	}
	return errors.Join(errs...)
}

// openReceipt checks that the receipt's entry commits to the digests the
// party expects, with the key the server gives the party for that entry.
func openReceipt(ctx context.Context, opt Options, rc Receipt, e ledger.Entry) error {
	var key []byte
	if e.V == ledger.EntryVersion {
		o, ok := opt.API.(Opener)
		if !ok {
			return fmt.Errorf("receipt for entry %d: no API to fetch the entry's opening key from: %w", rc.Index, ErrReceipt)
		}
		op, err := o.LedgerOpening(ctx, rc.Index)
		if err != nil {
			return fmt.Errorf("receipt for entry %d: the server withholds the key opening your own entry (%v): %w", rc.Index, err, ErrReceipt)
		}
		if key, err = op.KeyBytes(); err != nil || key == nil {
			return fmt.Errorf("receipt for entry %d: the server's opening key is unusable (%v): %w", rc.Index, err, ErrReceipt)
		}
	}
	if err := e.Open(key, rc.Digests); err != nil {
		return fmt.Errorf("receipt for entry %d: %w: %w", rc.Index, err, ErrReceipt)
	}
	return nil
}

// compare checks what the API claims against the replay.
// stepSkew is how much later than its ledger entry a signed step may take
// effect: the server bounds signed_at to two minutes of its clock
// (exchange.MaxClockSkew), and a step never takes effect before the one
// received before it.
const stepSkew = 2*time.Minute + time.Second

// noticeRuns reports whether an agreement the API calls terminating is
// still within a notice period its documents allow: a termination takes
// effect at the later of its effective_at and its signing plus the
// agreement's termination notice. The API's termination time must be
// still ahead, no earlier than the signed effective_at, and no later than
// the termination's ledger time plus the longest notice any version sets.
func noticeRuns(ag client.Agreement, a *AgreementReplay, now time.Time) bool {
	if ag.Phase != "terminating" || ag.TerminationAt == "" {
		return false
	}
	at, err := time.Parse(time.RFC3339Nano, ag.TerminationAt)
	if err != nil || !now.Before(at) || at.Before(a.TerminationAt) {
		return false
	}
	var notice time.Duration
	for _, raw := range ag.Versions {
		d, err := agreement.ParseDocument(raw)
		if err != nil {
			return false
		}
		notice = max(notice, d.TerminationNotice)
	}
	return !at.After(a.TerminationLogged.Add(notice + stepSkew))
}

func compare(party string, rp *Replay, ags []client.Agreement, bals map[string]*client.Balance, now time.Time) error {
	var errs []error
	listed := map[string]bool{}
	for _, ag := range ags {
		listed[ag.ID] = true
		a, ok := rp.Agreements[ag.ID]
		if !ok {
			errs = append(errs, fmt.Errorf("agreement %s: the API lists it (phase %s) but the ledger has no entry for it: %w", ag.ID, ag.Phase, ErrMismatch))
			continue
		}
		if ag.Problem != "" {
			errs = append(errs, fmt.Errorf("agreement %s: the server cannot verify its recorded history (%s): %w", ag.ID, ag.Problem, ErrMismatch))
			continue
		}
		other := a.Counterpart(party)
		if b := bals[ag.ID]; b != nil {
			for _, f := range []struct {
				name      string
				api, ledg int64
			}{
				{"contributed", b.Contributed, a.Contributed[party]},
				{"available (counterpart's contributions)", b.Available, a.Contributed[other]},
				{"released to you", b.Released, a.Released[party]},
			} {
				if f.api != f.ledg {
					errs = append(errs, fmt.Errorf("agreement %s: %s is %d per the API but %d per the ledger (entries %d–%d): %w",
						ag.ID, f.name, f.api, f.ledg, a.FirstIndex, a.LastIndex, ErrMismatch))
				}
			}
		}
		phase := ag.Phase
		switch {
		case !a.Countersigned && slices.Contains([]string{"active", "suspended", "terminating", "countersigned"}, phase):
			errs = append(errs, fmt.Errorf("agreement %s: the API says %s, but the ledger records no countersignature: %w", ag.ID, phase, ErrMismatch))
		case a.TerminationAt.IsZero() && (phase == "terminated" || phase == "terminating"):
			errs = append(errs, fmt.Errorf("agreement %s: the API says %s, but the ledger records no termination: %w", ag.ID, phase, ErrMismatch))
		case !a.TerminationAt.IsZero() && !now.Before(a.TerminationAt) && phase != "terminated" && !noticeRuns(ag, a, now):
			errs = append(errs, fmt.Errorf("agreement %s: the ledger records its termination from %s, but the API says %s: %w", ag.ID, a.TerminationAt.Format(time.RFC3339), phase, ErrMismatch))
		case phase == "suspended" && len(a.SuspendedBy) == 0:
			errs = append(errs, fmt.Errorf("agreement %s: the API says suspended, but the ledger records no standing suspension: %w", ag.ID, ErrMismatch))
		}
	}
	for _, a := range rp.Involving(party) {
		if !listed[a.ID] {
			errs = append(errs, fmt.Errorf("agreement %s: the ledger records it (entries %d–%d) but the API does not list it: %w", a.ID, a.FirstIndex, a.LastIndex, ErrMismatch))
		}
	}
	return errors.Join(errs...)
}
