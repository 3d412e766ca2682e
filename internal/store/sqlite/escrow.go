package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

func (h handle) Handovers() store.Handovers { return handovers(h) }
func (h handle) Requests() store.Requests   { return requests(h) }
func (h handle) Events() store.Events       { return events(h) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type handovers handle

const handoverCols = `id, agreement_id, proposer, counterpart, proposer_delivers, counterpart_delivers, request_id,
	deadline, state, created_at, decided_at, closed_at, near_notified, release_index`

func scanHandover(sc interface{ Scan(...any) error }) (store.Handover, error) {
	var h store.Handover
	var deadline, created, decided, closed int64
	var near int
	err := sc.Scan(&h.ID, &h.AgreementID, &h.Proposer, &h.Counterpart, &h.ProposerDelivers, &h.CounterpartDelivers, &h.RequestID,
		&deadline, &h.State, &created, &decided, &closed, &near, &h.ReleaseLedgerIndex)
	if err != nil {
		return store.Handover{}, mapErr(err)
	}
	h.Deadline, h.CreatedAt, h.DecidedAt, h.ClosedAt = fromMicros(deadline), fromMicros(created), fromMicros(decided), fromMicros(closed)
	h.NearNotified = near != 0
	return h, nil
}

func (s handovers) Create(ctx context.Context, h store.Handover) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO handovers(`+handoverCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		h.ID, h.AgreementID, h.Proposer, h.Counterpart, h.ProposerDelivers, h.CounterpartDelivers, h.RequestID,
		micros(h.Deadline), h.State, micros(h.CreatedAt), micros(h.DecidedAt), micros(h.ClosedAt), boolInt(h.NearNotified), h.ReleaseLedgerIndex)
	return mapErr(err)
}

func (s handovers) Get(ctx context.Context, id string) (store.Handover, error) {
	h, err := scanHandover(s.r.QueryRowContext(ctx, `SELECT `+handoverCols+` FROM handovers WHERE id = ?`, id))
	if err != nil {
		return store.Handover{}, fmt.Errorf("handover %s: %w", id, err)
	}
	return h, nil
}

func (s handovers) Update(ctx context.Context, h store.Handover) error {
	res, err := s.w.ExecContext(ctx, `UPDATE handovers SET state = ?, decided_at = ?, closed_at = ?, near_notified = ?, release_index = ? WHERE id = ?`,
		h.State, micros(h.DecidedAt), micros(h.ClosedAt), boolInt(h.NearNotified), h.ReleaseLedgerIndex, h.ID)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("handover %s: %w", h.ID, store.ErrNotFound)
	}
	return nil
}

func (s handovers) list(ctx context.Context, q string, args ...any) ([]store.Handover, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Handover
	for rows.Next() {
		h, err := scanHandover(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, mapErr(rows.Err())
}

func (s handovers) ListByParty(ctx context.Context, partyID, agreementID string) ([]store.Handover, error) {
	return s.list(ctx, `SELECT `+handoverCols+` FROM handovers WHERE (proposer = ? OR counterpart = ?) AND (? = '' OR agreement_id = ?)
		ORDER BY created_at DESC, id`, partyID, partyID, agreementID, agreementID)
}

func (s handovers) Due(ctx context.Context, expireBefore, nearBefore time.Time, limit int) ([]store.Handover, error) {
	return s.list(ctx, `SELECT `+handoverCols+` FROM handovers WHERE state IN ('proposed', 'accepted')
		AND (deadline <= ? OR (deadline <= ? AND near_notified = 0)) ORDER BY deadline, id LIMIT ?`,
		micros(expireBefore), micros(nearBefore), limit)
}

func (s handovers) PutDeposit(ctx context.Context, d store.Deposit) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO handover_deposits(handover_id, party_id, sealed, content, sha256, objects, deposited_at, ledger_index, dispute, disputed_at, manifest, dispute_statement)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.HandoverID, d.PartyID, boolInt(d.Sealed), d.Content, d.SHA256[:], d.Objects, micros(d.DepositedAt), d.LedgerIndex, d.Dispute, micros(d.DisputedAt), d.Manifest, d.DisputeStatement)
	return mapErr(err)
}

func scanDeposit(sc interface{ Scan(...any) error }, content bool) (store.Deposit, error) {
	var d store.Deposit
	var sealed int
	var sum []byte
	var at, disputed int64
	dest := []any{&d.HandoverID, &d.PartyID, &sealed, &sum, &d.Objects, &at, &d.LedgerIndex, &d.Dispute, &disputed, &d.Manifest, &d.DisputeStatement}
	if content {
		dest = append(dest, &d.Content)
	}
	if err := sc.Scan(dest...); err != nil {
		return store.Deposit{}, mapErr(err)
	}
	d.Sealed = sealed != 0
	copy(d.SHA256[:], sum)
	d.DepositedAt, d.DisputedAt = fromMicros(at), fromMicros(disputed)
	return d, nil
}

const depositCols = `handover_id, party_id, sealed, sha256, objects, deposited_at, ledger_index, dispute, disputed_at, manifest, dispute_statement`

func (s handovers) Deposit(ctx context.Context, handoverID, partyID string) (store.Deposit, error) {
	d, err := scanDeposit(s.r.QueryRowContext(ctx, `SELECT `+depositCols+`, content FROM handover_deposits WHERE handover_id = ? AND party_id = ?`,
		handoverID, partyID), true)
	if err != nil {
		return store.Deposit{}, fmt.Errorf("deposit of %s in %s: %w", partyID, handoverID, err)
	}
	d.Size = int64(len(d.Content))
	return d, nil
}

// DepositPart reads the part with substr, which on a blob counts bytes
// and hands back only the part, and the size with length, which SQLite
// answers from the record header without loading the blob.
func (s handovers) DepositPart(ctx context.Context, handoverID, partyID string, offset, n int64) (store.Deposit, error) {
	if err := store.CheckPart(offset, n); err != nil {
		return store.Deposit{}, err
	}
	var d store.Deposit
	var sealed int
	var sum []byte
	var at, disputed int64
	err := s.r.QueryRowContext(ctx, `SELECT `+depositCols+`, length(content), substr(content, ?, ?) FROM handover_deposits WHERE handover_id = ? AND party_id = ?`,
		offset+1, n, handoverID, partyID).Scan(&d.HandoverID, &d.PartyID, &sealed, &sum, &d.Objects, &at, &d.LedgerIndex, &d.Dispute, &disputed,
		&d.Manifest, &d.DisputeStatement, &d.Size, &d.Content)
	if err != nil {
		return store.Deposit{}, fmt.Errorf("deposit of %s in %s: %w", partyID, handoverID, mapErr(err))
	}
	d.Sealed = sealed != 0
	copy(d.SHA256[:], sum)
	d.DepositedAt, d.DisputedAt = fromMicros(at), fromMicros(disputed)
	return d, nil
}

func (s handovers) Deposits(ctx context.Context, handoverID string) ([]store.Deposit, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+depositCols+` FROM handover_deposits WHERE handover_id = ? ORDER BY deposited_at, party_id`, handoverID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Deposit
	for rows.Next() {
		d, err := scanDeposit(rows, false)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, mapErr(rows.Err())
}

func (s handovers) DeleteDeposit(ctx context.Context, handoverID, partyID string) (bool, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM handover_deposits WHERE handover_id = ? AND party_id = ?`, handoverID, partyID)
	if err != nil {
		return false, mapErr(err)
	}
	n, err := res.RowsAffected()
	return n > 0, mapErr(err)
}

