package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// GenesisSubjectPrefix starts the subject of every backfilled entry.
const GenesisSubjectPrefix = "genesis--"

// Backfill gives state written before the ledger existed its genesis
// entries, so that an old data directory upgrades into a verifiable one:
// when the ledger is empty but collections hold objects, it appends one
// feed.batch entry per such collection (attrs genesis, api_root,
// collection, added = count of stored versions; digest "objects" = SHA-256
// over "id version\n" in date-added order, as Ingest digests a batch).
// It runs in one transaction and only on an empty ledger, so it is
// idempotent and safe with several instances starting at once. It returns
// how many entries it appended.
//
// It lives here, beside Ingest, because it reads intelligence and digests
// a batch as Ingest does; the server calls it once at start.
func (s *Service) Backfill(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.st.Update(ctx, func(tx store.Handle) error {
		n = 0
		l := tx.Ledger()
		size, err := l.LockedSize(ctx)
		if err != nil {
			return err
		}
		if size > 0 {
			return nil
		}
		roots, err := tx.Collections().APIRoots(ctx)
		if err != nil {
			return err
		}
		var entries []ledger.Entry
		for _, root := range roots {
			cs, err := tx.Collections().List(ctx, root)
			if err != nil {
				return err
			}
			for _, c := range cs {
				count, digest, err := digestCollection(ctx, tx, c.ID)
				if err != nil {
					return err
				}
				if count == 0 {
					continue
				}
				entries = append(entries, ledger.Entry{Kind: ledger.KindFeedBatch, Agreement: c.Agreement,
					Subject: GenesisSubjectPrefix + c.ID, Time: now.UTC(),
					Attrs: map[string]string{"genesis": "true", "api_root": root, "collection": c.ID,
						"added": strconv.FormatInt(count, 10)},
					Digests: map[string]string{"objects": "sha256:" + digest}})
			}
		}
		if len(entries) == 0 {
			return nil
		}
		if _, err := ledger.Append(ctx, l, entries...); err != nil {
			return err
		}
		n = len(entries)
		return nil
	})
	if err != nil {
		return 0, fault.Errorf("ledger backfill: %w", err)
	}
	return n, nil
}

// digestCollection counts a collection's stored versions and digests their
// ids and versions in date-added order.
func digestCollection(ctx context.Context, h store.Handle, collection string) (int64, string, error) {
	d := sha256.New()
	var count int64
	q := store.ObjectQuery{Collection: collection, Versions: store.VersionFilter{All: true}, Limit: 1000}
	for {
		page, err := h.Objects().Query(ctx, q)
		if err != nil {
			return 0, "", err
		}
		for _, o := range page.Objects {
			d.Write([]byte(o.ID + " " + stix.FormatTime(o.Version) + "\n"))
			count++
		}
		if !page.More || len(page.Objects) == 0 {
			break
		}
		last := page.Objects[len(page.Objects)-1]
		q.After = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
	}
	return count, hex.EncodeToString(d.Sum(nil)), nil
}
