package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

// AddVerification numbers v after the party's last upload. Two concurrent
// uploads by one party may take the same number: the second then fails
// with ErrConflict and the client uploads again.
func (s keys) AddVerification(ctx context.Context, v store.Verification) (store.Verification, error) {
	err := s.q.QueryRow(ctx, `INSERT INTO ledger_verifications(party_id, seq, size, root, entries, verified_at, received_at, statement)
		SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7 FROM ledger_verifications WHERE party_id = $1
		RETURNING seq`,
		v.PartyID, v.Size, v.Root, v.Entries, micros(v.VerifiedAt), micros(v.ReceivedAt), v.Statement).Scan(&v.Seq)
	if err != nil {
		return store.Verification{}, mapErr(err)
	}
	return v, nil
}

func (s keys) Verifications(ctx context.Context, partyID string, limit int) ([]store.Verification, error) {
	rows, err := s.q.Query(ctx, `SELECT party_id, seq, size, root, entries, verified_at, received_at, statement
		FROM ledger_verifications WHERE party_id = $1 ORDER BY seq DESC LIMIT $2`, partyID, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Verification, error) {
		var v store.Verification
		var at, recv int64
		if err := row.Scan(&v.PartyID, &v.Seq, &v.Size, &v.Root, &v.Entries, &at, &recv, &v.Statement); err != nil {
			return store.Verification{}, err
		}
		v.VerifiedAt, v.ReceivedAt = fromMicros(at), fromMicros(recv)
		return v, nil
	})
	return out, mapErr(err)
}
