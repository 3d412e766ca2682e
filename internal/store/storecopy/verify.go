package storecopy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/store"
)

var timeZero time.Time // Balance over the whole history

// ErrMismatch: the target differs from the source, or its ledger does not
// verify.
var ErrMismatch = errors.New("storecopy: the copy differs from the source")

// LedgerKeySetting is the setting holding the ledger's note signing key
// (written by package server); Verify derives the verifier key from it.
const LedgerKeySetting = "ledger.note-skey"

// Checked reports what Verify compared.
type Checked struct {
	Parties, Agreements, Collections, Objects, LedgerEntries int64
	CheckpointSize                                           int64 // 0 when the log has no checkpoint
}

// Verify compares, through the store interfaces only, everything that src
// and dst expose: parties, tokens, keys, agreements with versions,
// signatures and balances, collections with access lists, every version of
// every object (with its date_added and seq), the ledger's signing and
// commitment keys and the given settings, and the
// ledger entry by entry. It then checks dst's ledger on its own: the tree
// hash recomputed from the copied hashes at the latest checkpoint must be
// the checkpoint's, and the ledger package's verifier must accept the
// checkpoint and replay every entry against it.
func Verify(ctx context.Context, src, dst store.Store, settings ...string) (Checked, error) {
	var c Checked
	mismatch := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMismatch, fmt.Sprintf(format, args...))
	}
	for _, k := range append([]string{LedgerKeySetting, store.LedgerCommitmentKeySetting}, settings...) {
		a, errA := src.Settings().Get(ctx, k)
		b, errB := dst.Settings().Get(ctx, k)
		if errors.Is(errA, store.ErrNotFound) && errors.Is(errB, store.ErrNotFound) {
			continue
		}
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			return c, mismatch("setting %q (%v, %v)", k, errA, errB)
		}
	}

	ps, err := src.Parties().List(ctx)
	if err != nil {
		return c, err
	}
	pd, err := dst.Parties().List(ctx)
	if err != nil {
		return c, err
	}
	if !slices.Equal(ps, pd) {
		return c, mismatch("parties: %d in the source, %d in the copy", len(ps), len(pd))
	}
	c.Parties = int64(len(ps))
	seenAgreement := map[string]bool{}
	for _, p := range ps {
		if err := same(ctx, "tokens of "+p.ID, src.Tokens().ListByParty, dst.Tokens().ListByParty, p.ID, tokensEqual); err != nil {
			return c, err
		}
		if err := same(ctx, "keys of "+p.ID, src.Keys().ListByParty, dst.Keys().ListByParty, p.ID, keysEqual); err != nil {
			return c, err
		}
		as, err := src.Agreements().ListByParty(ctx, p.ID)
		if err != nil {
			return c, err
		}
		ad, err := dst.Agreements().ListByParty(ctx, p.ID)
		if err != nil {
			return c, err
		}
		if !slices.Equal(as, ad) {
			return c, mismatch("agreements of %s", p.ID)
		}
		for _, a := range as {
			if seenAgreement[a.ID] {
				continue
			}
			seenAgreement[a.ID] = true
			if err := verifyAgreement(ctx, src, dst, a); err != nil {
				return c, err
			}
		}
	}
	c.Agreements = int64(len(seenAgreement))

	roots, err := src.Collections().APIRoots(ctx)
	if err != nil {
		return c, err
	}
	rootsDst, err := dst.Collections().APIRoots(ctx)
	if err != nil {
		return c, err
	}
	if !slices.Equal(roots, rootsDst) {
		return c, mismatch("API roots %v, copy has %v", roots, rootsDst)
	}
	for _, r := range roots {
		cs, err := src.Collections().List(ctx, r)
		if err != nil {
			return c, err
		}
		cd, err := dst.Collections().List(ctx, r)
		if err != nil {
			return c, err
		}
		if len(cs) != len(cd) {
			return c, mismatch("API root %s: %d collections, copy has %d", r, len(cs), len(cd))
		}
		for i := range cs {
			if !collectionsEqual(cs[i], cd[i]) {
				return c, mismatch("collection %s: %+v, copy has %+v", cs[i].ID, cs[i], cd[i])
			}
			n, err := verifyObjects(ctx, src, dst, cs[i].ID)
			if err != nil {
				return c, err
			}
			c.Objects += n
		}
		c.Collections += int64(len(cs))
	}

	if err := verifyLedger(ctx, src, dst, &c); err != nil {
		return c, err
	}
	return c, nil
}

func same[T any](ctx context.Context, what string, a, b func(context.Context, string) ([]T, error), arg string, eq func(x, y T) bool) error {
	xs, err := a(ctx, arg)
	if err != nil {
		return err
	}
	ys, err := b(ctx, arg)
	if err != nil {
		return err
	}
	if !slices.EqualFunc(xs, ys, eq) {
		return fmt.Errorf("%w: %s: %d in the source, %d in the copy or different", ErrMismatch, what, len(xs), len(ys))
	}
	return nil
}

