package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// ImportedObject is one object version brought from another TAXII server,
// with the date_added it had there (zero: unknown, stamped at import).
type ImportedObject struct {
	Raw       json.RawMessage
	DateAdded time.Time
}

// ImportResult says what an import stored.
type ImportResult struct {
	Collection  store.Collection
	Added       int                  // object versions stored
	Duplicates  int                  // versions given twice, stored once
	Refused     []store.StatusDetail // objects that failed validation, with the reason
	LedgerIndex int64                // the feed.batch entry recording the import; -1 when nothing was added
}

// ImportCollection is the operator's: it creates an operator collection
// with c's id, title, description, readers and writers, and stores objs in
// it with their own date_added values, so that TAXII clients of the old
// server find the same collection, objects and added_after positions. Each
// object is validated as a POST would validate it; refused ones are
// reported and skipped. Everything happens in one transaction with a
// feed.batch ledger entry (attrs import = source), so an import is whole or
// absent. ErrInvalid for a collection without id or title; a collection id
// that exists fails with store.ErrConflict.
func (s *Service) ImportCollection(ctx context.Context, c store.Collection, objs []ImportedObject, source string) (ImportResult, error) {
	if c.ID == "" || c.Title == "" {
		return ImportResult{}, fault.Errorf("%w: an imported collection needs an id and a title", ErrInvalid)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	c.APIRoot, c.CreatedAt, c.Agreement, c.Contributor = OperatorRoot, now, "", ""
	res := ImportResult{Collection: c, LedgerIndex: -1}
	raws := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		raws[i] = o.Raw
	}
	var keep []store.Object
	for i, r := range parseAll(raws, false) { // a plain collection: no fingerprints
		if r.err != nil {
			res.Refused = append(res.Refused, failure(i, raws[i], r.err))
			continue
		}
		o := r.obj
		so := storedObject(o, now, i)
		if added := objs[i].DateAdded.UTC().Truncate(time.Microsecond); !added.IsZero() {
			so.DateAdded = added
		}
		keep = append(keep, so)
	}
	err := s.st.Update(ctx, func(tx store.Handle) error {
		res.Added, res.Duplicates, res.LedgerIndex = 0, 0, -1
		if err := tx.Collections().Create(ctx, c); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fault.Errorf("%w: a listed party does not exist", ErrInvalid)
			}
			return fault.Errorf("collection %s: %w", c.ID, err)
		}
		if len(keep) == 0 {
			return nil
		}
		outcomes, err := tx.Objects().Put(ctx, c.ID, keep)
		if err != nil {
			return err
		}
		digest := sha256.New()
		for i, o := range keep {
			if outcomes[i] == store.Duplicate {
				res.Duplicates++
				continue
			}
			res.Added++
			digest.Write([]byte(o.ID + " " + stix.FormatTime(o.Version) + "\n"))
		}
		res.LedgerIndex, err = s.record(ctx, tx, ledger.Entry{
			Kind: ledger.KindFeedBatch, Subject: "import--" + c.ID, Time: now,
			Attrs: map[string]string{"import": source, "api_root": OperatorRoot, "collection": c.ID,
				"added": strconv.Itoa(res.Added), "duplicates": strconv.Itoa(res.Duplicates), "refused": strconv.Itoa(len(res.Refused))},
			Digests: map[string]string{"objects": "sha256:" + hex.EncodeToString(digest.Sum(nil))},
		})
		return err
	})
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}
