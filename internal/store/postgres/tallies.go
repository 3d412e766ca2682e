package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

// The joint report's counts by type and TLP (store.Credits.Mark and
// Tally), as in the SQLite backend: credit_marks holds each credited
// contribution's type and TLP level by its ordinal, credit_tallies their
// sums per block of store.TallyBlock ordinals.

func (s credits) Mark(ctx context.Context, agreementID, partyID string, marks []store.Mark) error {
	if len(marks) == 0 {
		return nil
	}
	var ids []string
	seen := map[string]bool{}
	for _, m := range marks {
		if !seen[m.ObjectID] {
			seen[m.ObjectID] = true
			ids = append(ids, m.ObjectID)
		}
	}
	// Two lookups by key rather than one join: planned as a join, the
	// marks were read whole.
	rows, err := s.q.Query(ctx, `SELECT object_id, ord FROM agreement_credits
		WHERE agreement_id = $1 AND party_id = $2 AND object_id = ANY($3::text[])`, agreementID, partyID, ids)
	if err != nil {
		return fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
	}
	cur := map[string]*store.MarkRow{}
	for rows.Next() {
		r := &store.MarkRow{}
		if err := rows.Scan(&r.ObjectID, &r.Ord); err != nil {
			rows.Close()
			return fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
		}
		cur[r.ObjectID] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
	}
	if len(cur) == 0 {
		return nil
	}
	ords := make([]int64, 0, len(cur))
	byOrd := make(map[int64]*store.MarkRow, len(cur))
	for _, r := range cur {
		ords = append(ords, r.Ord)
		byOrd[r.Ord] = r
	}
	rows, err = s.q.Query(ctx, `SELECT ord, type, tlp, version FROM credit_marks
		WHERE agreement_id = $1 AND party_id = $2 AND ord = ANY($3::bigint[])`, agreementID, partyID, ords)
	if err != nil {
		return fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
	}
	for rows.Next() {
		var typ string
		var tlp int32
		var ord, version int64
		if err := rows.Scan(&ord, &typ, &tlp, &version); err != nil {
			rows.Close()
			return fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
		}
		if r := byOrd[ord]; r != nil {
			r.Type, r.TLP, r.Version, r.Exists = typ, int(tlp), version, true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
	}
	changed, delta := store.PlanMarks(cur, marks)
	return writeMarks(ctx, s.q, agreementID, partyID, changed, delta)
}

// writeMarks stores rows (new or changed marks) in one statement and adds
// delta to the tallies, one statement per tally row.
func writeMarks(ctx context.Context, q querier, agreementID, partyID string, rows []*store.MarkRow, delta map[store.TallyKey]int64) error {
	if len(rows) > 0 {
		oids, ords, types, versions := make([]string, len(rows)), make([]int64, len(rows)), make([]string, len(rows)), make([]int64, len(rows))
		tlps := make([]int32, len(rows))
		for i, r := range rows {
			oids[i], ords[i], types[i], tlps[i], versions[i] = r.ObjectID, r.Ord, r.Type, int32(r.TLP), r.Version
		}
		_, err := q.Exec(ctx, `INSERT INTO credit_marks(agreement_id, party_id, object_id, ord, type, tlp, version)
			SELECT $1::text, $2::text, * FROM unnest($3::text[], $4::bigint[], $5::text[], $6::int[], $7::bigint[])
			ON CONFLICT (agreement_id, party_id, ord) DO UPDATE SET type = excluded.type, tlp = excluded.tlp, version = excluded.version`,
			agreementID, partyID, oids, ords, types, tlps, versions)
		if err != nil {
			return fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
		}
	}
	for k, n := range delta {
		_, err := q.Exec(ctx, `INSERT INTO credit_tallies(agreement_id, party_id, block, type, tlp, n) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (agreement_id, party_id, block, type, tlp) DO UPDATE SET n = credit_tallies.n + excluded.n`,
			agreementID, partyID, k.Block, k.Type, k.TLP, n)
		if err != nil {
			return fmt.Errorf("agreement %s tallies: %w", agreementID, mapErr(err))
		}
	}
	return nil
}

func (s credits) Tally(ctx context.Context, agreementID, partyID string, upTo int64) ([]store.Tally, error) {
	if upTo <= 0 {
		return []store.Tally{}, nil
	}
	whole, from := store.TallyBounds(upTo)
	rows, err := s.q.Query(ctx, `SELECT type, tlp, SUM(n)::bigint FROM credit_tallies WHERE agreement_id = $1 AND party_id = $2 AND block < $3 GROUP BY type, tlp
		UNION ALL
		SELECT type, tlp, COUNT(*) FROM credit_marks WHERE agreement_id = $1 AND party_id = $2 AND ord >= $4 AND ord <= $5 GROUP BY type, tlp`,
		agreementID, partyID, whole, from, upTo)
	if err != nil {
		return nil, fmt.Errorf("agreement %s tally: %w", agreementID, mapErr(err))
	}
	var out []store.Tally
	for rows.Next() {
		var t store.Tally
		var tlp int32
		if err := rows.Scan(&t.Type, &tlp, &t.N); err != nil {
			rows.Close()
			return nil, fmt.Errorf("agreement %s tally: %w", agreementID, mapErr(err))
		}
		t.TLP = int(tlp)
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("agreement %s tally: %w", agreementID, mapErr(err))
	}
	return store.SumTallies(out), nil
}

func (s credits) Marked(ctx context.Context, agreementID, partyID string) (bool, error) {
	var one int32
	err := s.q.QueryRow(ctx, `SELECT 1 FROM credit_marks_pending WHERE agreement_id = $1 AND party_id = $2`, agreementID, partyID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
	}
	return false, nil
}

func (s credits) SetMarked(ctx context.Context, agreementID, partyID string) error {
	if _, err := s.q.Exec(ctx, `DELETE FROM credit_marks_pending WHERE agreement_id = $1 AND party_id = $2`, agreementID, partyID); err != nil {
		return fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
	}
	return nil
}