func (s handovers) SetDispute(ctx context.Context, handoverID, partyID, text string, statement []byte, at time.Time) error {
	return atomic(ctx, handle(s), func(h handle) error {
		var have string
		err := h.w.QueryRowContext(ctx, `SELECT dispute FROM handover_deposits WHERE handover_id = ? AND party_id = ?`, handoverID, partyID).Scan(&have)
		if err != nil {
			return fmt.Errorf("deposit of %s in %s: %w", partyID, handoverID, mapErr(err))
		}
		if have != "" {
			return fmt.Errorf("deposit of %s in %s is already disputed: %w", partyID, handoverID, store.ErrConflict)
		}
		_, err = h.w.ExecContext(ctx, `UPDATE handover_deposits SET dispute = ?, disputed_at = ?, dispute_statement = ? WHERE handover_id = ? AND party_id = ?`,
			text, micros(at), statement, handoverID, partyID)
		return mapErr(err)
	})
}

type requests handle

const requestCols = `id, agreement_id, requester, responder, subject, refs, reason, urgency, state, filed_at, ack_by, fulfil_by,
	acknowledged_at, answered_at, ground, ground_text, handover_id, ack_overdue, answer_overdue, near_notified`

func scanRequest(sc interface{ Scan(...any) error }) (store.Request, error) {
	var r store.Request
	var refs string
	var filed, ackBy, fulfilBy, acked, answered int64
	var ackOver, ansOver, near int
	err := sc.Scan(&r.ID, &r.AgreementID, &r.Requester, &r.Responder, &r.Subject, &refs, &r.Reason, &r.Urgency, &r.State,
		&filed, &ackBy, &fulfilBy, &acked, &answered, &r.Ground, &r.GroundText, &r.HandoverID, &ackOver, &ansOver, &near)
	if err != nil {
		return store.Request{}, mapErr(err)
	}
	if err := json.Unmarshal([]byte(refs), &r.Refs); err != nil {
		return store.Request{}, fmt.Errorf("request %s: stored refs: %w", r.ID, err)
	}
	r.FiledAt, r.AckBy, r.FulfilBy = fromMicros(filed), fromMicros(ackBy), fromMicros(fulfilBy)
	r.AcknowledgedAt, r.AnsweredAt = fromMicros(acked), fromMicros(answered)
	r.AckOverdue, r.AnswerOverdue, r.NearNotified = ackOver != 0, ansOver != 0, near != 0
	return r, nil
}

