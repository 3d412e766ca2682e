package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/fault"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// MaxClockSkew bounds how far a signature's signed_at (and a key
// rotation's at) may be from the server's clock. Without it a stolen,
// rotated-out key could backdate a statement to when it was still valid,
// and a step dated ahead would take effect late. Steps count in the order
// the server receives them (agreement.State), so a signer's clock can
// delay its own step by at most this much, never refuse the other side's.
const MaxClockSkew = 2 * time.Minute

// ErrConflict: the request contradicts the current state (a key already
// registered, a step the lifecycle does not allow now).
var ErrConflict = fault.Generic(fault.Conflict, "exchange: conflict")

// ErrBrokenAgreement: an agreement's stored history no longer verifies (a
// document, signature or key it depends on fails its checks), so its
// state cannot be computed. It concerns that agreement alone: lists show
// it as broken with the reason, and every other view of the party works.
// It is a Conflict with the code "agreement_broken": the request was fine,
// the stored agreement is not.
var ErrBrokenAgreement = fault.Refine(fault.Tagged(fault.Conflict, "exchange", "the agreement's recorded history does not verify"), nil, "agreement_broken")

// RegisterKeys records a party's first public keys. Later keys come only
// through RotateKeys, signed by the key they replace.
func (s *Service) RegisterKeys(ctx context.Context, p party.Principal, pub agreement.PublicKeys) error {
	if err := pub.Validate(); err != nil {
		return fault.Errorf("%w: %v", ErrInvalid, err)
	}
	// The sealing key must be bound to the signing key, or whoever
	// registers first could make others seal to a key it holds.
	if err := agreement.VerifySealingKey(pub); err != nil {
		return fault.Errorf("%w: %v", ErrInvalid, err)
	}
	raw, err := json.Marshal(pub)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx store.Handle) error {
		have, err := tx.Keys().ListByParty(ctx, p.PartyID)
		if err != nil {
			return err
		}
		if len(have) > 0 {
			return fault.Errorf("%w: you already registered keys; rotate them with a statement signed by the current key", ErrConflict)
		}
		err = tx.Keys().Add(ctx, store.PartyKey{KeyID: pub.KeyID, PartyID: p.PartyID, Public: raw, ValidFrom: s.now()})
		if errors.Is(err, store.ErrConflict) {
			return fault.Errorf("%w: key %s is already registered", ErrConflict, pub.KeyID)
		}
		return err
	})
}

// RotateKeys replaces a party's current keys with rot.NewKeys, from now on.
// rot must be signed by the current key.
func (s *Service) RotateKeys(ctx context.Context, p party.Principal, rot agreement.KeyRotation) error {
	if rot.PartyID != p.PartyID {
		return fault.Errorf("%w: the rotation names party %s, not you", ErrInvalid, rot.PartyID)
	}
	if d := s.now().Sub(rot.At); d > MaxClockSkew || d < -MaxClockSkew {
		return fault.Errorf("%w: the rotation's time %s is more than %s from the server's clock", ErrInvalid, rot.At.Format(time.RFC3339), MaxClockSkew)
	}
	if err := agreement.VerifySealingKey(rot.NewKeys); err != nil {
		return fault.Errorf("%w: new keys: %v", ErrInvalid, err)
	}
	raw, err := json.Marshal(rot)
	if err != nil {
		return err
	}
	pubRaw, err := json.Marshal(rot.NewKeys)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx store.Handle) error {
		cur, err := tx.Keys().Get(ctx, rot.OldKeyID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (cur.PartyID != p.PartyID || !cur.ValidUntil.IsZero())) {
			return fault.Errorf("%w: %s is not your current key", ErrInvalid, rot.OldKeyID)
		}
		if err != nil {
			return err
		}
		var old agreement.PublicKeys
		if err := json.Unmarshal(cur.Public, &old); err != nil {
			return fault.Errorf("stored key %s: %w", cur.KeyID, err)
		}
		if err := agreement.VerifyRotation(old, rot); err != nil {
			return fault.Errorf("%w: %v", ErrInvalid, err)
		}
		// A key stops verifying at the rotation's time, so a rotation
		// dated at or before a signature already made with the key would
		// turn that signature invalid and break every agreement holding it.
		last, err := lastSignature(ctx, tx, p.PartyID)
		if err != nil {
			return err
		}
		if last.AgreementID != "" && !rot.At.After(last.SignedAt) {
			return fault.Errorf("%w: the rotation takes effect at %s, but key %s already signed %s of %s at %s; a rotation must come after every signature made with the key it retires — sign the rotation again with the current time",
				ErrConflict, rot.At.UTC().Format(time.RFC3339Nano), rot.OldKeyID, last.Action, last.AgreementID, last.SignedAt.UTC().Format(time.RFC3339Nano))
		}
		if rot.At.Before(cur.ValidFrom) {
			return fault.Errorf("%w: the rotation predates the current key", ErrInvalid)
		}
		if err := tx.Keys().Retire(ctx, cur.KeyID, rot.At); err != nil {
			return err
		}
		err = tx.Keys().Add(ctx, store.PartyKey{KeyID: rot.NewKeys.KeyID, PartyID: p.PartyID, Public: pubRaw, ValidFrom: rot.At, Rotation: raw})
		if errors.Is(err, store.ErrConflict) {
			return fault.Errorf("%w: key %s is already registered", ErrConflict, rot.NewKeys.KeyID)
		}
		return err
	})
}

