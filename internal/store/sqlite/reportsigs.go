package sqlite

import (
	"context"
	"fmt"

	"github.com/parley-cti/parley/internal/store"
)

func (s agreements) AddReportSignature(ctx context.Context, rs store.ReportSignature) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO report_signatures(agreement_id, ledger_index, party_id, key_id, report_hash, period_from, period_to, signed_at, statement)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, rs.AgreementID, rs.LedgerIndex, rs.PartyID, rs.KeyID, rs.ReportHash,
		micros(rs.From), micros(rs.To), micros(rs.SignedAt), rs.Statement)
	if err != nil {
		return fmt.Errorf("report signature at ledger %d: %w", rs.LedgerIndex, mapErr(err))
	}
	return nil
}

func (s agreements) ReportSignatures(ctx context.Context, agreementID string) ([]store.ReportSignature, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT agreement_id, ledger_index, party_id, key_id, report_hash, period_from, period_to, signed_at, statement
		FROM report_signatures WHERE agreement_id = ? ORDER BY ledger_index`, agreementID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.ReportSignature
	for rows.Next() {
		var rs store.ReportSignature
		var from, to, at int64
		if err := rows.Scan(&rs.AgreementID, &rs.LedgerIndex, &rs.PartyID, &rs.KeyID, &rs.ReportHash, &from, &to, &at, &rs.Statement); err != nil {
			return nil, mapErr(err)
		}
		rs.From, rs.To, rs.SignedAt = fromMicros(from), fromMicros(to), fromMicros(at)
		out = append(out, rs)
	}
	return out, mapErr(rows.Err())
}
