package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

type parties handle

func (s parties) Create(ctx context.Context, p store.Party) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO parties(id, name, created_at) VALUES(?, ?, ?)`,
		p.ID, p.Name, micros(p.CreatedAt))
	return mapErr(err)
}

func (s parties) get(ctx context.Context, where string, arg any) (store.Party, error) {
	var p store.Party
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT id, name, created_at FROM parties WHERE `+where, arg).Scan(&p.ID, &p.Name, &created)
	if err != nil {
		return store.Party{}, fmt.Errorf("party: %w", mapErr(err))
	}
	p.CreatedAt = fromMicros(created)
	return p, nil
}

func (s parties) Get(ctx context.Context, id string) (store.Party, error) {
	return s.get(ctx, `id = ?`, id)
}

func (s parties) ByName(ctx context.Context, name string) (store.Party, error) {
	return s.get(ctx, `name = ?`, name)
}

func (s parties) List(ctx context.Context) ([]store.Party, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, created_at FROM parties ORDER BY name`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Party
	for rows.Next() {
		var p store.Party
		var created int64
		if err := rows.Scan(&p.ID, &p.Name, &created); err != nil {
			return nil, mapErr(err)
		}
		p.CreatedAt = fromMicros(created)
		out = append(out, p)
	}
	return out, mapErr(rows.Err())
}

type tokens handle

func (s tokens) Create(ctx context.Context, t store.Token) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO tokens(id, party_id, hash, label, created_at, revoked_at, expires_at, last_used_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.PartyID, t.Hash[:], t.Label, micros(t.CreatedAt), micros(t.RevokedAt), micros(t.ExpiresAt), micros(t.LastUsedAt))
	return mapErr(err)
}

const tokenCols = `id, party_id, hash, label, created_at, revoked_at, expires_at, last_used_at`

func scanToken(sc interface{ Scan(...any) error }) (store.Token, error) {
	var t store.Token
	var hash []byte
	var created, revoked, expires, used int64
	if err := sc.Scan(&t.ID, &t.PartyID, &hash, &t.Label, &created, &revoked, &expires, &used); err != nil {
		return store.Token{}, mapErr(err)
	}
	if len(hash) != len(t.Hash) {
		return store.Token{}, fmt.Errorf("token %s: stored hash has %d bytes", t.ID, len(hash))
	}
	copy(t.Hash[:], hash)
	t.CreatedAt = fromMicros(created)
	t.RevokedAt = fromMicros(revoked)
	t.ExpiresAt = fromMicros(expires)
	t.LastUsedAt = fromMicros(used)
	return t, nil
}

func (s tokens) ByHash(ctx context.Context, hash [32]byte) (store.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash[:]))
	if err != nil {
		return store.Token{}, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

func (s tokens) Revoke(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ?`, micros(at), id)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (s tokens) Touch(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE tokens SET last_used_at = max(last_used_at, ?) WHERE id = ?`, micros(at), id)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (s tokens) ListByParty(ctx context.Context, partyID string) ([]store.Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE party_id = ? ORDER BY created_at, id`, partyID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, mapErr(rows.Err())
}

type settings handle

func (s settings) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v); err != nil {
		return nil, fmt.Errorf("setting %q: %w", key, mapErr(err))
	}
	return v, nil
}

func (s settings) PutIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error) {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO NOTHING`, key, value); err != nil {
		return nil, mapErr(err)
	}
	var v []byte
	if err := s.w.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v); err != nil {
		return nil, mapErr(err)
	}
	return v, nil
}
