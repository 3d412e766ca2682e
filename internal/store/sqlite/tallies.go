package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/parley-cti/parley/internal/store"
)

// The joint report's counts by type and TLP (store.Credits.Mark and
// Tally): each credit row holds its contribution's type and TLP level
// (mark_type, mark_tlp, mark_version: migration 34), credit_tallies their
// sums per block of store.TallyBlock ordinals.

// markChunk bounds the ids of one statement: an envelope of 1,000 is five
// full chunks.
const markChunk = 200

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
	cur := map[string]*store.MarkRow{}
	for len(ids) > 0 {
		n := min(len(ids), markChunk)
		args := keysOfIDsArgs([]any{agreementID, partyID}, ids[:n])
		ids = ids[n:]
		rows, err := s.w.QueryContext(ctx, `SELECT c.object_id, c.ord, c.mark_type, c.mark_tlp, c.mark_version FROM agreement_credits c
			WHERE c.ag = `+creditName+` AND +c.pa = `+creditName+` AND c.key IN (`+keysOfIDs(n)+`)`, args...)
		if err != nil {
			return fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
		}
		for rows.Next() {
			r := &store.MarkRow{}
			var typ sql.NullString
			var tlp, version sql.NullInt64
			if err := rows.Scan(&r.ObjectID, &r.Ord, &typ, &tlp, &version); err != nil {
				rows.Close()
				return fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
			}
			r.Type, r.TLP, r.Version, r.Exists = typ.String, int(tlp.Int64), version.Int64, typ.Valid
			cur[r.ObjectID] = r
		}
		if err := rows.Close(); err != nil {
			return mapErr(err)
		}
		if err := rows.Err(); err != nil {
			return mapErr(err)
		}
	}
	changed, delta := store.PlanMarks(cur, marks)
	return writeMarks(ctx, handle(s), agreementID, partyID, changed, delta)
}

// writeMarks stores rows (changed marks of credits already stored) in
// their credit rows and adds delta to the tallies: one statement per
// markChunk marks, one per tally row. Contribute writes the marks of the
// credits it makes in their INSERT and calls it for the tallies alone.
func writeMarks(ctx context.Context, h handle, agreementID, partyID string, rows []*store.MarkRow, delta map[store.TallyKey]int64) error {
	// One UPDATE per chunk, the marks joined in as a VALUES list; each row
	// is found by its ordinal (the table's key).
	const row = `(?, ?, ?, ?)`
	update := &chunked{q: h.w, full: markChunk, sql: func(n int) string {
		return `WITH m(ord, type, tlp, version) AS (VALUES ` + row + strings.Repeat(`, `+row, n-1) + `)
			UPDATE agreement_credits SET mark_type = m.type, mark_tlp = m.tlp, mark_version = m.version
			FROM m WHERE agreement_credits.ag = ` + creditName + ` AND agreement_credits.pa = ` + creditName + ` AND agreement_credits.ord = m.ord`
	}}
	defer update.close()
	for len(rows) > 0 {
		n := min(len(rows), markChunk)
		args := make([]any, 0, 4*n+2)
		for _, r := range rows[:n] {
			args = append(args, r.Ord, r.Type, r.TLP, r.Version)
		}
		args = append(args, agreementID, partyID)
		rows = rows[n:]
		if err := update.exec(ctx, n, args); err != nil {
			return fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
		}
	}
	for k, n := range delta {
		_, err := h.w.ExecContext(ctx, `INSERT INTO credit_tallies(agreement_id, party_id, block, type, tlp, n) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT(agreement_id, party_id, block, type, tlp) DO UPDATE SET n = n + excluded.n`, agreementID, partyID, k.Block, k.Type, k.TLP, n)
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
	rows, err := s.r.QueryContext(ctx, `SELECT type, tlp, SUM(n) FROM credit_tallies WHERE agreement_id = ? AND party_id = ? AND block < ? GROUP BY type, tlp
		UNION ALL
		SELECT mark_type, mark_tlp, COUNT(*) FROM agreement_credits
			WHERE ag = `+creditName+` AND pa = `+creditName+` AND ord >= ? AND ord <= ? AND mark_type IS NOT NULL GROUP BY mark_type, mark_tlp`,
		agreementID, partyID, whole, agreementID, partyID, from, upTo)
	if err != nil {
		return nil, fmt.Errorf("agreement %s tally: %w", agreementID, mapErr(err))
	}
	defer rows.Close()
	var out []store.Tally
	for rows.Next() {
		var t store.Tally
		if err := rows.Scan(&t.Type, &t.TLP, &t.N); err != nil {
			return nil, fmt.Errorf("agreement %s tally: %w", agreementID, mapErr(err))
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	return store.SumTallies(out), nil
}

func (s credits) Marked(ctx context.Context, agreementID, partyID string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM credit_marks_pending WHERE agreement_id = ? AND party_id = ?`, agreementID, partyID).Scan(&one)
	if err == sql.ErrNoRows {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("agreement %s marks: %w", agreementID, mapErr(err))
	}
	return false, nil
}

func (s credits) SetMarked(ctx context.Context, agreementID, partyID string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM credit_marks_pending WHERE agreement_id = ? AND party_id = ?`, agreementID, partyID)
	return mapErr(err)
}
