package exchange

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-cti/parley/internal/fault"

	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// MaxFutureTimestamp is how far past the server's clock an object's
// created or modified may lie (the clock skew allowed to clients). A later timestamp is refused: a version dated in the
// far future (9999-12-31) would stay the latest for good, so that the real
// owner's later updates never became current.
const MaxFutureTimestamp = 5 * time.Minute

// ErrNotOwner: the object was first posted by another party, which alone
// may delete it or add versions of it.
var ErrNotOwner = fault.Errorf("%w: the object belongs to the party that first posted it", ErrForbidden)

// notInFuture refuses an object whose created or modified lies more than
// MaxFutureTimestamp after now, naming the property.
func notInFuture(o *stix.Object, now time.Time) error {
	limit := now.Add(MaxFutureTimestamp)
	for _, ts := range []struct {
		name string
		t    time.Time
	}{{"modified", o.Modified}, {"created", o.Created}} {
		if ts.t.After(limit) {
			return &stix.ValidationError{ObjectID: o.ID, Reason: fmt.Sprintf("%s %s is in the future: the server accepts timestamps up to %s after its clock (now %s)",
				ts.name, stix.FormatTime(ts.t), MaxFutureTimestamp, stix.FormatTime(now))}
		}
	}
	return nil
}

// claim keeps, of the objects p is adding to the operator collection, those
// whose id p owns there, making p the owner of ids nobody owns yet; every
// other object is reported in status as a failure. Objects of one batch
// naming the same id share its fate. It runs inside the ingest transaction,
// so a claim and the write it allows commit together.
func claim(ctx context.Context, tx store.Handle, p party.Principal, collection string, objs []store.Object, parsed []*stix.Object, status *store.Status) ([]store.Object, []*stix.Object, error) {
	if len(objs) == 0 {
		return objs, parsed, nil
	}
	ids := make([]string, 0, len(objs))
	seen := make(map[string]bool, len(objs))
	for _, o := range objs {
		if !seen[o.ID] {
			seen[o.ID] = true
			ids = append(ids, o.ID)
		}
	}
	owners, err := tx.Objects().Claim(ctx, collection, p.PartyID, ids)
	if err != nil {
		return nil, nil, err
	}
	keep, kept := objs[:0:0], parsed[:0:0]
	for i, o := range objs {
		if owners[o.ID] != p.PartyID {
			status.Failures = append(status.Failures, store.StatusDetail{ID: o.ID, Version: stix.FormatTime(o.Version),
				Message: o.ID + ": another party first posted this object id in this collection; only that party may add versions of it or delete it"})
			continue
		}
		keep, kept = append(keep, o), append(kept, parsed[i])
	}
	return keep, kept, nil
}

// deleteAllowed says whether p, holding rights a on collection c, may
// delete object id: deleting needs read and write access (TAXII 2.1
// section 5.6), is never allowed under an agreement, and only the object's
// owner may do it. The refusal for lacking read or write is one error
// whatever the object, so that it tells nothing about which ids exist.
func (s *Service) deleteAllowed(ctx context.Context, p party.Principal, c store.Collection, a Access, id string) error {
	if !a.Read || !a.Write {
		return fault.Errorf("%w: deleting needs both read and write access to the collection", ErrForbidden)
	}
	if c.Agreement != "" {
		return fault.Errorf("%w: objects contributed under an agreement cannot be deleted: what was released stays with its recipient", ErrForbidden)
	}
	owner, err := s.st.Objects().Owner(ctx, c.ID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Never posted (the delete finds nothing), or stored before owners
		// were recorded and never claimed since.
		return nil
	case err != nil:
		return err
	case owner != p.PartyID:
		return fault.Errorf("%w: %s was first posted by another party; only that party may delete it", ErrNotOwner, id)
	}
	return nil
}
