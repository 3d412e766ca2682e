package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-cti/parley/internal/ledger"
)

// ledgerStatus is what the dashboard says about the log's latest checkpoint.
type ledgerStatus struct {
	Present  bool   // a checkpoint has been signed
	Verified bool   // its signature verifies with the published key and its root matches the stored log
	Problem  string // why it did not verify, for people
	Size     int64
	Root     string
	Origin   string
	LogSize  int64     // entries in the log now
	Pending  int64     // entries not yet covered by the checkpoint
	Covers   time.Time // time of the newest entry it covers
	Age      string    // since then
	Key      string    // the verifier key used
}

// ledgerStatus verifies the latest checkpoint server-side, the way a
// client's `parley verify` would: the note's signature against the
// published verifier key, then its root against the tree hash recomputed
// from the stored log.
func (d *Dashboard) ledgerStatus(ctx context.Context) (ledgerStatus, error) {
	st := ledgerStatus{Key: d.o.VerifierKey}
	l := d.o.Ledger
	logSize, err := l.Size(ctx)
	if err != nil {
		return st, fmt.Errorf("ledger size: %w", err)
	}
	st.LogSize = logSize
	size, note, err := l.LatestCheckpoint(ctx)
	if errors.Is(err, ledger.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("latest checkpoint: %w", err)
	}
	st.Present, st.Size, st.Pending = true, size, logSize-size
	c, err := ledger.VerifyCheckpoint(note, d.o.VerifierKey)
	if err != nil {
		st.Problem = "its signature does not verify with the log's published key"
		d.log.WarnContext(ctx, "latest checkpoint does not verify", "size", size, "err", err)
		return st, nil
	}
	st.Root, st.Origin = c.Hash.String(), c.Origin
	if c.Size != size {
		st.Problem = fmt.Sprintf("it claims size %d but is stored as %d", c.Size, size)
		return st, nil
	}
	root, err := ledger.TreeHash(ctx, l, c.Size)
	if err != nil {
		return st, fmt.Errorf("tree hash at %d: %w", c.Size, err)
	}
	if root != c.Hash {
		st.Problem = "its root hash differs from the stored log's"
		d.log.WarnContext(ctx, "latest checkpoint root differs from the stored log", "size", size)
		return st, nil
	}
	st.Verified = true
	if c.Size > 0 {
		raws, err := l.ReadEntries(ctx, c.Size-1, c.Size)
		if err != nil {
			return st, fmt.Errorf("ledger entry %d: %w", c.Size-1, err)
		}
		e, err := ledger.DecodeEntry(raws[0])
		if err != nil {
			return st, fmt.Errorf("ledger entry %d: %w", c.Size-1, err)
		}
		st.Covers, st.Age = e.Time, ago(d.now().Sub(e.Time))
	}
	return st, nil
}
