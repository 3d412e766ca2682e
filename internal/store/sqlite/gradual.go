package sqlite

import (
	"context"
	"fmt"

	"github.com/parley-cti/parley/internal/store"
)

// Gradual handovers between two nodes (store.Gradual, store.Chunk).

func (s handovers) CreateGradual(ctx context.Context, g store.Gradual) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO handover_gradual(handover_id, chunks, proposer_commitment, counterpart_commitment, stopped_by, stop_reason, stopped_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, g.HandoverID, g.Chunks, g.ProposerCommitment, g.CounterpartCommitment, g.StoppedBy, g.StopReason, micros(g.StoppedAt))
	if err != nil {
		return fmt.Errorf("gradual handover %s: %w", g.HandoverID, mapErr(err))
	}
	return nil
}

func (s handovers) Gradual(ctx context.Context, id string) (store.Gradual, error) {
	g := store.Gradual{HandoverID: id}
	var stopped int64
	err := s.r.QueryRowContext(ctx, `SELECT chunks, proposer_commitment, counterpart_commitment, stopped_by, stop_reason, stopped_at
		FROM handover_gradual WHERE handover_id = ?`, id).Scan(&g.Chunks, &g.ProposerCommitment, &g.CounterpartCommitment, &g.StoppedBy, &g.StopReason, &stopped)
	if err != nil {
		return store.Gradual{}, fmt.Errorf("gradual handover %s: %w", id, mapErr(err))
	}
	g.StoppedAt = fromMicros(stopped)
	return g, nil
}

func (s handovers) UpdateGradual(ctx context.Context, g store.Gradual) error {
	res, err := s.w.ExecContext(ctx, `UPDATE handover_gradual SET proposer_commitment = ?, counterpart_commitment = ?, stopped_by = ?, stop_reason = ?, stopped_at = ?
		WHERE handover_id = ?`, g.ProposerCommitment, g.CounterpartCommitment, g.StoppedBy, g.StopReason, micros(g.StoppedAt), g.HandoverID)
	return rowsOrNotFound(res, err, "gradual handover "+g.HandoverID)
}

func (s handovers) PutChunk(ctx context.Context, c store.Chunk) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO handover_chunks(handover_id, depositor, idx, sha256, size, content, moved_at, confirmed_at, confirmation, ledger_index)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.HandoverID, c.Depositor, c.Index, c.SHA256[:], c.Size, blobOrNull(c.Content), micros(c.MovedAt),
		micros(c.ConfirmedAt), c.Confirmation, c.LedgerIndex)
	if err != nil {
		return fmt.Errorf("chunk %d of %s in %s: %w", c.Index, c.Depositor, c.HandoverID, mapErr(err))
	}
	return nil
}

const chunkCols = `handover_id, depositor, idx, sha256, size, coalesce(length(content), 0) > 0, moved_at, confirmed_at, confirmation, ledger_index`

func scanChunk(sc interface{ Scan(...any) error }, content bool) (store.Chunk, error) {
	var c store.Chunk
	var sum []byte
	var held int
	var moved, confirmed int64
	dest := []any{&c.HandoverID, &c.Depositor, &c.Index, &sum, &c.Size, &held, &moved, &confirmed, &c.Confirmation, &c.LedgerIndex}
	if content {
		dest = append(dest, &c.Content)
	}
	if err := sc.Scan(dest...); err != nil {
		return store.Chunk{}, mapErr(err)
	}
	copy(c.SHA256[:], sum)
	c.Held, c.MovedAt, c.ConfirmedAt = held != 0, fromMicros(moved), fromMicros(confirmed)
	return c, nil
}

func (s handovers) Chunk(ctx context.Context, id, depositor string, index int) (store.Chunk, error) {
	c, err := scanChunk(s.r.QueryRowContext(ctx, `SELECT `+chunkCols+`, content FROM handover_chunks WHERE handover_id = ? AND depositor = ? AND idx = ?`,
		id, depositor, index), true)
	if err != nil {
		return store.Chunk{}, fmt.Errorf("chunk %d of %s in %s: %w", index, depositor, id, err)
	}
	return c, nil
}

func (s handovers) Chunks(ctx context.Context, id string) ([]store.Chunk, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+chunkCols+` FROM handover_chunks WHERE handover_id = ? ORDER BY depositor, idx`, id)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Chunk
	for rows.Next() {
		c, err := scanChunk(rows, false)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

func (s handovers) UpdateChunk(ctx context.Context, c store.Chunk) error {
	res, err := s.w.ExecContext(ctx, `UPDATE handover_chunks SET content = ?, moved_at = ?, confirmed_at = ?, confirmation = ?, ledger_index = ?
		WHERE handover_id = ? AND depositor = ? AND idx = ?`, blobOrNull(c.Content), micros(c.MovedAt), micros(c.ConfirmedAt), c.Confirmation, c.LedgerIndex,
		c.HandoverID, c.Depositor, c.Index)
	return rowsOrNotFound(res, err, fmt.Sprintf("chunk %d of %s in %s", c.Index, c.Depositor, c.HandoverID))
}

// rowsOrNotFound turns an UPDATE that touched no row into ErrNotFound.
func rowsOrNotFound(res interface{ RowsAffected() (int64, error) }, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

// blobOrNull binds nil as NULL (a driver may bind a nil slice as an empty
// blob).
func blobOrNull(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}
