package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

type parties handle

func (s parties) Create(ctx context.Context, p store.Party) error {
	_, err := s.q.Exec(ctx, `INSERT INTO parties(id, name, created_at) VALUES($1, $2, $3)`,
		p.ID, p.Name, micros(p.CreatedAt))
	if err != nil {
		return fmt.Errorf("party %s: %w", p.ID, mapErr(err))
	}
	return nil
}

func (s parties) get(ctx context.Context, where string, arg any) (store.Party, error) {
	var p store.Party
	var created int64
	err := s.q.QueryRow(ctx, `SELECT id, name, created_at FROM parties WHERE `+where, arg).Scan(&p.ID, &p.Name, &created)
	if err != nil {
		return store.Party{}, fmt.Errorf("party: %w", mapErr(err))
	}
	p.CreatedAt = fromMicros(created)
	return p, nil
}

func (s parties) Get(ctx context.Context, id string) (store.Party, error) {
	return s.get(ctx, `id = $1`, id)
}

func (s parties) ByName(ctx context.Context, name string) (store.Party, error) {
	return s.get(ctx, `name = $1`, name)
}

func (s parties) List(ctx context.Context) ([]store.Party, error) {
	// COLLATE "C" orders by bytes, as SQLite does, whatever the database's
	// locale.
	rows, err := s.q.Query(ctx, `SELECT id, name, created_at FROM parties ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Party, error) {
		var p store.Party
		var created int64
		err := row.Scan(&p.ID, &p.Name, &created)
		p.CreatedAt = fromMicros(created)
		return p, err
	})
	return out, mapErr(err)
}

type tokens handle

func (s tokens) Create(ctx context.Context, t store.Token) error {
	_, err := s.q.Exec(ctx, `INSERT INTO tokens(id, party_id, hash, label, created_at, revoked_at, expires_at, last_used_at) VALUES($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, t.PartyID, t.Hash[:], t.Label, micros(t.CreatedAt), micros(t.RevokedAt), micros(t.ExpiresAt), micros(t.LastUsedAt))
	if err != nil {
		return fmt.Errorf("token %s: %w", t.ID, mapErr(err))
	}
	return nil
}

const tokenCols = `id, party_id, hash, label, created_at, revoked_at, expires_at, last_used_at`

func scanToken(sc pgx.Row) (store.Token, error) {
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
	t, err := scanToken(s.q.QueryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = $1`, hash[:]))
	if err != nil {
		return store.Token{}, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

func (s tokens) Revoke(ctx context.Context, id string, at time.Time) error {
	tag, err := s.q.Exec(ctx, `UPDATE tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN $1 ELSE revoked_at END WHERE id = $2`, micros(at), id)
	if err != nil {
		return fmt.Errorf("token %s: %w", id, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (s tokens) Touch(ctx context.Context, id string, at time.Time) error {
	tag, err := s.q.Exec(ctx, `UPDATE tokens SET last_used_at = GREATEST(last_used_at, $1) WHERE id = $2`, micros(at), id)
	if err != nil {
		return fmt.Errorf("token %s: %w", id, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (s tokens) ListByParty(ctx context.Context, partyID string) ([]store.Token, error) {
	rows, err := s.q.Query(ctx, `SELECT `+tokenCols+` FROM tokens WHERE party_id = $1 ORDER BY created_at, id COLLATE "C"`, partyID)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Token, error) { return scanToken(row) })
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

type settings handle

func (s settings) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	if err := s.q.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v); err != nil {
		return nil, fmt.Errorf("setting %q: %w", key, mapErr(err))
	}
	return v, nil
}

// PutIfAbsent needs no transaction of its own: in READ COMMITTED the SELECT
// sees a row that a concurrent instance committed while the INSERT waited on
// it, and inside a SERIALIZABLE Update that race is a retried conflict.
func (s settings) PutIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error) {
	if _, err := s.q.Exec(ctx, `INSERT INTO settings(key, value) VALUES($1, $2) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
		return nil, fmt.Errorf("setting %q: %w", key, mapErr(err))
	}
	var v []byte
	if err := s.q.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v); err != nil {
		return nil, fmt.Errorf("setting %q: %w", key, mapErr(err))
	}
	return v, nil
}