func (s requests) Create(ctx context.Context, r store.Request) error {
	refs := r.Refs
	if refs == nil {
		refs = []string{}
	}
	rj, err := json.Marshal(refs)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO requests(`+requestCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.AgreementID, r.Requester, r.Responder, r.Subject, string(rj), r.Reason, r.Urgency, r.State,
		micros(r.FiledAt), micros(r.AckBy), micros(r.FulfilBy), micros(r.AcknowledgedAt), micros(r.AnsweredAt),
		r.Ground, r.GroundText, r.HandoverID, boolInt(r.AckOverdue), boolInt(r.AnswerOverdue), boolInt(r.NearNotified))
	return mapErr(err)
}

func (s requests) Get(ctx context.Context, id string) (store.Request, error) {
	r, err := scanRequest(s.r.QueryRowContext(ctx, `SELECT `+requestCols+` FROM requests WHERE id = ?`, id))
	if err != nil {
		return store.Request{}, fmt.Errorf("request %s: %w", id, err)
	}
	return r, nil
}

func (s requests) Update(ctx context.Context, r store.Request) error {
	res, err := s.w.ExecContext(ctx, `UPDATE requests SET state = ?, acknowledged_at = ?, answered_at = ?, ground = ?, ground_text = ?,
		handover_id = ?, ack_overdue = ?, answer_overdue = ?, near_notified = ? WHERE id = ?`,
		r.State, micros(r.AcknowledgedAt), micros(r.AnsweredAt), r.Ground, r.GroundText, r.HandoverID,
		boolInt(r.AckOverdue), boolInt(r.AnswerOverdue), boolInt(r.NearNotified), r.ID)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("request %s: %w", r.ID, store.ErrNotFound)
	}
	return nil
}

func (s requests) list(ctx context.Context, q string, args ...any) ([]store.Request, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, mapErr(rows.Err())
}

func (s requests) ListByParty(ctx context.Context, partyID, agreementID string) ([]store.Request, error) {
	return s.list(ctx, `SELECT `+requestCols+` FROM requests WHERE (requester = ? OR responder = ?) AND (? = '' OR agreement_id = ?)
		ORDER BY filed_at DESC, id`, partyID, partyID, agreementID, agreementID)
}

func (s requests) ListByAgreement(ctx context.Context, agreementID string) ([]store.Request, error) {
	return s.list(ctx, `SELECT `+requestCols+` FROM requests WHERE agreement_id = ? ORDER BY filed_at, id`, agreementID)
}

func (s requests) Due(ctx context.Context, before, near time.Time, limit int) ([]store.Request, error) {
	b, n := micros(before), micros(near)
	return s.list(ctx, `SELECT `+requestCols+` FROM requests WHERE state IN ('filed', 'acknowledged') AND (
			(state = 'filed' AND ack_by <= ? AND ack_overdue = 0)
			OR (fulfil_by <= ? AND answer_overdue = 0)
			OR (near_notified = 0 AND (fulfil_by <= ? OR (state = 'filed' AND ack_by <= ?))))
		ORDER BY filed_at, id LIMIT ?`, b, b, n, n, limit)
}

type events handle

func (s events) Append(ctx context.Context, e store.Event) (int64, error) {
	var seq int64
	err := atomic(ctx, handle(s), func(h handle) error {
		// The counter row serializes appends per party; the write
		// transaction holds it until commit.
		err := h.w.QueryRowContext(ctx, `INSERT INTO event_heads(party_id, seq) VALUES (?, 1)
			ON CONFLICT(party_id) DO UPDATE SET seq = seq + 1 RETURNING seq`, e.PartyID).Scan(&seq)
		if err != nil {
			return fmt.Errorf("event for %s: %w", e.PartyID, mapErr(err))
		}
		data := e.Data
		if data == nil {
			data = []byte("{}")
		}
		_, err = h.w.ExecContext(ctx, `INSERT INTO events(party_id, seq, kind, subject, data, at) VALUES (?, ?, ?, ?, ?, ?)`,
			e.PartyID, seq, e.Kind, e.Subject, data, micros(e.At))
		return mapErr(err)
	})
	return seq, err
}

func (s events) After(ctx context.Context, partyID string, after int64, limit int) ([]store.Event, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT party_id, seq, kind, subject, data, at FROM events WHERE party_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		partyID, after, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var e store.Event
		var at int64
		if err := rows.Scan(&e.PartyID, &e.Seq, &e.Kind, &e.Subject, &e.Data, &at); err != nil {
			return nil, mapErr(err)
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, mapErr(rows.Err())
}

func (s events) Before(ctx context.Context, partyID string, before int64, limit int) ([]store.Event, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.r.QueryContext(ctx, `SELECT party_id, seq, kind, subject, data, at FROM events WHERE party_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
		partyID, before, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var e store.Event
		var at int64
		if err := rows.Scan(&e.PartyID, &e.Seq, &e.Kind, &e.Subject, &e.Data, &at); err != nil {
			return nil, mapErr(err)
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, mapErr(rows.Err())
}