func tokensEqual(a, b store.Token) bool {
	return a.ID == b.ID && a.PartyID == b.PartyID && a.Hash == b.Hash && a.Label == b.Label &&
		a.CreatedAt.Equal(b.CreatedAt) && a.RevokedAt.Equal(b.RevokedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.LastUsedAt.Equal(b.LastUsedAt)
}

func keysEqual(a, b store.PartyKey) bool {
	return a.KeyID == b.KeyID && a.PartyID == b.PartyID && bytes.Equal(a.Public, b.Public) && bytes.Equal(a.Rotation, b.Rotation) &&
		a.ValidFrom.Equal(b.ValidFrom) && a.ValidUntil.Equal(b.ValidUntil)
}

func collectionsEqual(a, b store.Collection) bool {
	return a.ID == b.ID && a.APIRoot == b.APIRoot && a.Title == b.Title && a.Description == b.Description &&
		a.CreatedAt.Equal(b.CreatedAt) && a.Agreement == b.Agreement && a.Contributor == b.Contributor && a.Kind == b.Kind &&
		slices.Equal(a.Readers, b.Readers) && slices.Equal(a.Writers, b.Writers)
}

func verifyAgreement(ctx context.Context, src, dst store.Store, a store.AgreementRecord) error {
	vs, err := src.Agreements().Versions(ctx, a.ID)
	if err != nil {
		return err
	}
	vd, err := dst.Agreements().Versions(ctx, a.ID)
	if err != nil {
		return err
	}
	if !slices.EqualFunc(vs, vd, func(x, y store.AgreementVersion) bool {
		return x.AgreementID == y.AgreementID && x.Version == y.Version && bytes.Equal(x.Document, y.Document) && x.Hash == y.Hash && x.CreatedAt.Equal(y.CreatedAt)
	}) {
		return fmt.Errorf("%w: versions of agreement %s", ErrMismatch, a.ID)
	}
	ss, err := src.Agreements().Signatures(ctx, a.ID)
	if err != nil {
		return err
	}
	sd, err := dst.Agreements().Signatures(ctx, a.ID)
	if err != nil {
		return err
	}
	if !slices.EqualFunc(ss, sd, func(x, y store.AgreementSignature) bool {
		return x.Seq == y.Seq && x.AgreementID == y.AgreementID && x.Version == y.Version && x.PartyID == y.PartyID &&
			x.Action == y.Action && bytes.Equal(x.Raw, y.Raw) && x.SignedAt.Equal(y.SignedAt)
	}) {
		return fmt.Errorf("%w: signatures of agreement %s", ErrMismatch, a.ID)
	}
	for _, p := range []string{a.PartyA, a.PartyB} {
		bs, err := src.Credits().Balance(ctx, a.ID, p, timeZero)
		if err != nil {
			return err
		}
		bd, err := dst.Credits().Balance(ctx, a.ID, p, timeZero)
		if err != nil {
			return err
		}
		if bs != bd {
			return fmt.Errorf("%w: balance of %s under %s: %+v, copy %+v", ErrMismatch, p, a.ID, bs, bd)
		}
		rs, err := src.Credits().Range(ctx, a.ID, p, 1, math.MaxInt64)
		if err != nil {
			return err
		}
		rd, err := dst.Credits().Range(ctx, a.ID, p, 1, math.MaxInt64)
		if err != nil {
			return err
		}
		if !slices.Equal(rs, rd) {
			return fmt.Errorf("%w: contributions of %s under %s", ErrMismatch, p, a.ID)
		}
	}
	return nil
}

// verifyObjects walks every version in date-added order on both sides.
func verifyObjects(ctx context.Context, src, dst store.Store, coll string) (int64, error) {
	q := store.ObjectQuery{Collection: coll, Versions: store.VersionFilter{All: true}, Limit: 1000}
	var n int64
	for {
		ps, err := src.Objects().Query(ctx, q)
		if err != nil {
			return n, err
		}
		pd, err := dst.Objects().Query(ctx, q)
		if err != nil {
			return n, err
		}
		if len(ps.Objects) != len(pd.Objects) || ps.More != pd.More {
			return n, fmt.Errorf("%w: collection %s after %d objects: page of %d, copy %d", ErrMismatch, coll, n, len(ps.Objects), len(pd.Objects))
		}
		for i, a := range ps.Objects {
			b := pd.Objects[i]
			if a.ID != b.ID || a.Type != b.Type || a.SpecVersion != b.SpecVersion || !a.Version.Equal(b.Version) ||
				!a.DateAdded.Equal(b.DateAdded) || a.Seq != b.Seq || !bytes.Equal(a.Raw, b.Raw) {
				return n, fmt.Errorf("%w: collection %s object %d: %s@%v seq %d, copy %s@%v seq %d", ErrMismatch, coll, n+int64(i), a.ID, a.Version, a.Seq, b.ID, b.Version, b.Seq)
			}
		}
		n += int64(len(ps.Objects))
		// The first and last flags must have survived too.
		if !ps.More {
			break
		}
		last := ps.Objects[len(ps.Objects)-1]
		q.After = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
	}
	for _, f := range []store.VersionFilter{{First: true}, {Last: true}} {
		a, err := src.Objects().Query(ctx, store.ObjectQuery{Collection: coll, Versions: f, Limit: math.MaxInt32})
		if err != nil {
			return n, err
		}
		b, err := dst.Objects().Query(ctx, store.ObjectQuery{Collection: coll, Versions: f, Limit: math.MaxInt32})
		if err != nil {
			return n, err
		}
		if !slices.EqualFunc(a.Objects, b.Objects, func(x, y store.Object) bool { return x.Seq == y.Seq }) {
			return n, fmt.Errorf("%w: collection %s: versions selected by %+v differ", ErrMismatch, coll, f)
		}
	}
	return n, nil
}

func verifyLedger(ctx context.Context, src, dst store.Store, c *Checked) error {
	ls, ld := src.Ledger(), dst.Ledger()
	n, err := ls.Size(ctx)
	if err != nil {
		return err
	}
	if m, err := ld.Size(ctx); err != nil || m != n {
		return fmt.Errorf("%w: ledger size %d, copy %d (%v)", ErrMismatch, n, m, err)
	}
	c.LedgerEntries = n
	for start := int64(0); start < n; start += 1000 {
		end := min(start+1000, n)
		es, err := ls.ReadEntries(ctx, start, end)
		if err != nil {
			return err
		}
		ed, err := ld.ReadEntries(ctx, start, end)
		if err != nil {
			return err
		}
		if !slices.EqualFunc(es, ed, bytes.Equal) {
			return fmt.Errorf("%w: ledger entries [%d, %d)", ErrMismatch, start, end)
		}
	}
	size, note, err := ls.LatestCheckpoint(ctx)
	if errors.Is(err, ledger.ErrNotFound) {
		if _, _, err := ld.LatestCheckpoint(ctx); !errors.Is(err, ledger.ErrNotFound) {
			return fmt.Errorf("%w: the copy has a checkpoint the source has not (%v)", ErrMismatch, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	sizeD, noteD, err := ld.LatestCheckpoint(ctx)
	if err != nil || sizeD != size || !bytes.Equal(note, noteD) {
		return fmt.Errorf("%w: latest checkpoint %d, copy %d (%v)", ErrMismatch, size, sizeD, err)
	}
	cs, err := ls.Cosignatures(ctx, size)
	if err != nil {
		return err
	}
	cd, err := ld.Cosignatures(ctx, size)
	if err != nil || !slices.EqualFunc(cs, cd, bytes.Equal) {
		return fmt.Errorf("%w: cosignatures of checkpoint %d (%v)", ErrMismatch, size, err)
	}
	c.CheckpointSize = size

	// On the copy alone: the stored hashes rebuild the checkpoint's root...
	skey, err := dst.Settings().Get(ctx, LedgerKeySetting)
	if err != nil {
		return fmt.Errorf("the copy's ledger key: %w", err)
	}
	signer, err := ledger.NewSigner(string(skey))
	if err != nil {
		return fmt.Errorf("the copy's ledger key: %w", err)
	}
	cp, err := ledger.OpenCheckpoint(noteD, signer.Verifier())
	if err != nil {
		return fmt.Errorf("%w: the copy's latest checkpoint: %w", ErrMismatch, err)
	}
	root, err := tlog.TreeHash(cp.Size, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return ld.ReadHashes(ctx, idx) }))
	if err != nil {
		return fmt.Errorf("%w: tree hash at %d from the copied hashes: %w", ErrMismatch, cp.Size, err)
	}
	if root != cp.Hash {
		return fmt.Errorf("%w: the copied hashes give root %v at %d, the checkpoint says %v", ErrMismatch, root, cp.Size, cp.Hash)
	}
	// ...and the ledger's own verifier accepts it and replays every entry.
	v, err := ledger.NewVerifier(signer.VerifierKey(), "")
	if err != nil {
		return err
	}
	remote := ledger.NewLocalRemote(ld)
	if _, err := v.Update(ctx, remote); err != nil {
		return fmt.Errorf("%w: verifier: %w", ErrMismatch, err)
	}
	if err := v.Replay(ctx, remote, func(int64, []byte, ledger.Entry) error { return nil }); err != nil {
		return fmt.Errorf("%w: replaying the copied ledger: %w", ErrMismatch, err)
	}
	return nil
}
