package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Checkpointer signs a new checkpoint every Interval while the log has
// grown, and on demand. The server runs one per process; with several
// processes on one database, LockedSize and SaveCheckpoint's ErrConflict
// keep them from signing two heads of one size.
type Checkpointer struct {
	Update   UpdateFunc    // opens a transaction on the ledger's database
	Signer   *Signer       // the log's note key
	Interval time.Duration // how often to look for growth; 0 means 10s
	Logger   *slog.Logger  // nil means slog.Default()
	// Signed, if set, is called after each new checkpoint commits, e.g. to
	// ask witnesses for cosignatures. It runs on the Checkpointer's goroutine.
	Signed func(ctx context.Context, c Checkpoint, signed []byte)
}

// SignNow signs and saves a checkpoint of the current size in its own
// transaction (or returns the existing one if the log has not grown).
func (c *Checkpointer) SignNow(ctx context.Context) (Checkpoint, []byte, error) {
	var cp Checkpoint
	var signed []byte
	err := c.Update(ctx, func(st Store) error {
		var err error
		cp, signed, err = NewCheckpoint(ctx, st, c.Signer)
		return err
	})
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return cp, signed, nil
}

// Run signs checkpoints until ctx is done, then returns ctx.Err(). A failed
// attempt is logged and retried at the next tick rather than stopping the
// server: the log stays writable, only checkpoints lag.
func (c *Checkpointer) Run(ctx context.Context) error {
	interval := c.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	logger := c.Logger
	if logger == nil {
		logger = slog.Default()
	}
	lastSize := int64(-1)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		cp, signed, err := c.SignNow(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			logger.ErrorContext(ctx, "ledger checkpoint failed", slog.Any("error", err))
		case cp.Size != lastSize:
			lastSize = cp.Size
			logger.InfoContext(ctx, "ledger checkpoint", slog.Int64("size", cp.Size), slog.String("root", cp.Hash.String()))
			if c.Signed != nil {
				c.Signed(ctx, cp, signed)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
