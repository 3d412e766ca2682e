package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

func (h handle) Federation() store.Federation { return federation(h) }

type federation handle

func (s federation) AddRemoteParty(ctx context.Context, p store.RemoteParty) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO node_remote_parties(party_id, node_key, node_key_id, name, learned_at) VALUES (?, ?, ?, ?, ?)`,
		p.PartyID, p.NodeKey, p.NodeKeyID, p.Name, micros(p.LearnedAt))
	if err != nil {
		return fmt.Errorf("remote party %q: %w", p.PartyID, mapErr(err))
	}
	return nil
}

func (s federation) RemoteParty(ctx context.Context, partyID string) (store.RemoteParty, error) {
	var p store.RemoteParty
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT party_id, node_key, node_key_id, name, learned_at FROM node_remote_parties WHERE party_id = ?`, partyID).
		Scan(&p.PartyID, &p.NodeKey, &p.NodeKeyID, &p.Name, &at)
	if err != nil {
		return store.RemoteParty{}, fmt.Errorf("remote party %q: %w", partyID, mapErr(err))
	}
	p.LearnedAt = fromMicros(at)
	return p, nil
}

func (s federation) Enqueue(ctx context.Context, e store.OutboxEntry) (int64, error) {
	var seq int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO node_outbox(peer_key_id, agreement_id, party_id, kind, body, created_at, state, attempts, next_attempt, last_error, done_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, '', 0) RETURNING seq`,
		e.PeerKeyID, e.AgreementID, e.PartyID, e.Kind, e.Body, micros(e.CreatedAt), store.OutboxPending, micros(e.NextAttempt)).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", mapErr(err))
	}
	return seq, nil
}

const outboxCols = `seq, peer_key_id, agreement_id, party_id, kind, body, created_at, state, attempts, next_attempt, last_error, done_at`

func scanOutbox(sc interface{ Scan(...any) error }) (store.OutboxEntry, error) {
	var e store.OutboxEntry
	var created, next, done int64
	if err := sc.Scan(&e.Seq, &e.PeerKeyID, &e.AgreementID, &e.PartyID, &e.Kind, &e.Body, &created, &e.State, &e.Attempts, &next, &e.LastError, &done); err != nil {
		return store.OutboxEntry{}, mapErr(err)
	}
	e.CreatedAt, e.NextAttempt = fromMicros(created), fromMicros(next)
	if done != 0 {
		e.DoneAt = fromMicros(done)
	}
	return e, nil
}

func (s federation) list(ctx context.Context, q string, args ...any) ([]store.OutboxEntry, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.OutboxEntry
	for rows.Next() {
		e, err := scanOutbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, mapErr(rows.Err())
}

func (s federation) OutboxHeads(ctx context.Context) ([]store.OutboxEntry, error) {
	return s.list(ctx, `SELECT `+outboxCols+` FROM node_outbox WHERE seq IN
		(SELECT min(seq) FROM node_outbox WHERE state = ? GROUP BY peer_key_id) ORDER BY seq`, store.OutboxPending)
}

func (s federation) Outbox(ctx context.Context, agreementID string, limit int) ([]store.OutboxEntry, error) {
	if agreementID == "" {
		return s.list(ctx, `SELECT `+outboxCols+` FROM node_outbox ORDER BY seq DESC LIMIT ?`, limit)
	}
	return s.list(ctx, `SELECT `+outboxCols+` FROM node_outbox WHERE agreement_id = ? ORDER BY seq DESC LIMIT ?`, agreementID, limit)
}

func (s federation) OutboxRefused(ctx context.Context, agreementID, peerKeyID string) ([]store.OutboxEntry, error) {
	return s.list(ctx, `SELECT `+outboxCols+` FROM node_outbox WHERE agreement_id = ? AND peer_key_id = ? AND state = ? ORDER BY seq`,
		agreementID, peerKeyID, store.OutboxRefused)
}

func (s federation) OutboxRetry(ctx context.Context, seq int64, attempts int, next time.Time, lastErr string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE node_outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE seq = ? AND state = ?`,
		attempts, micros(next), lastErr, seq, store.OutboxPending)
	return affected(res, err, seq)
}

