package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

func (h handle) Matches() store.Matches { return matches(h) }

type matches handle

const matchCols = `id, agreement_id, session_id, cap, initiator, responder,
	i_upload, i_count, i_size, i_at, i_index, r_upload, r_count, r_size, r_at, r_index,
	handover_id, created_at, ledger_index`

func scanMatch(sc pgx.Row) (store.MatchSession, error) {
	var m store.MatchSession
	var iAt, rAt, created int64
	err := sc.Scan(&m.ID, &m.AgreementID, &m.SessionID, &m.Cap, &m.Initiator.PartyID, &m.Responder.PartyID,
		&m.Initiator.Upload, &m.Initiator.Count, &m.Initiator.Size, &iAt, &m.Initiator.LedgerIndex,
		&m.Responder.Upload, &m.Responder.Count, &m.Responder.Size, &rAt, &m.Responder.LedgerIndex,
		&m.HandoverID, &created, &m.LedgerIndex)
	if err != nil {
		return store.MatchSession{}, mapErr(err)
	}
	m.Initiator.At, m.Responder.At, m.CreatedAt = fromMicros(iAt), fromMicros(rAt), fromMicros(created)
	return m, nil
}

func (s matches) Create(ctx context.Context, m store.MatchSession) error {
	i, r := m.Initiator, m.Responder
	_, err := s.q.Exec(ctx, `INSERT INTO matches(`+matchCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		m.ID, m.AgreementID, m.SessionID, m.Cap, i.PartyID, r.PartyID,
		i.Upload, i.Count, i.Size, micros(i.At), i.LedgerIndex, r.Upload, r.Count, r.Size, micros(r.At), r.LedgerIndex,
		m.HandoverID, micros(m.CreatedAt), m.LedgerIndex)
	if err != nil {
		return fmt.Errorf("match %s: %w", m.ID, mapErr(err))
	}
	return nil
}

func (s matches) Get(ctx context.Context, id string) (store.MatchSession, error) {
	m, err := scanMatch(s.q.QueryRow(ctx, `SELECT `+matchCols+` FROM matches WHERE id = $1`, id))
	if err != nil {
		return store.MatchSession{}, fmt.Errorf("match %s: %w", id, err)
	}
	return m, nil
}

func (s matches) ListByParty(ctx context.Context, partyID, agreementID string) ([]store.MatchSession, error) {
	rows, err := s.q.Query(ctx, `SELECT `+matchCols+` FROM matches WHERE (initiator = $1 OR responder = $1)
		AND ($2 = '' OR agreement_id = $2) ORDER BY created_at DESC, id COLLATE "C"`, partyID, agreementID)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.MatchSession, error) { return scanMatch(row) })
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

func (s matches) PutChunk(ctx context.Context, id, partyID, upload string, seq int, data []byte) error {
	_, err := s.q.Exec(ctx, `INSERT INTO match_chunks(match_id, party_id, upload, seq, data) VALUES ($1, $2, $3, $4, $5)`,
		id, partyID, upload, seq, data)
	if err != nil {
		return fmt.Errorf("match %s chunk %d: %w", id, seq, mapErr(err))
	}
	return nil
}

func (s matches) Chunk(ctx context.Context, id, partyID, upload string, seq int) ([]byte, error) {
	var data []byte
	err := s.q.QueryRow(ctx, `SELECT data FROM match_chunks WHERE match_id = $1 AND party_id = $2 AND upload = $3 AND seq = $4`,
		id, partyID, upload, seq).Scan(&data)
	if err != nil {
		return nil, fmt.Errorf("match %s chunk %d: %w", id, seq, mapErr(err))
	}
	return data, nil
}

func (s matches) Uploads(ctx context.Context, id, partyID string) ([]string, error) {
	rows, err := s.q.Query(ctx, `SELECT DISTINCT upload FROM match_chunks WHERE match_id = $1 AND party_id = $2 ORDER BY upload`, id, partyID)
	if err != nil {
		return nil, fmt.Errorf("match %s uploads: %w", id, mapErr(err))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, u)
	}
	return out, mapErr(rows.Err())
}

func (s matches) CompleteRound1(ctx context.Context, id string, side store.MatchSide) error {
	m, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	col := ""
	switch side.PartyID {
	case m.Initiator.PartyID:
		col = "i_"
	case m.Responder.PartyID:
		col = "r_"
	default:
		return fmt.Errorf("match %s: %s is not a side: %w", id, side.PartyID, store.ErrNotFound)
	}
	// The upload = '' condition keeps the first completion when two race.
	tag, err := s.q.Exec(ctx, `UPDATE matches SET `+col+`upload = $1, `+col+`count = $2, `+col+`size = $3, `+col+`at = $4, `+col+`index = $5
		WHERE id = $6 AND `+col+`upload = ''`, side.Upload, side.Count, side.Size, micros(side.At), side.LedgerIndex, id)
	if err != nil {
		return fmt.Errorf("match %s: %w", id, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("match %s: round 1 of %s: %w", id, side.PartyID, store.ErrConflict)
	}
	return nil
}

func (s matches) DeleteChunks(ctx context.Context, id, partyID, keep string) (int, error) {
	tag, err := s.q.Exec(ctx, `DELETE FROM match_chunks WHERE match_id = $1 AND party_id = $2 AND upload <> $3`, id, partyID, keep)
	if err != nil {
		return 0, fmt.Errorf("match %s: %w", id, mapErr(err))
	}
	return int(tag.RowsAffected()), nil
}

func (s matches) DeleteUpload(ctx context.Context, id, partyID, upload string) (int, error) {
	tag, err := s.q.Exec(ctx, `DELETE FROM match_chunks WHERE match_id = $1 AND party_id = $2 AND upload = $3`, id, partyID, upload)
	if err != nil {
		return 0, fmt.Errorf("match %s: %w", id, mapErr(err))
	}
	return int(tag.RowsAffected()), nil
}
