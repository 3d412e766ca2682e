package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

func (h handle) Nodes() store.Nodes { return nodes(h) }

type nodes handle

func (s nodes) SetPublicURL(ctx context.Context, url string, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO node_self(id, public_url, updated_at) VALUES (1, ?, ?)
		ON CONFLICT(id) DO UPDATE SET public_url = excluded.public_url, updated_at = excluded.updated_at`, url, micros(at))
	return mapErr(err)
}

func (s nodes) PublicURL(ctx context.Context) (string, error) {
	var u string
	if err := s.r.QueryRowContext(ctx, `SELECT public_url FROM node_self WHERE id = 1`).Scan(&u); err != nil {
		return "", fmt.Errorf("node public URL: %w", mapErr(err))
	}
	return u, nil
}

func (s nodes) AddPeer(ctx context.Context, p store.Peer) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO node_peers(name, url, key, key_id, added_at) VALUES (?, ?, ?, ?, ?)`,
		p.Name, p.URL, p.Key, p.KeyID, micros(p.AddedAt))
	if err != nil {
		return fmt.Errorf("peer %q: %w", p.Name, mapErr(err))
	}
	return nil
}

const peerCols = `name, url, key, key_id, added_at`

func scanPeer(sc interface{ Scan(...any) error }) (store.Peer, error) {
	var p store.Peer
	var at int64
	if err := sc.Scan(&p.Name, &p.URL, &p.Key, &p.KeyID, &at); err != nil {
		return store.Peer{}, mapErr(err)
	}
	p.AddedAt = fromMicros(at)
	return p, nil
}

func (s nodes) Peer(ctx context.Context, name string) (store.Peer, error) {
	p, err := scanPeer(s.r.QueryRowContext(ctx, `SELECT `+peerCols+` FROM node_peers WHERE name = ?`, name))
	if err != nil {
		return store.Peer{}, fmt.Errorf("peer %q: %w", name, err)
	}
	return p, nil
}

func (s nodes) PeerByKeyID(ctx context.Context, keyID string) (store.Peer, error) {
	p, err := scanPeer(s.r.QueryRowContext(ctx, `SELECT `+peerCols+` FROM node_peers WHERE key_id = ?`, keyID))
	if err != nil {
		return store.Peer{}, fmt.Errorf("peer with key id %q: %w", keyID, err)
	}
	return p, nil
}

func (s nodes) Peers(ctx context.Context) ([]store.Peer, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+peerCols+` FROM node_peers ORDER BY name`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Peer
	for rows.Next() {
		p, err := scanPeer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, mapErr(rows.Err())
}

func (s nodes) RemovePeer(ctx context.Context, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM node_peers WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("peer %q: %w", name, mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return mapErr(err)
	} else if n == 0 {
		return fmt.Errorf("peer %q: %w", name, store.ErrNotFound)
	}
	return nil
}
