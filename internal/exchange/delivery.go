package exchange

import (
	"context"
	"slices"
	"time"

	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// HandoverCollectionTitle prefixes the title of the collection holding what
// plain handovers released to a party ("Handed over to <name>"). The title
// is for people; the collection is found by its kind, store.KindHandover.
const HandoverCollectionTitle = "Handed over to "

// DeliverHandover is the one way intelligence released by a handover is
// stored: inside tx, the transaction of the release, which holds the
// agreement's lock. It puts objs into the collection of agreementID's API
// root that recipient alone reads (created on first use, of kind
// store.KindHandover) and records their content fingerprints as handed
// over, so that neither party earns feed credit for giving them again.
// It returns the collection's id.
func (s *Service) DeliverHandover(ctx context.Context, tx store.Handle, agreementID, recipient string, objs []*stix.Object, now time.Time) (string, error) {
	coll, err := handoverCollection(ctx, tx, agreementID, recipient, now)
	if err != nil {
		return "", err
	}
	stored := make([]store.Object, len(objs))
	for i, o := range objs {
		stored[i] = storedObject(o, now, i)
	}
	if _, err := tx.Objects().Put(ctx, coll, stored); err != nil {
		return "", err
	}
	fps := make([][]byte, len(objs))
	for i, o := range objs {
		fps[i] = o.Fingerprint[:]
	}
	if err := tx.Credits().Handed(ctx, agreementID, fps); err != nil {
		return "", err
	}
	return coll, nil
}

// handoverCollection returns (creating it on first use) recipient's
// handover collection in the agreement's API root. Nobody writes it
// through TAXII: it has no writers and no agreement.
func handoverCollection(ctx context.Context, tx store.Handle, agreementID, recipient string, now time.Time) (string, error) {
	cs, err := tx.Collections().List(ctx, agreementID)
	if err != nil {
		return "", err
	}
	pt, err := tx.Parties().Get(ctx, recipient)
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if c.Kind == store.KindHandover && slices.Equal(c.Readers, []string{recipient}) {
			return c.ID, nil
		}
	}
	c := store.Collection{ID: party.NewID(""), APIRoot: agreementID, Title: HandoverCollectionTitle + pt.Name,
		Description: "Objects of plain handovers released to " + pt.Name + " under agreement " + agreementID,
		CreatedAt:   now, Readers: []string{recipient}, Kind: store.KindHandover}
	if err := tx.Collections().Create(ctx, c); err != nil {
		return "", err
	}
	return c.ID, nil
}
