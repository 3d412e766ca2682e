package sqlite

import (
	"context"
	"fmt"
	"time"

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
	err := sc.Scan(&m.ID, &m.PartyID, &m.Agreement, &created, &m.SourceURL, &m.SourceCollection, &m.SourceUser, &m.SourceToken,
		&m.PageLimit, &m.AddedAfter, &m.Next, &m.SessionLast, &m.Accepted, &m.Refused, &m.LastRefusal, &m.Pages, &success, &m.LastError, &errAt,
		&m.Failures, &next, &m.Lease, &until)
	if err != nil {
		return store.Mirror{}, mapErr(err)
	}
	m.CreatedAt, m.LastSuccess, m.LastErrorAt, m.NextAttempt, m.LeaseUntil =
		fromMicros(created), fromMicros(success), fromMicros(errAt), fromMicros(next), fromMicros(until)
	return m, nil
}

func (s mirrors) Create(ctx context.Context, m store.Mirror) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO mirrors(`+mirrorCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.PartyID, m.Agreement, micros(m.CreatedAt), m.SourceURL, m.SourceCollection, m.SourceUser, m.SourceToken,
		m.PageLimit, m.AddedAfter, m.Next, m.SessionLast, m.Accepted, m.Refused, m.LastRefusal, m.Pages, micros(m.LastSuccess), m.LastError, micros(m.LastErrorAt),
		m.Failures, micros(m.NextAttempt), m.Lease, micros(m.LeaseUntil))
	if err != nil {
		return fmt.Errorf("mirror %s: %w", m.ID, mapErr(err))
	}
	return nil
}

func (s mirrors) Get(ctx context.Context, id string) (store.Mirror, error) {
	m, err := scanMirror(s.r.QueryRowContext(ctx, `SELECT `+mirrorCols+` FROM mirrors WHERE id = ?`, id))
	if err != nil {
		return store.Mirror{}, fmt.Errorf("mirror %s: %w", id, err)
	}
	return m, nil
}

func (s mirrors) ListByParty(ctx context.Context, partyID string) ([]store.Mirror, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+mirrorCols+` FROM mirrors WHERE party_id = ? ORDER BY created_at, id`, partyID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Mirror
	for rows.Next() {
		m, err := scanMirror(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, mapErr(rows.Err())
}

func (s mirrors) Delete(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM mirrors WHERE id = ?`, id)
	if err != nil {
		return mapErr(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return mapErr(err)
	} else if n == 0 {
		return fmt.Errorf("mirror %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// Claim is one statement on SQLite's single writer, so two claims are
// ordered and the second sees the first's lease. A reader looks first:
// runners ask every second, and mostly nothing is due, which needs no
// turn of the writer.
func (s mirrors) Claim(ctx context.Context, now, until time.Time, lease string) (store.Mirror, error) {
	var due int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM mirrors WHERE next_attempt <= ? AND lease_until <= ? LIMIT 1`, micros(now), micros(now)).Scan(&due)
	if err != nil {
		return store.Mirror{}, fmt.Errorf("claiming a mirror: %w", mapErr(err))
	}
	m, err := scanMirror(s.w.QueryRowContext(ctx, `UPDATE mirrors SET lease = ?, lease_until = ?
		WHERE id = (SELECT id FROM mirrors WHERE next_attempt <= ? AND lease_until <= ? ORDER BY next_attempt, id LIMIT 1)
		RETURNING `+mirrorCols, lease, micros(until), micros(now), micros(now)))
	if err != nil {
		return store.Mirror{}, fmt.Errorf("claiming a mirror: %w", err)
	}
	return m, nil
}

func (s mirrors) Save(ctx context.Context, m store.Mirror) error {
	res, err := s.w.ExecContext(ctx, `UPDATE mirrors SET added_after = ?, next_token = ?, session_last = ?, accepted = ?, refused = ?, last_refusal = ?, pages = ?,
		last_success = ?, last_error = ?, last_error_at = ?, failures = ?, next_attempt = ?, lease_until = ?
		WHERE id = ? AND lease = ?`,
		m.AddedAfter, m.Next, m.SessionLast, m.Accepted, m.Refused, m.LastRefusal, m.Pages, micros(m.LastSuccess), m.LastError, micros(m.LastErrorAt),
		m.Failures, micros(m.NextAttempt), micros(m.LeaseUntil), m.ID, m.Lease)
	if err != nil {
		return fmt.Errorf("mirror %s: %w", m.ID, mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return mapErr(err)
	} else if n == 1 {
		return nil
	}
	var one int
	if err := s.w.QueryRowContext(ctx, `SELECT 1 FROM mirrors WHERE id = ?`, m.ID).Scan(&one); err != nil {
		return fmt.Errorf("mirror %s: %w", m.ID, mapErr(err))
	}
	return fmt.Errorf("mirror %s: claimed by another runner: %w", m.ID, store.ErrConflict)
}
