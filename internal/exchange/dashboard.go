package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
)

// BalancePoint is a party's give-to-get standing under one agreement right
// after one ledger entry of that agreement. Counts are cumulative objects,
// not weighted credits: the ledger records how many objects a batch
// credited ("credited"), not their weights.
type BalancePoint struct {
	Index int64       // ledger index of the entry
	Time  time.Time   // when it was recorded
	Kind  ledger.Kind // feed.batch or feed.released
	// Contributed counts the caller's objects that earned credit.
	Contributed int64
	// CounterpartContributed counts the other side's objects that earned credit.
	CounterpartContributed int64
	// Released counts the other side's objects released to the caller.
	Released int64
}

// historyChunk bounds how many ledger entries one read asks for.
const historyChunk = 1024

// BalanceHistory returns the caller's standing under an agreement over
// time, derived from the ledger's feed.batch and feed.released entries of
// that agreement (oldest first). It is a read-only query: access is the
// same as Agreement's (ErrNotFound to anyone not a party to it).
//
// It reads the whole ledger, which is linear in its size; the dashboard
// calls it once per page view of one agreement.
func (s *Service) BalanceHistory(ctx context.Context, p party.Principal, id string) ([]BalancePoint, error) {
	a, err := s.Agreement(ctx, p, id)
	if err != nil {
		return nil, err
	}
	l := s.st.Ledger()
	size, err := l.Size(ctx)
	if err != nil {
		return nil, fault.Errorf("ledger size: %w", err)
	}
	other := a.Counterpart(p.PartyID)
	needle := []byte(`"agreement":` + strconv.Quote(id))
	var out []BalancePoint
	var cur BalancePoint
	for start := int64(0); start < size; start += historyChunk {
		end := min(start+historyChunk, size)
		raws, err := l.ReadEntries(ctx, start, end)
		if err != nil {
			return nil, fault.Errorf("ledger entries [%d, %d): %w", start, end, err)
		}
		for i, raw := range raws {
			// Cheap filter first: most entries belong to other agreements.
			if !bytes.Contains(raw, needle) {
				continue
			}
			var e ledger.Entry
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, fault.Errorf("ledger entry %d: %w", start+int64(i), err)
			}
			if e.Agreement != id {
				continue
			}
			switch e.Kind {
			case ledger.KindFeedBatch:
				n, _ := strconv.ParseInt(e.Attrs["credited"], 10, 64)
				if n == 0 {
					continue
				}
				switch e.Actor {
				case p.PartyID:
					cur.Contributed += n
				case other:
					cur.CounterpartContributed += n
				default:
					continue
				}
			case ledger.KindFeedReleased:
				if e.Attrs["recipient"] != p.PartyID {
					continue
				}
				n, err := strconv.ParseInt(e.Attrs["to"], 10, 64)
				if err != nil {
					return nil, fault.Errorf("ledger entry %d: release without a valid \"to\": %w", start+int64(i), err)
				}
				cur.Released = n
			default:
				continue
			}
			cur.Index, cur.Time, cur.Kind = start+int64(i), e.Time, e.Kind
			out = append(out, cur)
		}
	}
	return out, nil
}
