package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

func (h handle) HeldCases() store.HeldCases { return heldCases(h) }

type heldCases handle

const heldCols = `handover_id, agreement_id, document_sha256, document, proposer, counterpart, proposer_node, counterpart_node,
	deadline, state, created_at, closed_at, release_index`

func scanHeld(sc interface{ Scan(...any) error }) (store.HeldCase, error) {
	var c store.HeldCase
	var deadline, created, closed int64
	if err := sc.Scan(&c.HandoverID, &c.AgreementID, &c.DocumentSHA256, &c.Document, &c.Proposer, &c.Counterpart, &c.ProposerNode,
		&c.CounterpartNode, &deadline, &c.State, &created, &closed, &c.ReleaseIndex); err != nil {
		return store.HeldCase{}, mapErr(err)
	}
	c.Deadline, c.CreatedAt, c.ClosedAt = fromMicros(deadline), fromMicros(created), fromMicros(closed)
	return c, nil
}

// Inserts that may meet an existing row use ON CONFLICT DO NOTHING: a
// unique violation would abort the caller's whole transaction.

func (s heldCases) Create(ctx context.Context, c store.HeldCase) error {
	tag, err := s.q.Exec(ctx, `INSERT INTO escrow_held(`+heldCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING`,
		c.HandoverID, c.AgreementID, c.DocumentSHA256, c.Document, c.Proposer, c.Counterpart, c.ProposerNode, c.CounterpartNode,
		micros(c.Deadline), c.State, micros(c.CreatedAt), micros(c.ClosedAt), c.ReleaseIndex)
	if err != nil {
		return fmt.Errorf("held case %s: %w", c.HandoverID, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("held case %s exists: %w", c.HandoverID, store.ErrConflict)
	}
	return nil
}

// Lock takes the case's row lock: a second deposit or the sweeper waits
// for the first to commit and then reads what it wrote.
func (s heldCases) Lock(ctx context.Context, id string) error {
	q := `SELECT 1 FROM escrow_held WHERE handover_id = $1`
	if s.tx != nil {
		q += ` FOR UPDATE`
	}
	var one int
	if err := s.q.QueryRow(ctx, q, id).Scan(&one); err != nil {
		return fmt.Errorf("held case %s: %w", id, mapErr(err))
	}
	return nil
}

func (s heldCases) Get(ctx context.Context, id string) (store.HeldCase, error) {
	c, err := scanHeld(s.q.QueryRow(ctx, `SELECT `+heldCols+` FROM escrow_held WHERE handover_id = $1`, id))
	if err != nil {
		return store.HeldCase{}, fmt.Errorf("held case %s: %w", id, err)
	}
	return c, nil
}

func (s heldCases) Update(ctx context.Context, c store.HeldCase) error {
	tag, err := s.q.Exec(ctx, `UPDATE escrow_held SET state = $1, closed_at = $2, release_index = $3 WHERE handover_id = $4`,
		c.State, micros(c.ClosedAt), c.ReleaseIndex, c.HandoverID)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("held case %s: %w", c.HandoverID, store.ErrNotFound)
	}
	return nil
}

func (s heldCases) Due(ctx context.Context, before time.Time, limit int) ([]store.HeldCase, error) {
	rows, err := s.q.Query(ctx, `SELECT `+heldCols+` FROM escrow_held WHERE state IN ($1, $2) AND deadline <= $3
		ORDER BY deadline, handover_id COLLATE "C" LIMIT $4`, store.HeldProposed, store.HeldAccepted, micros(before), limit)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.HeldCase, error) { return scanHeld(row) })
	return out, mapErr(err)
}

func (s heldCases) PutDeposit(ctx context.Context, d store.HeldDeposit) error {
	if _, err := s.Get(ctx, d.HandoverID); err != nil {
		return err
	}
	tag, err := s.q.Exec(ctx, `INSERT INTO escrow_held_deposits(handover_id, party_id, content, sha256, deposited_at, ledger_index)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, d.HandoverID, d.PartyID, d.Content, d.SHA256[:], micros(d.DepositedAt), d.LedgerIndex)
	if err != nil {
		return fmt.Errorf("deposit of %s in held case %s: %w", d.PartyID, d.HandoverID, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("deposit of %s in held case %s exists: %w", d.PartyID, d.HandoverID, store.ErrConflict)
	}
	return nil
}

func (s heldCases) Deposit(ctx context.Context, handoverID, partyID string) (store.HeldDeposit, error) {
	d := store.HeldDeposit{HandoverID: handoverID, PartyID: partyID}
	var sum []byte
	var at int64
	err := s.q.QueryRow(ctx, `SELECT content, sha256, deposited_at, ledger_index FROM escrow_held_deposits WHERE handover_id = $1 AND party_id = $2`,
		handoverID, partyID).Scan(&d.Content, &sum, &at, &d.LedgerIndex)
	if err != nil {
		return store.HeldDeposit{}, fmt.Errorf("deposit of %s in held case %s: %w", partyID, handoverID, mapErr(err))
	}
	copy(d.SHA256[:], sum)
	d.DepositedAt, d.Size = fromMicros(at), int64(len(d.Content))
	return d, nil
}

// DepositPart reads as handovers.DepositPart does.
func (s heldCases) DepositPart(ctx context.Context, handoverID, partyID string, offset, n int64) (store.HeldDeposit, error) {
	if err := store.CheckPart(offset, n); err != nil {
		return store.HeldDeposit{}, err
	}
	d := store.HeldDeposit{HandoverID: handoverID, PartyID: partyID}
	var sum []byte
	var at int64
	err := s.q.QueryRow(ctx, `SELECT substring(content from $3::bigint::int for $4::bigint::int), octet_length(content), sha256, deposited_at, ledger_index
		FROM escrow_held_deposits WHERE handover_id = $1 AND party_id = $2`, handoverID, partyID, min(offset, math.MaxInt32-1)+1, min(n, math.MaxInt32)).Scan(
		&d.Content, &d.Size, &sum, &at, &d.LedgerIndex)
	if err != nil {
		return store.HeldDeposit{}, fmt.Errorf("deposit of %s in held case %s: %w", partyID, handoverID, mapErr(err))
	}
	copy(d.SHA256[:], sum)
	d.DepositedAt = fromMicros(at)
	return d, nil
}

func (s heldCases) List(ctx context.Context, limit int) ([]store.HeldCase, error) {
	rows, err := s.q.Query(ctx, `SELECT `+heldCols+` FROM escrow_held ORDER BY created_at DESC, handover_id COLLATE "C" DESC LIMIT $1`, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.HeldCase, error) { return scanHeld(row) })
	return out, mapErr(err)
}

func (s heldCases) Deposits(ctx context.Context, handoverID string) ([]store.HeldDeposit, error) {
	rows, err := s.q.Query(ctx, `SELECT party_id, octet_length(content), sha256, deposited_at, ledger_index FROM escrow_held_deposits
		WHERE handover_id = $1 ORDER BY deposited_at, party_id COLLATE "C"`, handoverID)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.HeldDeposit, error) {
		d := store.HeldDeposit{HandoverID: handoverID}
		var sum []byte
		var at int64
		if err := row.Scan(&d.PartyID, &d.Size, &sum, &at, &d.LedgerIndex); err != nil {
			return store.HeldDeposit{}, err
		}
		copy(d.SHA256[:], sum)
		d.DepositedAt = fromMicros(at)
		return d, nil
	})
	return out, mapErr(err)
}

func (s heldCases) DeleteDeposits(ctx context.Context, handoverID string) (int, error) {
	tag, err := s.q.Exec(ctx, `DELETE FROM escrow_held_deposits WHERE handover_id = $1`, handoverID)
	if err != nil {
		return 0, mapErr(err)
	}
	return int(tag.RowsAffected()), nil
}
