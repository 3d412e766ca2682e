package sqlite

import (
	"context"
	"fmt"
	"time"

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

func (s heldCases) Create(ctx context.Context, c store.HeldCase) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO escrow_held(`+heldCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.HandoverID, c.AgreementID, c.DocumentSHA256, c.Document, c.Proposer, c.Counterpart, c.ProposerNode, c.CounterpartNode,
		micros(c.Deadline), c.State, micros(c.CreatedAt), micros(c.ClosedAt), c.ReleaseIndex)
	if err != nil {
		return fmt.Errorf("held case %s: %w", c.HandoverID, mapErr(err))
	}
	return nil
}

// Lock reads through the writer: inside Update that is the one write
// transaction, which already excludes every other writer.
func (s heldCases) Lock(ctx context.Context, id string) error {
	var one int
	if err := s.w.QueryRowContext(ctx, `SELECT 1 FROM escrow_held WHERE handover_id = ?`, id).Scan(&one); err != nil {
		return fmt.Errorf("held case %s: %w", id, mapErr(err))
	}
	return nil
}

func (s heldCases) Get(ctx context.Context, id string) (store.HeldCase, error) {
	c, err := scanHeld(s.r.QueryRowContext(ctx, `SELECT `+heldCols+` FROM escrow_held WHERE handover_id = ?`, id))
	if err != nil {
		return store.HeldCase{}, fmt.Errorf("held case %s: %w", id, err)
	}
	return c, nil
}

func (s heldCases) Update(ctx context.Context, c store.HeldCase) error {
	res, err := s.w.ExecContext(ctx, `UPDATE escrow_held SET state = ?, closed_at = ?, release_index = ? WHERE handover_id = ?`,
		c.State, micros(c.ClosedAt), c.ReleaseIndex, c.HandoverID)
	if err != nil {
		return mapErr(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return mapErr(err)
	} else if n == 0 {
		return fmt.Errorf("held case %s: %w", c.HandoverID, store.ErrNotFound)
	}
	return nil
}

func (s heldCases) Due(ctx context.Context, before time.Time, limit int) ([]store.HeldCase, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+heldCols+` FROM escrow_held WHERE state IN (?, ?) AND deadline <= ?
		ORDER BY deadline, handover_id LIMIT ?`, store.HeldProposed, store.HeldAccepted, micros(before), limit)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.HeldCase
	for rows.Next() {
		c, err := scanHeld(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

func (s heldCases) PutDeposit(ctx context.Context, d store.HeldDeposit) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO escrow_held_deposits(handover_id, party_id, content, sha256, deposited_at, ledger_index)
		VALUES (?, ?, ?, ?, ?, ?)`, d.HandoverID, d.PartyID, d.Content, d.SHA256[:], micros(d.DepositedAt), d.LedgerIndex)
	if err != nil {
		return fmt.Errorf("deposit of %s in held case %s: %w", d.PartyID, d.HandoverID, mapErr(err))
	}
	return nil
}

func (s heldCases) Deposit(ctx context.Context, handoverID, partyID string) (store.HeldDeposit, error) {
	d := store.HeldDeposit{HandoverID: handoverID, PartyID: partyID}
	var sum []byte
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT content, sha256, deposited_at, ledger_index FROM escrow_held_deposits WHERE handover_id = ? AND party_id = ?`,
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
	err := s.r.QueryRowContext(ctx, `SELECT substr(content, ?, ?), length(content), sha256, deposited_at, ledger_index FROM escrow_held_deposits
		WHERE handover_id = ? AND party_id = ?`, offset+1, n, handoverID, partyID).Scan(&d.Content, &d.Size, &sum, &at, &d.LedgerIndex)
	if err != nil {
		return store.HeldDeposit{}, fmt.Errorf("deposit of %s in held case %s: %w", partyID, handoverID, mapErr(err))
	}
	copy(d.SHA256[:], sum)
	d.DepositedAt = fromMicros(at)
	return d, nil
}

func (s heldCases) List(ctx context.Context, limit int) ([]store.HeldCase, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+heldCols+` FROM escrow_held ORDER BY created_at DESC, handover_id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.HeldCase
	for rows.Next() {
		c, err := scanHeld(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

func (s heldCases) Deposits(ctx context.Context, handoverID string) ([]store.HeldDeposit, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT party_id, length(content), sha256, deposited_at, ledger_index FROM escrow_held_deposits
		WHERE handover_id = ? ORDER BY deposited_at, party_id`, handoverID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.HeldDeposit
	for rows.Next() {
		d := store.HeldDeposit{HandoverID: handoverID}
		var sum []byte
		var at int64
		if err := rows.Scan(&d.PartyID, &d.Size, &sum, &at, &d.LedgerIndex); err != nil {
			return nil, mapErr(err)
		}
		copy(d.SHA256[:], sum)
		d.DepositedAt = fromMicros(at)
		out = append(out, d)
	}
	return out, mapErr(rows.Err())
}

func (s heldCases) DeleteDeposits(ctx context.Context, handoverID string) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM escrow_held_deposits WHERE handover_id = ?`, handoverID)
	if err != nil {
		return 0, mapErr(err)
	}
	n, err := res.RowsAffected()
	return int(n), mapErr(err)
}
