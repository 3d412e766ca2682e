package exchange

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// LedgerOpening is the key that opens the commitments of one ledger entry
// (ledger.Entry.Open): given only to a party entitled to the data they bind.
type LedgerOpening struct {
	Index int64       `json:"index"`
	Kind  ledger.Kind `json:"kind"`
	V     int         `json:"v"`
	// Key is the entry key in hex; empty for a version-1 entry, whose
	// digests are plain SHA-256 and need none.
	Key string `json:"key,omitempty"`
}

// mayOpen says who is entitled to open an entry's commitments. A party's
// own contribution (a feed batch: ids and versions of objects the
// counterpart may not have been released; a deposit before release) opens
// only for the party that made it; the release entries that follow bind the
// same data for both sides. Every other kind binds what both sides of its
// agreement or handover already read through the API (agreement documents
// and signatures, handover terms, released ranges and deposits, disputes,
// round-1 messages), so it opens for the parties it names.
func mayOpen(partyID string, e ledger.Entry) bool {
	if partyID == "" {
		return false
	}
	switch e.Kind {
	case ledger.KindFeedBatch, ledger.KindHandoverDepositCommitted:
		return e.Actor == partyID
	}
	return e.Actor == partyID || slices.Contains(e.Parties, partyID)
}

// LedgerOpening returns the opening key of the ledger entry at index if p
// is entitled to it (see mayOpen). A missing index and an entry p may not
// open fail alike with ErrNotFound, so the answer tells an outsider
// nothing it could not read from the public entry itself.
func (s *Service) LedgerOpening(ctx context.Context, p party.Principal, index int64) (LedgerOpening, error) {
	l := s.st.Ledger()
	notFound := fault.Errorf("%w: no ledger entry %d you may open", ErrNotFound, index)
	if index < 0 {
		return LedgerOpening{}, notFound
	}
	raws, err := l.ReadEntries(ctx, index, index+1)
	if errors.Is(err, ledger.ErrNotFound) || errors.Is(err, store.ErrNotFound) || err == nil && len(raws) != 1 {
		return LedgerOpening{}, notFound
	}
	if err != nil {
		return LedgerOpening{}, err
	}
	e, err := ledger.DecodeEntry(raws[0])
	if err != nil {
		return LedgerOpening{}, fault.Errorf("ledger entry %d: %w", index, err)
	}
	if !mayOpen(p.PartyID, e) {
		return LedgerOpening{}, notFound
	}
	out := LedgerOpening{Index: index, Kind: e.Kind, V: e.V}
	if e.V == ledger.EntryVersion {
		key, err := l.CommitmentKey(ctx)
		if err != nil {
			return LedgerOpening{}, err
		}
		out.Key = hex.EncodeToString(ledger.EntryKey(key, e.Nonce))
	}
	return out, nil
}
