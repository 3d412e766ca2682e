// Package verification keeps what each party's own client verified of the
// ledger (`parley verify --upload`): a statement signed with the party's
// key, naming a checkpoint the server signed. The dashboard shows the
// latest one as the party's own check, apart from the server's claim
// about itself.
package verification

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parley-cti/parley/internal/fault"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// ErrUnknownCheckpoint: the statement names a size, root or origin that is
// not a checkpoint this server signed.
var ErrUnknownCheckpoint = fault.Refine(fault.New(fault.Conflict, "not a checkpoint this server signed"), nil, "unknown_checkpoint")

// MaxList bounds one listing.
const MaxList = 100

// View is one stored verification as the API shows it.
type View struct {
	Seq        int64                        `json:"seq"`
	Size       int64                        `json:"size"`
	Root       string                       `json:"root"`
	Entries    int64                        `json:"entries"`
	VerifiedAt time.Time                    `json:"verified_at"`
	ReceivedAt time.Time                    `json:"received_at"`
	Statement  agreement.SignedVerification `json:"statement"`
}

// Service records and lists verifications.
type Service struct {
	st  store.Store
	now func() time.Time
}

// New returns the service over st.
func New(st store.Store) *Service { return &Service{st: st, now: time.Now} }

// Record checks sv and stores it as p's. Errors wrap agreement.ErrNotParty
// (sv names another party or is signed with another party's key),
// agreement.ErrBadSignature or ErrUnknownKey (a malformed or forged
// statement), or ErrUnknownCheckpoint.
func (s *Service) Record(ctx context.Context, p party.Principal, sv agreement.SignedVerification) (View, error) {
	if sv.PartyID != p.PartyID {
		return View{}, fault.Errorf("%w: the statement names %q, you are %q", agreement.ErrNotParty, sv.PartyID, p.PartyID)
	}
	if err := agreement.VerifyVerification(resolver{ctx, s.st, p.PartyID}, sv); err != nil {
		return View{}, err
	}
	signed, err := s.st.Ledger().CheckpointAt(ctx, sv.Size)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, ledger.ErrNotFound) {
		return View{}, fault.Errorf("%w: no checkpoint at size %d", ErrUnknownCheckpoint, sv.Size)
	}
	if err != nil {
		return View{}, err
	}
	body, _, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return View{}, fmt.Errorf("stored checkpoint at size %d has no signature block", sv.Size)
	}
	c, err := ledger.ParseCheckpoint(append(body, '\n'))
	if err != nil {
		return View{}, fault.Errorf("stored checkpoint at size %d: %w", sv.Size, err)
	}
	if c.Origin != sv.Origin || c.Hash.String() != sv.Root {
		return View{}, fault.Errorf("%w: the checkpoint at size %d is %s (root %s)", ErrUnknownCheckpoint, sv.Size, c.Origin, c.Hash)
	}
	raw, err := json.Marshal(sv)
	if err != nil {
		return View{}, err
	}
	v, err := s.st.Keys().AddVerification(ctx, store.Verification{PartyID: p.PartyID, Size: sv.Size, Root: sv.Root, Entries: sv.Entries,
		VerifiedAt: sv.VerifiedAt, ReceivedAt: s.now(), Statement: raw})
	if err != nil {
		return View{}, err
	}
	return view(v)
}

// List returns up to limit (1 to MaxList) of p's own verifications, newest
// first.
func (s *Service) List(ctx context.Context, p party.Principal, limit int) ([]View, error) {
	limit = min(max(limit, 1), MaxList)
	vs, err := s.st.Keys().Verifications(ctx, p.PartyID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]View, 0, len(vs))
	for _, v := range vs {
		w, err := view(v)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// Latest returns partyID's newest verification; ok is false when its
// client has uploaded none.
func (s *Service) Latest(ctx context.Context, partyID string) (v View, ok bool, err error) {
	vs, err := s.List(ctx, party.Principal{PartyID: partyID}, 1)
	if err != nil || len(vs) == 0 {
		return View{}, false, err
	}
	return vs[0], true, nil
}

func view(v store.Verification) (View, error) {
	w := View{Seq: v.Seq, Size: v.Size, Root: v.Root, Entries: v.Entries, VerifiedAt: v.VerifiedAt, ReceivedAt: v.ReceivedAt}
	if err := json.Unmarshal(v.Statement, &w.Statement); err != nil {
		return View{}, fault.Errorf("stored verification %s/%d: %w", v.PartyID, v.Seq, err)
	}
	return w, nil
}

// resolver resolves keys for one party's statement: another party's key
// is refused as agreement.ErrNotParty, an unregistered one as
// agreement.ErrUnknownKey.
type resolver struct {
	ctx   context.Context
	st    store.Store
	party string
}

func (r resolver) ResolveKey(keyID string, at time.Time) (string, agreement.PublicKeys, error) {
	k, err := r.st.Keys().Get(r.ctx, keyID)
	if errors.Is(err, store.ErrNotFound) {
		return "", agreement.PublicKeys{}, fault.Errorf("%w: %q is not registered", agreement.ErrUnknownKey, keyID)
	}
	if err != nil {
		return "", agreement.PublicKeys{}, err
	}
	switch {
	case k.PartyID != r.party:
		return "", agreement.PublicKeys{}, fault.Errorf("%w: key %s is another party's", agreement.ErrNotParty, keyID)
	case at.Before(k.ValidFrom):
		return "", agreement.PublicKeys{}, fault.Errorf("%w: %s was not valid before %s", agreement.ErrUnknownKey, keyID, k.ValidFrom.Format(time.RFC3339))
	case !k.ValidUntil.IsZero() && !at.Before(k.ValidUntil):
		return "", agreement.PublicKeys{}, fault.Errorf("%w: %s was rotated out at %s", agreement.ErrKeyRotated, keyID, k.ValidUntil.Format(time.RFC3339))
	}
	var pub agreement.PublicKeys
	if err := json.Unmarshal(k.Public, &pub); err != nil {
		return "", agreement.PublicKeys{}, fault.Errorf("stored key %s: %w", keyID, err)
	}
	return k.PartyID, pub, nil
}
