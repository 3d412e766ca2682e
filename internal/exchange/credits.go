package exchange

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// Status messages for objects stored under an agreement that earn no
// credit. They say why, so an honest party can tell a copy from junk.
const (
	msgKnownID      = "you already gave or received this object under this agreement; it earns no credit"
	msgSameContent  = "duplicate content: this agreement already holds an object with the same content (fingerprint) that you gave or received; it earns no credit"
	msgBelowFloorPf = "below the quality floor: "
	msgBelowFloorSf = "; it earns no credit"
)

// creditNote is what accounting made of one stored object.
type creditNote struct {
	earned bool
	why    string // when not earned
}

// contribute offers objs (stored under agreement a by partyID) for credit.
// Credit goes to intelligence new to the agreement by content: an object
// below the agreement's quality floor earns nothing; so does one whose id
// or content fingerprint the party already gave or received (its own
// contributions, the counterpart's released to it, plain handovers). Every
// object below the floor or known is still stored. What earns credit is
// marked for the joint report's tallies with it (store.Credits.Contribute);
// the rest is for markStored. Callers hold the agreement's lock.
func contribute(ctx context.Context, x store.Handle, a Agreement, partyID string, objs []*stix.Object, now time.Time) ([]creditNote, error) {
	for _, o := range objs {
		if o.Fingerprint == (stix.Fingerprint{}) {
			// Parsed without its fingerprint (stix.ValidateObject): every
			// such object would look like every other.
			return nil, fmt.Errorf("exchange: %s reached an agreement's credits without its content fingerprint", o.ID)
		}
	}
	terms := a.Status.Document.Reciprocity
	notes := make([]creditNote, len(objs))
	items := make([]store.Contribution, 0, len(objs))
	index := make([]int, 0, len(objs))
	for i, o := range objs {
		if why := agreement.BelowFloor(terms, o); why != "" {
			notes[i].why = msgBelowFloorPf + why + msgBelowFloorSf
			continue
		}
		items = append(items, store.Contribution{ObjectID: o.ID, Weight: agreement.Weight(terms, o.Type), Fingerprint: o.Fingerprint[:],
			Type: o.Type, TLP: tlpLevel(o.Markings), Version: o.Version()})
		index = append(index, i)
	}
	if len(items) == 0 {
		return notes, nil
	}
	res, err := x.Credits().Contribute(ctx, a.Record.ID, partyID, items, now)
	if err != nil {
		return nil, err
	}
	for k, r := range res {
		n := &notes[index[k]]
		switch {
		case r.Ord > 0:
			n.earned = true
		case r.SameContent:
			n.why = msgSameContent
		default:
			n.why = msgKnownID
		}
	}
	return notes, nil
}
