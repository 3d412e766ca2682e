package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

// Gradual handovers between two nodes (store.Gradual, store.Chunk).

func (s handovers) CreateGradual(ctx context.Context, g store.Gradual) error {
	_, err := s.q.Exec(ctx, `INSERT INTO handover_gradual(handover_id, chunks, proposer_commitment, counterpart_commitment, stopped_by, stop_reason, stopped_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, g.HandoverID, g.Chunks, g.ProposerCommitment, g.CounterpartCommitment, g.StoppedBy, g.StopReason, micros(g.StoppedAt))
	if err != nil {
		return fmt.Errorf("gradual handover %s: %w", g.HandoverID, mapErr(err))
	}
	return nil
}

func (s handovers) Gradual(ctx context.Context, id string) (store.Gradual, error) {
	g := store.Gradual{HandoverID: id}
	var stopped int64
	err := s.q.QueryRow(ctx, `SELECT chunks, proposer_commitment, counterpart_commitment, stopped_by, stop_reason, stopped_at
		FROM handover_gradual WHERE handover_id = $1`, id).Scan(&g.Chunks, &g.ProposerCommitment, &g.CounterpartCommitment, &g.StoppedBy, &g.StopReason, &stopped)
	if err != nil {
		return store.Gradual{}, fmt.Errorf("gradual handover %s: %w", id, mapErr(err))
	}
	g.StoppedAt = fromMicros(stopped)
	return g, nil
}

func (s handovers) UpdateGradual(ctx context.Context, g store.Gradual) error {
	tag, err := s.q.Exec(ctx, `UPDATE handover_gradual SET proposer_commitment = $1, counterpart_commitment = $2, stopped_by = $3, stop_reason = $4, stopped_at = $5
		WHERE handover_id = $6`, g.ProposerCommitment, g.CounterpartCommitment, g.StoppedBy, g.StopReason, micros(g.StoppedAt), g.HandoverID)
	if err != nil {
		return fmt.Errorf("gradual handover %s: %w", g.HandoverID, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("gradual handover %s: %w", g.HandoverID, store.ErrNotFound)
	}
	return nil
}

func (s handovers) PutChunk(ctx context.Context, c store.Chunk) error {
	_, err := s.q.Exec(ctx, `INSERT INTO handover_chunks(handover_id, depositor, idx, sha256, size, content, moved_at, confirmed_at, confirmation, ledger_index)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, c.HandoverID, c.Depositor, c.Index, c.SHA256[:], c.Size, c.Content, micros(c.MovedAt),
		micros(c.ConfirmedAt), c.Confirmation, c.LedgerIndex)
	if err != nil {
		return fmt.Errorf("chunk %d of %s in %s: %w", c.Index, c.Depositor, c.HandoverID, mapErr(err))
	}
	return nil
}

const chunkCols = `handover_id, depositor, idx, sha256, size, content IS NOT NULL, moved_at, confirmed_at, confirmation, ledger_index`

func scanChunk(sc pgx.Row, content bool) (store.Chunk, error) {
	var c store.Chunk
	var sum []byte
	var moved, confirmed int64
	dest := []any{&c.HandoverID, &c.Depositor, &c.Index, &sum, &c.Size, &c.Held, &moved, &confirmed, &c.Confirmation, &c.LedgerIndex}
	if content {
		dest = append(dest, &c.Content)
	}
	if err := sc.Scan(dest...); err != nil {
		return store.Chunk{}, mapErr(err)
	}
	copy(c.SHA256[:], sum)
	c.MovedAt, c.ConfirmedAt = fromMicros(moved), fromMicros(confirmed)
	return c, nil
}

func (s handovers) Chunk(ctx context.Context, id, depositor string, index int) (store.Chunk, error) {
	c, err := scanChunk(s.q.QueryRow(ctx, `SELECT `+chunkCols+`, content FROM handover_chunks WHERE handover_id = $1 AND depositor = $2 AND idx = $3`,
		id, depositor, index), true)
	if err != nil {
		return store.Chunk{}, fmt.Errorf("chunk %d of %s in %s: %w", index, depositor, id, err)
	}
	return c, nil
}

func (s handovers) Chunks(ctx context.Context, id string) ([]store.Chunk, error) {
	rows, err := s.q.Query(ctx, `SELECT `+chunkCols+` FROM handover_chunks WHERE handover_id = $1 ORDER BY depositor COLLATE "C", idx`, id)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Chunk, error) { return scanChunk(row, false) })
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

func (s handovers) UpdateChunk(ctx context.Context, c store.Chunk) error {
	tag, err := s.q.Exec(ctx, `UPDATE handover_chunks SET content = $1, moved_at = $2, confirmed_at = $3, confirmation = $4, ledger_index = $5
		WHERE handover_id = $6 AND depositor = $7 AND idx = $8`, c.Content, micros(c.MovedAt), micros(c.ConfirmedAt), c.Confirmation, c.LedgerIndex,
		c.HandoverID, c.Depositor, c.Index)
	if err != nil {
		return fmt.Errorf("chunk %d of %s in %s: %w", c.Index, c.Depositor, c.HandoverID, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("chunk %d of %s in %s: %w", c.Index, c.Depositor, c.HandoverID, store.ErrNotFound)
	}
	return nil
}