// lastSignature returns the latest-dated agreement signature partyID has
// made (zero when none), with signed_at exactly as signed: the stored
// column is rounded, the signature's own time is what a key must cover.
func lastSignature(ctx context.Context, x store.Handle, partyID string) (agreement.Signature, error) {
	var last agreement.Signature
	recs, err := x.Agreements().ListByParty(ctx, partyID)
	if err != nil {
		return last, err
	}
	for _, r := range recs {
		sigs, err := x.Agreements().Signatures(ctx, r.ID)
		if err != nil {
			return last, err
		}
		for _, sg := range sigs {
			if sg.PartyID != partyID {
				continue
			}
			sig, err := agreement.ParseSignature(sg.Raw)
			if err != nil {
				return last, fault.Errorf("%w: %s signature %d: %w", ErrBrokenAgreement, r.ID, sg.Seq, err)
			}
			if last.AgreementID == "" || sig.SignedAt.After(last.SignedAt) {
				last = sig
			}
		}
	}
	return last, nil
}

// checkCurrentKey refuses a new signature unless keyID is p's current key:
// once a rotation is recorded, the retired key signs nothing more, even
// dated before the rotation took effect.
func checkCurrentKey(ctx context.Context, x store.Handle, p party.Principal, keyID string) error {
	k, err := x.Keys().Get(ctx, keyID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && k.PartyID != p.PartyID) {
		return fault.Errorf("%w: key %s is not one of your registered keys", ErrInvalid, keyID)
	}
	if err != nil {
		return err
	}
	if !k.ValidUntil.IsZero() {
		return fault.Errorf("%w: key %s was rotated out at %s; sign with your current key", ErrInvalid, keyID, k.ValidUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// PartyKeys returns a party's registered keys, oldest first.
func (s *Service) PartyKeys(ctx context.Context, partyID string) ([]store.PartyKey, error) {
	return s.st.Keys().ListByParty(ctx, partyID)
}

// keyResolver resolves key ids from the stored keys of some parties.
type keyResolver map[string]resolvedKey

type resolvedKey struct {
	row store.PartyKey
	pub agreement.PublicKeys
}

func loadKeys(ctx context.Context, x store.Handle, partyIDs ...string) (keyResolver, error) {
	r := keyResolver{}
	for _, id := range partyIDs {
		ks, err := x.Keys().ListByParty(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			var pub agreement.PublicKeys
			if err := json.Unmarshal(k.Public, &pub); err != nil {
				return nil, fault.Errorf("stored key %s: %w", k.KeyID, err)
			}
			r[k.KeyID] = resolvedKey{k, pub}
		}
	}
	return r, nil
}

// ResolveKey implements agreement.KeyResolver.
func (r keyResolver) ResolveKey(keyID string, at time.Time) (string, agreement.PublicKeys, error) {
	k, ok := r[keyID]
	switch {
	case !ok:
		return "", agreement.PublicKeys{}, fault.Errorf("%w: %q is not registered", agreement.ErrUnknownKey, keyID)
	case at.Before(k.row.ValidFrom):
		return "", agreement.PublicKeys{}, fault.Errorf("%w: %s was not valid before %s", agreement.ErrUnknownKey, keyID, k.row.ValidFrom.Format(time.RFC3339))
	case !k.row.ValidUntil.IsZero() && !at.Before(k.row.ValidUntil):
		return "", agreement.PublicKeys{}, fault.Errorf("%w: %s was rotated out at %s", agreement.ErrKeyRotated, keyID, k.row.ValidUntil.Format(time.RFC3339))
	}
	return k.row.PartyID, k.pub, nil
}

// Agreement is an agreement as stored, with its computed status.
type Agreement struct {
	Record     store.AgreementRecord
	Versions   []*agreement.Document
	Signatures []agreement.Signature
	Status     agreement.Status
	// Broken is set (wrapping ErrBrokenAgreement) only in Agreements'
	// list, for an agreement whose history no longer verifies; Record is
	// then all that is known, and Status is zero.
	Broken error
}

// Awaiting returns the version awaiting a countersignature — the latest
// stored version, unless it has one — or nil.
func (a Agreement) Awaiting() *agreement.Document {
	var latest *agreement.Document
	for _, v := range a.Versions {
		if latest == nil || v.Version > latest.Version {
			latest = v
		}
	}
	if latest == nil {
		return nil
	}
	for _, sg := range a.Signatures {
		if sg.Action == agreement.ActionCountersign && sg.Version == latest.Version {
			return nil
		}
	}
	return latest
}

// Counterpart returns the other party.
func (a Agreement) Counterpart(partyID string) string {
	if a.Record.PartyA == partyID {
		return a.Record.PartyB
	}
	return a.Record.PartyA
}

// statusCache keeps verified statuses keyed by a digest of the agreement's
// history, so a request does not verify every signature again; any new
// signature or version changes the key.
type statusCache struct {
	mu sync.Mutex
	m  map[string]cachedStatus
}

type cachedStatus struct {
	history [32]byte // digest of the versions' hashes and the signatures
	a       Agreement
	// lastSigned is the latest signed_at in the history: the cached
	// status holds every signature only from then on.
	lastSigned time.Time
}

// loadAgreement reads an agreement and computes its status at now.
func (s *Service) loadAgreement(ctx context.Context, x store.Handle, id string, now time.Time) (Agreement, error) {
	rec, err := x.Agreements().Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Agreement{}, ErrNotFound
	}
	if err != nil {
		return Agreement{}, err
	}
	vs, err := x.Agreements().Versions(ctx, id)
	if err != nil {
		return Agreement{}, err
	}
	sigs, err := x.Agreements().Signatures(ctx, id)
	if err != nil {
		return Agreement{}, err
	}
	// The cache is keyed by a digest of the whole stored history, not its
	// length: a status computed inside a transaction that then rolled back
	// must never stand in for a different history of the same length.
	hist := sha256.New()
	for _, v := range vs {
		hist.Write(v.Hash[:])
	}
	for _, sg := range sigs {
		fmt.Fprintf(hist, "%d:", len(sg.Raw))
		hist.Write(sg.Raw)
	}
	var key [32]byte
	hist.Sum(key[:0])
	s.cache.mu.Lock()
	c, ok := s.cache.m[id]
	s.cache.mu.Unlock()
	if ok && c.history == key && !now.Before(c.lastSigned) {
		// Same history, every signature verified already: only the time
		// moves, and Status.At needs no key.
		a := c.a
		a.Status = a.Status.At(now)
		return a, nil
	}
	a := Agreement{Record: rec}
	for _, v := range vs {
		d, err := agreement.ParseDocument(v.Document)
		if err != nil {
			return Agreement{}, fault.Errorf("%w: %s version %d: %w", ErrBrokenAgreement, id, v.Version, err)
		}
		a.Versions = append(a.Versions, d)
	}
	for _, sg := range sigs {
		sig, err := agreement.ParseSignature(sg.Raw)
		if err != nil {
			return Agreement{}, fault.Errorf("%w: %s signature %d: %w", ErrBrokenAgreement, id, sg.Seq, err)
		}
		a.Signatures = append(a.Signatures, sig)
	}
	keys, err := loadKeys(ctx, x, rec.PartyA, rec.PartyB)
	if err != nil {
		return Agreement{}, err
	}
	a.Status, err = agreement.Current(a.Versions, a.Signatures, keys, now)
	if err != nil {
		return Agreement{}, fault.Errorf("%w: %s: %w", ErrBrokenAgreement, id, err)
	}
	s.cache.mu.Lock()
	if s.cache.m == nil {
		s.cache.m = map[string]cachedStatus{}
	}
	var last time.Time
	for _, sg := range a.Signatures {
		if sg.SignedAt.After(last) {
			last = sg.SignedAt
		}
	}
	if !now.Before(last) {
		s.cache.m[id] = cachedStatus{key, a, last}
	}
	s.cache.mu.Unlock()
	return a, nil
}

// Agreement returns an agreement the caller is a party to; ErrNotFound
// otherwise.
func (s *Service) Agreement(ctx context.Context, p party.Principal, id string) (Agreement, error) {
	// Membership first: whether a stranger's agreement is broken is none
	// of the caller's business.
	rec, err := s.st.Agreements().Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.PartyA != p.PartyID && rec.PartyB != p.PartyID) {
		return Agreement{}, ErrNotFound
	}
	if err != nil {
		return Agreement{}, err
	}
	a, err := s.loadAgreement(ctx, s.st, id, s.now())
	if err != nil {
		return Agreement{}, err
	}
	if a.Record.PartyA != p.PartyID && a.Record.PartyB != p.PartyID {
		return Agreement{}, ErrNotFound
	}
	return a, nil
}

// lockedAgreement takes the agreement's row lock in tx (held until tx
// ends, so nothing about the agreement changes meanwhile) and returns the
// agreement as p sees it: ErrNotFound when it does not exist or p is not a
// party to it. Handovers, requests and matching act under it. It reads
// through tx too: a transaction that waited for another connection while
// holding the lock would deadlock against writers queued on it. Unless
// acrossNodes, an agreement between two nodes is refused with
// ErrNotAcrossNodes (what acts under it is not built across nodes).
func (s *Service) lockedAgreement(ctx context.Context, tx store.Handle, p party.Principal, id string, acrossNodes bool) (Agreement, error) {
	if err := tx.Agreements().Lock(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Agreement{}, ErrNotFound
		}
		return Agreement{}, err
	}
	// Membership before verification, as in Agreement: a stranger learns
	// nothing of whether the agreement is broken.
	rec, err := tx.Agreements().Get(ctx, id)
	if err != nil {
		return Agreement{}, err
	}
	if rec.PartyA != p.PartyID && rec.PartyB != p.PartyID {
		return Agreement{}, ErrNotFound
	}
	a, err := s.loadAgreement(ctx, tx, id, s.now())
	if err == nil && !acrossNodes && a.Status.Document != nil && a.Status.Document.CrossNode() {
		return Agreement{}, fault.Errorf("%w: this step is not built for an agreement between two nodes yet (docs/federation.md)", ErrNotAcrossNodes)
	}
	return a, err
}

