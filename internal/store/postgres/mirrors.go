package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

func (h handle) Mirrors() store.Mirrors { return mirrors(h) }

type mirrors handle

const mirrorCols = `id, party_id, agreement_id, created_at, source_url, source_collection, source_user, source_token,
	page_limit, added_after, next_token, session_last, accepted, refused, last_refusal, pages, last_success, last_error, last_error_at,
	failures, next_attempt, lease, lease_until`

func scanMirror(sc interface{ Scan(...any) error }) (store.Mirror, error) {
	var m store.Mirror
	var created, success, errAt, next, until int64
	var limit, failures int64
	err := sc.Scan(&m.ID, &m.PartyID, &m.Agreement, &created, &m.SourceURL, &m.SourceCollection, &m.SourceUser, &m.SourceToken,
		&limit, &m.AddedAfter, &m.Next, &m.SessionLast, &m.Accepted, &m.Refused, &m.LastRefusal, &m.Pages, &success, &m.LastError, &errAt,
		&failures, &next, &m.Lease, &until)
	if err != nil {
		return store.Mirror{}, mapErr(err)
	}
	m.PageLimit, m.Failures = int(limit), int(failures)
	m.CreatedAt, m.LastSuccess, m.LastErrorAt, m.NextAttempt, m.LeaseUntil =
		fromMicros(created), fromMicros(success), fromMicros(errAt), fromMicros(next), fromMicros(until)
	return m, nil
}

func (s mirrors) Create(ctx context.Context, m store.Mirror) error {
	_, err := s.q.Exec(ctx, `INSERT INTO mirrors(`+mirrorCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`,
		m.ID, m.PartyID, m.Agreement, micros(m.CreatedAt), m.SourceURL, m.SourceCollection, m.SourceUser, m.SourceToken,
		int64(m.PageLimit), m.AddedAfter, m.Next, m.SessionLast, m.Accepted, m.Refused, m.LastRefusal, m.Pages, micros(m.LastSuccess), m.LastError, micros(m.LastErrorAt),
		int64(m.Failures), micros(m.NextAttempt), m.Lease, micros(m.LeaseUntil))
	if err != nil {
		return fmt.Errorf("mirror %s: %w", m.ID, mapErr(err))
	}
	return nil
}

func (s mirrors) Get(ctx context.Context, id string) (store.Mirror, error) {
	m, err := scanMirror(s.q.QueryRow(ctx, `SELECT `+mirrorCols+` FROM mirrors WHERE id = $1`, id))
	if err != nil {
		return store.Mirror{}, fmt.Errorf("mirror %s: %w", id, err)
	}
	return m, nil
}

func (s mirrors) ListByParty(ctx context.Context, partyID string) ([]store.Mirror, error) {
	rows, err := s.q.Query(ctx, `SELECT `+mirrorCols+` FROM mirrors WHERE party_id = $1 ORDER BY created_at, id`, partyID)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Mirror, error) { return scanMirror(row) })
	return out, mapErr(err)
}

func (s mirrors) Delete(ctx context.Context, id string) error {
	tag, err := s.q.Exec(ctx, `DELETE FROM mirrors WHERE id = $1`, id)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("mirror %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// Claim skips rows another instance is claiming at this moment, and checks
// the lease again on the row it updates, so two instances never take the
// same mirror.
func (s mirrors) Claim(ctx context.Context, now, until time.Time, lease string) (store.Mirror, error) {
	m, err := scanMirror(s.q.QueryRow(ctx, `UPDATE mirrors SET lease = $1, lease_until = $2
		WHERE id = (SELECT id FROM mirrors WHERE next_attempt <= $3 AND lease_until <= $3 ORDER BY next_attempt, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		AND lease_until <= $3
		RETURNING `+mirrorCols, lease, micros(until), micros(now)))
	if err != nil {
		return store.Mirror{}, fmt.Errorf("claiming a mirror: %w", err)
	}
	return m, nil
}

func (s mirrors) Save(ctx context.Context, m store.Mirror) error {
	tag, err := s.q.Exec(ctx, `UPDATE mirrors SET added_after = $1, next_token = $2, session_last = $3, accepted = $4, refused = $5, last_refusal = $6, pages = $7,
		last_success = $8, last_error = $9, last_error_at = $10, failures = $11, next_attempt = $12, lease_until = $13
		WHERE id = $14 AND lease = $15`,
		m.AddedAfter, m.Next, m.SessionLast, m.Accepted, m.Refused, m.LastRefusal, m.Pages, micros(m.LastSuccess), m.LastError, micros(m.LastErrorAt),
		int64(m.Failures), micros(m.NextAttempt), micros(m.LeaseUntil), m.ID, m.Lease)
	if err != nil {
		return fmt.Errorf("mirror %s: %w", m.ID, mapErr(err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	if err := s.q.QueryRow(ctx, `SELECT 1 FROM mirrors WHERE id = $1`, m.ID).Scan(&one); err != nil {
		return fmt.Errorf("mirror %s: %w", m.ID, mapErr(err))
	}
	return fmt.Errorf("mirror %s: claimed by another runner: %w", m.ID, store.ErrConflict)
}