func (s federation) OutboxDone(ctx context.Context, seq int64, state string, at time.Time, lastErr string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE node_outbox SET state = ?, done_at = ?, last_error = ? WHERE seq = ? AND state = ?`,
		state, micros(at), lastErr, seq, store.OutboxPending)
	return affected(res, err, seq)
}

func affected(res interface{ RowsAffected() (int64, error) }, err error, seq int64) error {
	if err != nil {
		return fmt.Errorf("outbox entry %d: %w", seq, mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return mapErr(err)
	} else if n == 0 {
		return fmt.Errorf("outbox entry %d is not pending: %w", seq, store.ErrNotFound)
	}
	return nil
}

func (s federation) FeedCursor(ctx context.Context, agreementID, partyID string) (store.FeedCursor, error) {
	c := store.FeedCursor{AgreementID: agreementID, PartyID: partyID}
	var next, at, ok int64
	err := s.r.QueryRowContext(ctx, `SELECT after_ord, pulled, refused, attempts, next_attempt, last_error, updated_at, last_success, peer_released, versions_after FROM node_feed_cursors
		WHERE agreement_id = ? AND party_id = ?`, agreementID, partyID).Scan(&c.After, &c.Pulled, &c.Refused, &c.Attempts, &next, &c.LastError, &at, &ok, &c.PeerReleased, &c.VersionsAfter)
	if err != nil {
		return store.FeedCursor{}, fmt.Errorf("feed cursor %s/%s: %w", agreementID, partyID, mapErr(err))
	}
	c.NextAttempt, c.UpdatedAt, c.LastSuccess = fromMicros(next), fromMicros(at), fromMicros(ok)
	return c, nil
}

func (s federation) SetFeedCursor(ctx context.Context, c store.FeedCursor) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO node_feed_cursors(agreement_id, party_id, after_ord, pulled, refused, attempts, next_attempt, last_error, updated_at, last_success, peer_released, versions_after)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (agreement_id, party_id) DO UPDATE SET after_ord = excluded.after_ord, pulled = excluded.pulled, refused = excluded.refused,
			attempts = excluded.attempts, next_attempt = excluded.next_attempt, last_error = excluded.last_error, updated_at = excluded.updated_at,
			last_success = excluded.last_success, peer_released = excluded.peer_released, versions_after = excluded.versions_after`,
		c.AgreementID, c.PartyID, c.After, c.Pulled, c.Refused, c.Attempts, micros(c.NextAttempt), c.LastError, micros(c.UpdatedAt), micros(c.LastSuccess), c.PeerReleased, c.VersionsAfter)
	if err != nil {
		return fmt.Errorf("feed cursor %s/%s: %w", c.AgreementID, c.PartyID, mapErr(err))
	}
	return nil
}

func (s federation) FeedCursors(ctx context.Context) ([]store.FeedCursor, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT agreement_id, party_id, after_ord, pulled, refused, attempts, next_attempt, last_error, updated_at, last_success, peer_released, versions_after
		FROM node_feed_cursors ORDER BY agreement_id, party_id`)
	if err != nil {
		return nil, fmt.Errorf("feed cursors: %w", mapErr(err))
	}
	defer rows.Close()
	var out []store.FeedCursor
	for rows.Next() {
		var c store.FeedCursor
		var next, at, ok int64
		if err := rows.Scan(&c.AgreementID, &c.PartyID, &c.After, &c.Pulled, &c.Refused, &c.Attempts, &next, &c.LastError, &at, &ok, &c.PeerReleased, &c.VersionsAfter); err != nil {
			return nil, fmt.Errorf("feed cursors: %w", mapErr(err))
		}
		c.NextAttempt, c.UpdatedAt, c.LastSuccess = fromMicros(next), fromMicros(at), fromMicros(ok)
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}