// lockedStatement takes agreement id's lock in tx, reads the agreement as
// p sees it (as lockedAgreement), and checks a statement one of its
// parties signed: verify gets the agreement and both parties' registered
// keys. Contests,
// their withdrawals and report signatures are filed this way; acrossNodes
// as for lockedAgreement (both act across nodes).
func (s *Service) lockedStatement(ctx context.Context, tx store.Handle, p party.Principal, id string, acrossNodes bool, verify func(Agreement, agreement.KeyResolver) error) (Agreement, error) {
	a, err := s.lockedAgreement(ctx, tx, p, id, acrossNodes)
	if err != nil {
		return Agreement{}, err
	}
	keys, err := loadKeys(ctx, tx, a.Record.PartyA, a.Record.PartyB)
	if err != nil {
		return Agreement{}, err
	}
	if err := verify(a, keys); err != nil {
		return Agreement{}, err
	}
	return a, nil
}

// Agreements lists the caller's agreements, newest first.
func (s *Service) Agreements(ctx context.Context, p party.Principal) ([]Agreement, error) {
	recs, err := s.st.Agreements().ListByParty(ctx, p.PartyID)
	if err != nil {
		return nil, err
	}
	out := make([]Agreement, 0, len(recs))
	for _, r := range recs {
		a, err := s.loadAgreement(ctx, s.st, r.ID, s.now())
		if errors.Is(err, ErrBrokenAgreement) {
			// One agreement that no longer verifies must not hide the
			// others: it is listed as broken, with the reason.
			a, err = Agreement{Record: r, Broken: err}, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (s *Service) checkSigner(p party.Principal, sig agreement.Signature) error {
	if sig.PartyID != p.PartyID {
		return fault.Errorf("%w: the signature is by %s; you can only submit your own signatures", ErrInvalid, sig.PartyID)
	}
	if d := s.now().Sub(sig.SignedAt); d > MaxClockSkew || d < -MaxClockSkew {
		return fault.Errorf("%w: signed_at %s is more than %s from the server's clock; check your clock and sign again", ErrInvalid, sig.SignedAt.Format(time.RFC3339), MaxClockSkew)
	}
	return nil
}

// checkIdentities refuses a document unless every party it names is in the
// directory under exactly that name and with exactly that key id as its
// current key. With the lifecycle's rule that each party signs with the
// key the document names for it, no document can put another party's
// name or key beside the signer's id. A party of a peer node (federation.go)
// is checked against what that peer said of it instead.
func (s *Service) checkIdentities(ctx context.Context, x store.Handle, doc *agreement.Document) error {
	for i, pt := range doc.Parties {
		rec, err := x.Parties().Get(ctx, pt.PartyID)
		if errors.Is(err, store.ErrNotFound) {
			return fault.Errorf("%w: parties[%d]: party %s does not exist", ErrInvalid, i, pt.PartyID)
		}
		if err != nil {
			return err
		}
		name, err := s.checkNode(ctx, x, doc, i, rec)
		if err != nil {
			return err
		}
		if pt.Name != name {
			return fault.Errorf("%w: %w: parties[%d].name is %q, but %s is registered as %q", ErrInvalid, agreement.ErrIdentityMismatch, i, pt.Name, pt.PartyID, name)
		}
		k, err := x.Keys().Get(ctx, pt.KeyID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && k.PartyID != pt.PartyID) {
			return fault.Errorf("%w: %w: parties[%d].key_id %s is not a key of %q (%s)", ErrInvalid, agreement.ErrIdentityMismatch, i, pt.KeyID, name, pt.PartyID)
		}
		if err != nil {
			return err
		}
		if !k.ValidUntil.IsZero() {
			return fault.Errorf("%w: %w: parties[%d].key_id %s is no longer %q's current key (rotated out at %s); name its current key", ErrInvalid, agreement.ErrIdentityMismatch, i, pt.KeyID, name, k.ValidUntil.UTC().Format(time.RFC3339))
		}
	}
	return s.checkEscrowNode(ctx, x, doc)
}

// Propose stores a new agreement: version 1 and the proposer's signature.
func (s *Service) Propose(ctx context.Context, p party.Principal, raw []byte, sig agreement.Signature) (Agreement, int64, error) {
	doc, err := agreement.ParseDocument(raw)
	if err != nil {
		return Agreement{}, 0, err
	}
	if err := s.checkSigner(p, sig); err != nil {
		return Agreement{}, 0, err
	}
	if sig.Action != agreement.ActionPropose {
		return Agreement{}, 0, fault.Errorf("%w: a new agreement needs a propose signature, not %s", ErrInvalid, sig.Action)
	}
	if _, _, err := doc.Party(p.PartyID); err != nil {
		return Agreement{}, 0, fault.Errorf("%w: you are not a party to this document", ErrInvalid)
	}
	var idx int64
	var out Agreement
	err = s.st.Update(ctx, func(tx store.Handle) error {
		if err := checkCurrentKey(ctx, tx, p, sig.KeyID); err != nil {
			return err
		}
		out, idx, err = s.proposeIn(ctx, tx, doc, sig, true)
		return err
	})
	return out, idx, err
}

// proposeIn stores a new agreement in tx: version 1 and its proposer's
// signature, which local says was made on this node (and so is owed to the
// counterpart's node when that is another) rather than relayed by a peer.
func (s *Service) proposeIn(ctx context.Context, tx store.Handle, doc *agreement.Document, sig agreement.Signature, local bool) (Agreement, int64, error) {
	other, err := doc.Counterpart(sig.PartyID)
	if err != nil {
		return Agreement{}, 0, err
	}
	if _, err := tx.Parties().Get(ctx, other.PartyID); errors.Is(err, store.ErrNotFound) {
		return Agreement{}, 0, fault.Errorf("%w: party %s does not exist", ErrInvalid, other.PartyID)
	} else if err != nil {
		return Agreement{}, 0, err
	}
	if err := s.checkIdentities(ctx, tx, doc); err != nil {
		return Agreement{}, 0, err
	}
	keys, err := loadKeys(ctx, tx, sig.PartyID, other.PartyID)
	if err != nil {
		return Agreement{}, 0, err
	}
	if err := agreement.CheckNext([]*agreement.Document{doc}, nil, keys, sig); err != nil {
		return Agreement{}, 0, err
	}
	now := s.now()
	if err := tx.Agreements().Create(ctx, store.AgreementRecord{ID: doc.ID, PartyA: sig.PartyID, PartyB: other.PartyID, CreatedAt: now}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Agreement{}, 0, fault.Errorf("%w: agreement %s exists; amend it instead", ErrConflict, doc.ID)
		}
		return Agreement{}, 0, err
	}
	if err := tx.Agreements().AddVersion(ctx, store.AgreementVersion{AgreementID: doc.ID, Version: doc.Version, Document: doc.Canonical(), Hash: doc.Hash(), CreatedAt: now}); err != nil {
		return Agreement{}, 0, err
	}
	idx, err := s.addSignature(ctx, tx, doc, sig, ledger.KindAgreementProposed)
	if err != nil {
		return Agreement{}, 0, err
	}
	if local && doc.CrossNode() {
		if err := s.enqueueStep(ctx, tx, doc, doc, sig); err != nil {
			return Agreement{}, 0, err
		}
	}
	out, err := s.loadAgreement(ctx, tx, doc.ID, now)
	return out, idx, err
}

// Amend proposes a new version of an agreement, signed by the caller.
func (s *Service) Amend(ctx context.Context, p party.Principal, id string, raw []byte, sig agreement.Signature) (Agreement, int64, error) {
	doc, err := agreement.ParseDocument(raw)
	if err != nil {
		return Agreement{}, 0, err
	}
	if doc.ID != id {
		return Agreement{}, 0, fault.Errorf("%w: the document is for %s, not %s", ErrInvalid, doc.ID, id)
	}
	if err := s.checkSigner(p, sig); err != nil {
		return Agreement{}, 0, err
	}
	if sig.Action != agreement.ActionAmend {
		return Agreement{}, 0, fault.Errorf("%w: a new version needs an amend signature, not %s", ErrInvalid, sig.Action)
	}
	return s.step(ctx, p, id, doc, sig)
}

// stepKinds is the ledger kind of each signed step that carries no document.
var stepKinds = map[agreement.Action]ledger.Kind{
	agreement.ActionCountersign: ledger.KindAgreementSigned,
	agreement.ActionSuspend:     ledger.KindAgreementSuspended,
	agreement.ActionResume:      ledger.KindAgreementSigned,
	agreement.ActionTerminate:   ledger.KindAgreementTerminated,
}

// Sign records a countersignature, suspension, resumption or termination.
func (s *Service) Sign(ctx context.Context, p party.Principal, id string, sig agreement.Signature) (Agreement, int64, error) {
	if err := s.checkSigner(p, sig); err != nil {
		return Agreement{}, 0, err
	}
	if stepKinds[sig.Action] == "" {
		return Agreement{}, 0, fault.Errorf("%w: action %q here; propose and amend carry a document", ErrInvalid, sig.Action)
	}
	if sig.AgreementID != id {
		return Agreement{}, 0, fault.Errorf("%w: the signature is for %s, not %s", ErrInvalid, sig.AgreementID, id)
	}
	return s.step(ctx, p, id, nil, sig)
}

// step applies one signed lifecycle step (with a new document for
// amendments) under the agreement's lock.
func (s *Service) step(ctx context.Context, p party.Principal, id string, doc *agreement.Document, sig agreement.Signature) (Agreement, int64, error) {
	var idx int64
	var out Agreement
	err := s.st.Update(ctx, func(tx store.Handle) error {
		var err error
		out, idx, err = s.stepIn(ctx, tx, id, doc, sig, func() error { return checkCurrentKey(ctx, tx, p, sig.KeyID) })
		return err
	})
	return out, idx, err
}

// stepIn applies one signed step in tx. local, when not nil, is the check
// of a step made on this node (that the signer's key is its current one),
// and such a step is owed to the counterpart's node when that is another;
// nil stands for a step a peer relayed.
func (s *Service) stepIn(ctx context.Context, tx store.Handle, id string, doc *agreement.Document, sig agreement.Signature, local func() error) (Agreement, int64, error) {
	kind := ledger.KindAgreementAmended
	if doc == nil {
		kind = stepKinds[sig.Action]
	}
	if err := tx.Agreements().Lock(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Agreement{}, 0, ErrNotFound
		}
		return Agreement{}, 0, err
	}
	now := s.now()
	cur, err := s.loadAgreement(ctx, tx, id, now)
	if err != nil {
		return Agreement{}, 0, err
	}
	if cur.Record.PartyA != sig.PartyID && cur.Record.PartyB != sig.PartyID {
		return Agreement{}, 0, ErrNotFound
	}
	if local != nil {
		if err := local(); err != nil {
			return Agreement{}, 0, err
		}
	}
	versions := cur.Versions
	if doc != nil {
		if err := sameNodes(cur.Versions[0], doc); err != nil {
			return Agreement{}, 0, err
		}
		if err := s.checkIdentities(ctx, tx, doc); err != nil {
			return Agreement{}, 0, err
		}
		versions = append(append([]*agreement.Document(nil), versions...), doc)
	}
	if sig.Action == agreement.ActionCountersign {
		if err := checkReviewed(cur, sig); err != nil {
			return Agreement{}, 0, err
		}
	}
	keys, err := loadKeys(ctx, tx, cur.Record.PartyA, cur.Record.PartyB)
	if err != nil {
		return Agreement{}, 0, err
	}
	if err := agreement.CheckNext(versions, cur.Signatures, keys, sig); err != nil {
		return Agreement{}, 0, err
	}
	signedDoc := doc
	if doc != nil {
		if err := tx.Agreements().AddVersion(ctx, store.AgreementVersion{AgreementID: id, Version: doc.Version, Document: doc.Canonical(), Hash: doc.Hash(), CreatedAt: now}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return Agreement{}, 0, fault.Errorf("%w: version %d exists", ErrConflict, doc.Version)
			}
			return Agreement{}, 0, err
		}
	} else {
		for _, v := range cur.Versions {
			if v.Version == sig.Version {
				signedDoc = v
			}
		}
	}
	idx, err := s.addSignature(ctx, tx, signedDoc, sig, kind)
	if err != nil {
		return Agreement{}, 0, err
	}
	if local != nil && signedDoc.CrossNode() {
		if err := s.enqueueStep(ctx, tx, signedDoc, doc, sig); err != nil {
			return Agreement{}, 0, err
		}
	}
	out, err := s.loadAgreement(ctx, tx, id, now)
	if err != nil {
		return Agreement{}, 0, err
	}
	if sig.Action == agreement.ActionCountersign {
		// Across nodes too (docs/federation.md): the peer's party's
		// collection here is written only by this node's puller
		// (feeds.go), which the cursor registered here sets going.
		if err := s.ensureCollections(ctx, tx, out); err != nil {
			return Agreement{}, 0, err
		}
		if out.Status.Document.CrossNode() {
			if err := s.registerFeeds(ctx, tx, out); err != nil {
				return Agreement{}, 0, err
			}
		}
	}
	if out.Status.InForce(now) {
		// New terms or a lifted suspension may release more at once.
		if err := s.release(ctx, tx, out, now); err != nil {
			return Agreement{}, 0, err
		}
	}
	return out, idx, nil
}

