package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

func (h handle) Handovers() store.Handovers { return handovers(h) }
func (h handle) Requests() store.Requests   { return requests(h) }
func (h handle) Events() store.Events       { return events(h) }

type handovers handle

const handoverCols = `id, agreement_id, proposer, counterpart, proposer_delivers, counterpart_delivers, request_id,
	deadline, state, created_at, decided_at, closed_at, near_notified, release_index`

func scanHandover(sc pgx.Row) (store.Handover, error) {
	var h store.Handover
	var deadline, created, decided, closed int64
	err := sc.Scan(&h.ID, &h.AgreementID, &h.Proposer, &h.Counterpart, &h.ProposerDelivers, &h.CounterpartDelivers, &h.RequestID,
		&deadline, &h.State, &created, &decided, &closed, &h.NearNotified, &h.ReleaseLedgerIndex)
	if err != nil {
		return store.Handover{}, mapErr(err)
	}
	h.Deadline, h.CreatedAt, h.DecidedAt, h.ClosedAt = fromMicros(deadline), fromMicros(created), fromMicros(decided), fromMicros(closed)
	return h, nil
}

func (s handovers) Create(ctx context.Context, h store.Handover) error {
	_, err := s.q.Exec(ctx, `INSERT INTO handovers(`+handoverCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		h.ID, h.AgreementID, h.Proposer, h.Counterpart, h.ProposerDelivers, h.CounterpartDelivers, h.RequestID,
		micros(h.Deadline), h.State, micros(h.CreatedAt), micros(h.DecidedAt), micros(h.ClosedAt), h.NearNotified, h.ReleaseLedgerIndex)
	if err != nil {
		return fmt.Errorf("handover %s: %w", h.ID, mapErr(err))
	}
	return nil
}

func (s handovers) Get(ctx context.Context, id string) (store.Handover, error) {
	h, err := scanHandover(s.q.QueryRow(ctx, `SELECT `+handoverCols+` FROM handovers WHERE id = $1`, id))
	if err != nil {
		return store.Handover{}, fmt.Errorf("handover %s: %w", id, err)
	}
	return h, nil
}

