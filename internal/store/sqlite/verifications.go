package sqlite

import (
	"context"

	"github.com/parley-cti/parley/internal/store"
)

// AddVerification numbers v after the party's last upload; SQLite's single
// writer makes the MAX and the INSERT one step.
func (s keys) AddVerification(ctx context.Context, v store.Verification) (store.Verification, error) {
	err := s.w.QueryRowContext(ctx, `INSERT INTO ledger_verifications(party_id, seq, size, root, entries, verified_at, received_at, statement)
		SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ? FROM ledger_verifications WHERE party_id = ?
		RETURNING seq`,
		v.PartyID, v.Size, v.Root, v.Entries, micros(v.VerifiedAt), micros(v.ReceivedAt), v.Statement, v.PartyID).Scan(&v.Seq)
	if err != nil {
		return store.Verification{}, mapErr(err)
	}
	return v, nil
}

func (s keys) Verifications(ctx context.Context, partyID string, limit int) ([]store.Verification, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT party_id, seq, size, root, entries, verified_at, received_at, statement
		FROM ledger_verifications WHERE party_id = ? ORDER BY seq DESC LIMIT ?`, partyID, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Verification
	for rows.Next() {
		var v store.Verification
		var at, recv int64
		if err := rows.Scan(&v.PartyID, &v.Seq, &v.Size, &v.Root, &v.Entries, &at, &recv, &v.Statement); err != nil {
			return nil, mapErr(err)
		}
		v.VerifiedAt, v.ReceivedAt = fromMicros(at), fromMicros(recv)
		out = append(out, v)
	}
	return out, mapErr(rows.Err())
}