// checkReviewed refuses a countersignature unless it names exactly the
// version awaiting countersignature and that version's document hash: a
// party signs the terms it reviewed, and if the proposer amended them in
// between, it is told which version to review instead.
func checkReviewed(cur Agreement, sig agreement.Signature) error {
	awaiting := cur.Awaiting()
	if awaiting == nil {
		return nil // nothing awaits a countersignature; the lifecycle says why
	}
	h := awaiting.Hash()
	want := hex.EncodeToString(h[:])
	if sig.Version != awaiting.Version || sig.DocumentHash != want {
		return fault.Errorf("%w: your countersignature names version %d (document %s), but the version awaiting countersignature is %d (document %s); review version %d and sign it if you agree",
			ErrConflict, sig.Version, sig.DocumentHash, awaiting.Version, want, awaiting.Version)
	}
	return nil
}

// addSignature stores a verified signature and its ledger entry.
func (s *Service) addSignature(ctx context.Context, tx store.Handle, doc *agreement.Document, sig agreement.Signature, kind ledger.Kind) (int64, error) {
	raw, err := json.Marshal(sig)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Agreements().AddSignature(ctx, store.AgreementSignature{AgreementID: sig.AgreementID, Version: sig.Version,
		PartyID: sig.PartyID, Action: string(sig.Action), Raw: raw, SignedAt: sig.SignedAt}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return 0, fault.Errorf("%w: this signature is already recorded", ErrConflict)
		}
		return 0, err
	}
	h := doc.Hash()
	sh := sha256.Sum256(raw)
	attrs := map[string]string{"action": string(sig.Action), "version": strconv.Itoa(sig.Version), "key_id": sig.KeyID}
	if !sig.EffectiveAt.IsZero() {
		attrs["effective_at"] = sig.EffectiveAt.UTC().Format(time.RFC3339Nano)
	}
	return s.record(ctx, tx, ledger.Entry{Kind: kind, Actor: sig.PartyID, Agreement: sig.AgreementID, Subject: sig.AgreementID,
		Time: s.now(), Parties: []string{doc.Parties[0].PartyID, doc.Parties[1].PartyID}, Attrs: attrs,
		Digests: map[string]string{"document": "sha256:" + hex.EncodeToString(h[:]), "signature": "sha256:" + hex.EncodeToString(sh[:])}})
}