func (s handovers) Update(ctx context.Context, h store.Handover) error {
	tag, err := s.q.Exec(ctx, `UPDATE handovers SET state = $1, decided_at = $2, closed_at = $3, near_notified = $4, release_index = $5 WHERE id = $6`,
		h.State, micros(h.DecidedAt), micros(h.ClosedAt), h.NearNotified, h.ReleaseLedgerIndex, h.ID)
	if err != nil {
		return fmt.Errorf("handover %s: %w", h.ID, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("handover %s: %w", h.ID, store.ErrNotFound)
	}
	return nil
}

func (s handovers) list(ctx context.Context, q string, args ...any) ([]store.Handover, error) {
	rows, err := s.q.Query(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Handover, error) { return scanHandover(row) })
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

func (s handovers) ListByParty(ctx context.Context, partyID, agreementID string) ([]store.Handover, error) {
	return s.list(ctx, `SELECT `+handoverCols+` FROM handovers WHERE (proposer = $1 OR counterpart = $1) AND ($2 = '' OR agreement_id = $2)
		ORDER BY created_at DESC, id COLLATE "C"`, partyID, agreementID)
}

func (s handovers) Due(ctx context.Context, expireBefore, nearBefore time.Time, limit int) ([]store.Handover, error) {
	return s.list(ctx, `SELECT `+handoverCols+` FROM handovers WHERE state IN ('proposed', 'accepted')
		AND (deadline <= $1 OR (deadline <= $2 AND NOT near_notified)) ORDER BY deadline, id COLLATE "C" LIMIT $3`,
		micros(expireBefore), micros(nearBefore), limit)
}

func (s handovers) PutDeposit(ctx context.Context, d store.Deposit) error {
	_, err := s.q.Exec(ctx, `INSERT INTO handover_deposits(handover_id, party_id, sealed, content, sha256, objects, deposited_at, ledger_index, dispute, disputed_at, manifest, dispute_statement)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		d.HandoverID, d.PartyID, d.Sealed, d.Content, d.SHA256[:], d.Objects, micros(d.DepositedAt), d.LedgerIndex, d.Dispute, micros(d.DisputedAt), d.Manifest, d.DisputeStatement)
	if err != nil {
		return fmt.Errorf("deposit of %s in %s: %w", d.PartyID, d.HandoverID, mapErr(err))
	}
	return nil
}

const depositCols = `handover_id, party_id, sealed, sha256, objects, deposited_at, ledger_index, dispute, disputed_at, manifest, dispute_statement`

func scanDeposit(sc pgx.Row, content bool) (store.Deposit, error) {
	var d store.Deposit
	var sum []byte
	var at, disputed int64
	dest := []any{&d.HandoverID, &d.PartyID, &d.Sealed, &sum, &d.Objects, &at, &d.LedgerIndex, &d.Dispute, &disputed, &d.Manifest, &d.DisputeStatement}
	if content {
		dest = append(dest, &d.Content)
	}
	if err := sc.Scan(dest...); err != nil {
		return store.Deposit{}, mapErr(err)
	}
	copy(d.SHA256[:], sum)
	d.DepositedAt, d.DisputedAt = fromMicros(at), fromMicros(disputed)
	return d, nil
}

func (s handovers) Deposit(ctx context.Context, handoverID, partyID string) (store.Deposit, error) {
	d, err := scanDeposit(s.q.QueryRow(ctx, `SELECT `+depositCols+`, content FROM handover_deposits WHERE handover_id = $1 AND party_id = $2`,
		handoverID, partyID), true)
	if err != nil {
		return store.Deposit{}, fmt.Errorf("deposit of %s in %s: %w", partyID, handoverID, err)
	}
	d.Size = int64(len(d.Content))
	return d, nil
}

// DepositPart reads the part with substring, which fetches from a
// TOASTed value only the chunks the part lies in, and the size with
// octet_length.
func (s handovers) DepositPart(ctx context.Context, handoverID, partyID string, offset, n int64) (store.Deposit, error) {
	if err := store.CheckPart(offset, n); err != nil {
		return store.Deposit{}, err
	}
	var d store.Deposit
	var sum []byte
	var at, disputed int64
	err := s.q.QueryRow(ctx, `SELECT `+depositCols+`, octet_length(content), substring(content from $3::bigint::int for $4::bigint::int)
		FROM handover_deposits WHERE handover_id = $1 AND party_id = $2`, handoverID, partyID, min(offset, math.MaxInt32-1)+1, min(n, math.MaxInt32)).Scan(
		&d.HandoverID, &d.PartyID, &d.Sealed, &sum, &d.Objects, &at, &d.LedgerIndex, &d.Dispute, &disputed, &d.Manifest, &d.DisputeStatement, &d.Size, &d.Content)
	if err != nil {
		return store.Deposit{}, fmt.Errorf("deposit of %s in %s: %w", partyID, handoverID, mapErr(err))
	}
	copy(d.SHA256[:], sum)
	d.DepositedAt, d.DisputedAt = fromMicros(at), fromMicros(disputed)
	return d, nil
}

func (s handovers) Deposits(ctx context.Context, handoverID string) ([]store.Deposit, error) {
	rows, err := s.q.Query(ctx, `SELECT `+depositCols+` FROM handover_deposits WHERE handover_id = $1 ORDER BY deposited_at, party_id COLLATE "C"`, handoverID)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Deposit, error) { return scanDeposit(row, false) })
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

func (s handovers) DeleteDeposit(ctx context.Context, handoverID, partyID string) (bool, error) {
	tag, err := s.q.Exec(ctx, `DELETE FROM handover_deposits WHERE handover_id = $1 AND party_id = $2`, handoverID, partyID)
	if err != nil {
		return false, fmt.Errorf("deposit of %s in %s: %w", partyID, handoverID, mapErr(err))
	}
	return tag.RowsAffected() > 0, nil
}

// SetDispute updates only an undisputed deposit, so that of two disputes
// racing on different instances the first stands; when nothing was
// updated, a second read says why.
func (s handovers) SetDispute(ctx context.Context, handoverID, partyID, text string, statement []byte, at time.Time) error {
	tag, err := s.q.Exec(ctx, `UPDATE handover_deposits SET dispute = $1, disputed_at = $2, dispute_statement = $5 WHERE handover_id = $3 AND party_id = $4 AND dispute = ''`,
		text, micros(at), handoverID, partyID, statement)
	if err != nil {
		return fmt.Errorf("deposit of %s in %s: %w", partyID, handoverID, mapErr(err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	err = s.q.QueryRow(ctx, `SELECT 1 FROM handover_deposits WHERE handover_id = $1 AND party_id = $2`, handoverID, partyID).Scan(&one)
	if err != nil {
		return fmt.Errorf("deposit of %s in %s: %w", partyID, handoverID, mapErr(err))
	}
	return fmt.Errorf("deposit of %s in %s is already disputed: %w", partyID, handoverID, store.ErrConflict)
}

type requests handle

const requestCols = `id, agreement_id, requester, responder, subject, refs, reason, urgency, state, filed_at, ack_by, fulfil_by,
	acknowledged_at, answered_at, ground, ground_text, handover_id, ack_overdue, answer_overdue, near_notified`

func scanRequest(sc pgx.Row) (store.Request, error) {
	var r store.Request
	var refs string
	var filed, ackBy, fulfilBy, acked, answered int64
	err := sc.Scan(&r.ID, &r.AgreementID, &r.Requester, &r.Responder, &r.Subject, &refs, &r.Reason, &r.Urgency, &r.State,
		&filed, &ackBy, &fulfilBy, &acked, &answered, &r.Ground, &r.GroundText, &r.HandoverID, &r.AckOverdue, &r.AnswerOverdue, &r.NearNotified)
	if err != nil {
		return store.Request{}, mapErr(err)
	}
	if err := json.Unmarshal([]byte(refs), &r.Refs); err != nil {
		return store.Request{}, fmt.Errorf("request %s: stored refs: %w", r.ID, err)
	}
	r.FiledAt, r.AckBy, r.FulfilBy = fromMicros(filed), fromMicros(ackBy), fromMicros(fulfilBy)
	r.AcknowledgedAt, r.AnsweredAt = fromMicros(acked), fromMicros(answered)
	return r, nil
}

func (s requests) Create(ctx context.Context, r store.Request) error {
	refs := r.Refs
	if refs == nil {
		refs = []string{}
	}
	rj, err := json.Marshal(refs)
	if err != nil {
		return fmt.Errorf("request %s refs: %w", r.ID, err)
	}
	_, err = s.q.Exec(ctx, `INSERT INTO requests(`+requestCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		r.ID, r.AgreementID, r.Requester, r.Responder, r.Subject, string(rj), r.Reason, r.Urgency, r.State,
		micros(r.FiledAt), micros(r.AckBy), micros(r.FulfilBy), micros(r.AcknowledgedAt), micros(r.AnsweredAt),
		r.Ground, r.GroundText, r.HandoverID, r.AckOverdue, r.AnswerOverdue, r.NearNotified)
	if err != nil {
		return fmt.Errorf("request %s: %w", r.ID, mapErr(err))
	}
	return nil
}

func (s requests) Get(ctx context.Context, id string) (store.Request, error) {
	r, err := scanRequest(s.q.QueryRow(ctx, `SELECT `+requestCols+` FROM requests WHERE id = $1`, id))
	if err != nil {
		return store.Request{}, fmt.Errorf("request %s: %w", id, err)
	}
	return r, nil
}

func (s requests) Update(ctx context.Context, r store.Request) error {
	tag, err := s.q.Exec(ctx, `UPDATE requests SET state = $1, acknowledged_at = $2, answered_at = $3, ground = $4, ground_text = $5,
		handover_id = $6, ack_overdue = $7, answer_overdue = $8, near_notified = $9 WHERE id = $10`,
		r.State, micros(r.AcknowledgedAt), micros(r.AnsweredAt), r.Ground, r.GroundText, r.HandoverID,
		r.AckOverdue, r.AnswerOverdue, r.NearNotified, r.ID)
	if err != nil {
		return fmt.Errorf("request %s: %w", r.ID, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("request %s: %w", r.ID, store.ErrNotFound)
	}
	return nil
}

func (s requests) list(ctx context.Context, q string, args ...any) ([]store.Request, error) {
	rows, err := s.q.Query(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Request, error) { return scanRequest(row) })
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

func (s requests) ListByParty(ctx context.Context, partyID, agreementID string) ([]store.Request, error) {
	return s.list(ctx, `SELECT `+requestCols+` FROM requests WHERE (requester = $1 OR responder = $1) AND ($2 = '' OR agreement_id = $2)
		ORDER BY filed_at DESC, id COLLATE "C"`, partyID, agreementID)
}

func (s requests) ListByAgreement(ctx context.Context, agreementID string) ([]store.Request, error) {
	return s.list(ctx, `SELECT `+requestCols+` FROM requests WHERE agreement_id = $1 ORDER BY filed_at, id COLLATE "C"`, agreementID)
}

func (s requests) Due(ctx context.Context, before, near time.Time, limit int) ([]store.Request, error) {
	return s.list(ctx, `SELECT `+requestCols+` FROM requests WHERE state IN ('filed', 'acknowledged') AND (
			(state = 'filed' AND ack_by <= $1 AND NOT ack_overdue)
			OR (fulfil_by <= $1 AND NOT answer_overdue)
			OR (NOT near_notified AND (fulfil_by <= $2 OR (state = 'filed' AND ack_by <= $2))))
		ORDER BY filed_at, id COLLATE "C" LIMIT $3`, micros(before), micros(near), limit)
}

type events handle

// Append is one statement: bumping the party's counter row locks it until
// the transaction ends, so concurrent appends for one party, from any
// instance, take consecutive numbers, and a rolled-back one takes none.
func (s events) Append(ctx context.Context, e store.Event) (int64, error) {
	data := e.Data
	if data == nil {
		data = []byte("{}")
	}
	var seq int64
	err := s.q.QueryRow(ctx, `WITH head AS (
			INSERT INTO event_heads(party_id, seq) VALUES ($1, 1)
			ON CONFLICT (party_id) DO UPDATE SET seq = event_heads.seq + 1 RETURNING seq)
		INSERT INTO events(party_id, seq, kind, subject, data, at) SELECT $1, head.seq, $2, $3, $4, $5 FROM head
		RETURNING seq`, e.PartyID, e.Kind, e.Subject, data, micros(e.At)).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("event for %s: %w", e.PartyID, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("event for %s: %w", e.PartyID, mapErr(err))
	}
	return seq, nil
}

func (s events) After(ctx context.Context, partyID string, after int64, limit int) ([]store.Event, error) {
	rows, err := s.q.Query(ctx, `SELECT party_id, seq, kind, subject, data, at FROM events WHERE party_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		partyID, after, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Event, error) {
		var e store.Event
		var at int64
		err := row.Scan(&e.PartyID, &e.Seq, &e.Kind, &e.Subject, &e.Data, &at)
		e.At = fromMicros(at)
		return e, err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

func (s events) Before(ctx context.Context, partyID string, before int64, limit int) ([]store.Event, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.q.Query(ctx, `SELECT party_id, seq, kind, subject, data, at FROM events WHERE party_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`,
		partyID, before, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Event, error) {
		var e store.Event
		var at int64
		err := row.Scan(&e.PartyID, &e.Seq, &e.Kind, &e.Subject, &e.Data, &at)
		e.At = fromMicros(at)
		return e, err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}