// ensureCollections creates an agreement's two contribution collections
// when it is first countersigned; its API root is the agreement id.
func (s *Service) ensureCollections(ctx context.Context, tx store.Handle, a Agreement) error {
	have, err := tx.Collections().List(ctx, a.Record.ID)
	if err != nil {
		return err
	}
	if len(have) > 0 {
		return nil
	}
	for _, pid := range []string{a.Record.PartyA, a.Record.PartyB} {
		pt, err := tx.Parties().Get(ctx, pid)
		if err != nil {
			return err
		}
		c := store.Collection{ID: party.NewID(""), APIRoot: a.Record.ID, Title: pt.Name + "'s contributions",
			Description: "Objects " + pt.Name + " contributes under agreement " + a.Record.ID,
			CreatedAt:   s.now(), Agreement: a.Record.ID, Contributor: pid}
		if err := tx.Collections().Create(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// release raises what each party may read of the other's contributions to
// what its credits now allow, recording each increase in the ledger. It
// runs inside the transaction of the change that caused it, under the
// agreement's lock, so concurrent writers through any instance see exact
// allowances.
func (s *Service) release(ctx context.Context, tx store.Handle, a Agreement, now time.Time) error {
	doc := a.Status.Document
	terms := doc.Reciprocity
	var since time.Time
	if terms.Window > 0 {
		since = now.Add(-terms.Window)
	}
	for _, reader := range []string{a.Record.PartyA, a.Record.PartyB} {
		contributor := a.Counterpart(reader)
		rb, err := tx.Credits().Balance(ctx, a.Record.ID, reader, since)
		if err != nil {
			return err
		}
		cb, err := tx.Credits().Balance(ctx, a.Record.ID, contributor, time.Time{})
		if err != nil {
			return err
		}
		allow := agreement.Allowance(terms, rb.Credits)
		target := min(allow, cb.Contributed)
		if target <= rb.Released {
			continue
		}
		ids, err := tx.Credits().Range(ctx, a.Record.ID, contributor, rb.Released+1, target)
		if err != nil {
			return err
		}
		if err := tx.Credits().SetReleased(ctx, a.Record.ID, reader, target); err != nil {
			return err
		}
		if err := tx.Credits().ReachRange(ctx, a.Record.ID, reader, contributor, rb.Released+1, target); err != nil {
			return err
		}
		d := sha256.New()
		for _, id := range ids {
			d.Write([]byte(id + "\n"))
		}
		if _, err := s.record(ctx, tx, ledger.Entry{Kind: ledger.KindFeedReleased, Agreement: a.Record.ID,
			Subject: fmt.Sprintf("release--%s--%s--%d", a.Record.ID, reader, target), Time: now,
			Parties: []string{reader, contributor},
			Attrs: map[string]string{"recipient": reader, "contributor": contributor, "from": strconv.FormatInt(rb.Released+1, 10),
				"to": strconv.FormatInt(target, 10), "allowance": strconv.FormatInt(allow, 10),
				"credits": strconv.FormatFloat(rb.Credits, 'g', -1, 64), "version": strconv.Itoa(doc.Version)},
			Digests: map[string]string{"objects": "sha256:" + hex.EncodeToString(d.Sum(nil))}}); err != nil {
			return err
		}
		// The reader hears of it on its event stream (the dashboard's
		// "new releases"), in the same transaction as the release.
		data, err := json.Marshal(map[string]any{"contributor": contributor, "from": rb.Released + 1, "to": target, "objects": len(ids)})
		if err != nil {
			return err
		}
		if _, err := tx.Events().Append(ctx, store.Event{PartyID: reader, Kind: "feed.released", Subject: a.Record.ID, Data: data, At: now}); err != nil {
			return err
		}
	}
	return nil
}

// BalanceView is a party's give-to-get standing under an agreement.
type BalanceView struct {
	Agreement   string  `json:"agreement"`
	Party       string  `json:"party"`
	Contributed int64   `json:"contributed"`  // objects it gave that were new to the agreement
	Credits     float64 `json:"credits"`      // their weight (within the window, if any), less contested credits
	Contested   float64 `json:"contested"`    // the weight of its contributions the other side contests (not counted in credits)
	Allowance   int64   `json:"allowance"`    // grace + ratio × credits
	Available   int64   `json:"available"`    // what the other side has contributed
	Released    int64   `json:"released"`     // how many of those it may read
	NextUnlocks int64   `json:"next_unlocks"` // how many more one more credit makes readable
	InForce     bool    `json:"in_force"`
	Phase       string  `json:"phase"`
}

// Balance returns the caller's balance under an agreement.
func (s *Service) Balance(ctx context.Context, p party.Principal, id string) (BalanceView, error) {
	a, err := s.Agreement(ctx, p, id)
	if err != nil {
		return BalanceView{}, err
	}
	now := s.now()
	terms := a.Status.Document.Reciprocity
	var since time.Time
	if terms.Window > 0 {
		since = now.Add(-terms.Window)
	}
	// Each Balance is one snapshot; the caller's is read first, so the
	// counterpart's contributions (which only grow) are read no earlier
	// than what is released of them, and released never exceeds available.
	mine, err := s.st.Credits().Balance(ctx, id, p.PartyID, since)
	if err != nil {
		return BalanceView{}, err
	}
	theirs, err := s.st.Credits().Balance(ctx, id, a.Counterpart(p.PartyID), time.Time{})
	if err != nil {
		return BalanceView{}, err
	}
	return BalanceView{Agreement: id, Party: p.PartyID, Contributed: mine.Contributed, Credits: mine.Credits, Contested: mine.Contested,
		Allowance: agreement.Allowance(terms, mine.Credits), Available: theirs.Contributed, Released: mine.Released,
		NextUnlocks: agreement.Unlocks(terms, mine.Credits), InForce: a.Status.InForce(now), Phase: string(a.Status.Phase)}, nil
}
