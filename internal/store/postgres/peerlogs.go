package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

func (h handle) PeerLogs() store.PeerLogs { return peerLogs(h) }

type peerLogs handle

const peerLogCols = `key_id, peer, log_key, witness_key, size, checkpoint, updated_at`

func scanPeerLog(sc interface{ Scan(...any) error }) (store.PeerLog, error) {
	var l store.PeerLog
	var at int64
	if err := sc.Scan(&l.KeyID, &l.Peer, &l.LogKey, &l.WitnessKey, &l.Size, &l.Checkpoint, &at); err != nil {
		return store.PeerLog{}, mapErr(err)
	}
	l.UpdatedAt = fromMicros(at)
	return l, nil
}

func (s peerLogs) PeerLog(ctx context.Context, keyID string) (store.PeerLog, error) {
	l, err := scanPeerLog(s.q.QueryRow(ctx, `SELECT `+peerLogCols+` FROM node_peer_logs WHERE key_id = $1`, keyID))
	if err != nil {
		return store.PeerLog{}, fmt.Errorf("view of peer key %q: %w", keyID, err)
	}
	return l, nil
}

func (s peerLogs) PeerLogs(ctx context.Context) ([]store.PeerLog, error) {
	rows, err := s.q.Query(ctx, `SELECT `+peerLogCols+` FROM node_peer_logs ORDER BY key_id COLLATE "C"`)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.PeerLog, error) { return scanPeerLog(row) })
	return out, mapErr(err)
}

// Inserts that may meet an existing row use ON CONFLICT DO NOTHING: a
// unique violation would abort the caller's whole transaction.

func (s peerLogs) CreatePeerLog(ctx context.Context, l store.PeerLog) error {
	tag, err := s.q.Exec(ctx, `INSERT INTO node_peer_logs(`+peerLogCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		l.KeyID, l.Peer, l.LogKey, l.WitnessKey, l.Size, l.Checkpoint, micros(l.UpdatedAt))
	if err != nil {
		return fmt.Errorf("view of peer %q: %w", l.Peer, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("view of peer %q exists: %w", l.Peer, store.ErrConflict)
	}
	return nil
}

func (s peerLogs) UpdatePeerLog(ctx context.Context, l store.PeerLog, prevSize int64) error {
	tag, err := s.q.Exec(ctx, `UPDATE node_peer_logs SET peer = $1, log_key = $2, witness_key = $3, size = $4, checkpoint = $5, updated_at = $6
		WHERE key_id = $7 AND size = $8`, l.Peer, l.LogKey, l.WitnessKey, l.Size, l.Checkpoint, micros(l.UpdatedAt), l.KeyID, prevSize)
	if err != nil {
		return fmt.Errorf("view of peer %q: %w", l.Peer, mapErr(err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := s.PeerLog(ctx, l.KeyID); err != nil {
		return err
	}
	return fmt.Errorf("view of peer %q moved from size %d: %w", l.Peer, prevSize, store.ErrConflict)
}

func (s peerLogs) AddPeerIncident(ctx context.Context, i store.PeerIncident) error {
	tag, err := s.q.Exec(ctx, `INSERT INTO node_peer_incidents(key_id, digest, peer, kind, detail, ours, theirs, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT DO NOTHING`, i.KeyID, i.Digest, i.Peer, i.Kind, i.Detail, i.Ours, i.Theirs, micros(i.At))
	if err != nil {
		return fmt.Errorf("incident of peer %q: %w", i.Peer, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("incident %s of peer %q is recorded: %w", i.Digest, i.Peer, store.ErrConflict)
	}
	return nil
}

func (s peerLogs) PeerIncidents(ctx context.Context, limit int) ([]store.PeerIncident, error) {
	rows, err := s.q.Query(ctx, `SELECT key_id, digest, peer, kind, detail, ours, theirs, at FROM node_peer_incidents
		ORDER BY at DESC, key_id COLLATE "C", digest COLLATE "C" LIMIT $1`, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.PeerIncident, error) {
		var i store.PeerIncident
		var at int64
		if err := row.Scan(&i.KeyID, &i.Digest, &i.Peer, &i.Kind, &i.Detail, &i.Ours, &i.Theirs, &at); err != nil {
			return store.PeerIncident{}, err
		}
		i.At = fromMicros(at)
		return i, nil
	})
	return out, mapErr(err)
}

func (s peerLogs) AddPeerReceipt(ctx context.Context, r store.PeerReceipt) error {
	_, err := s.q.Exec(ctx, `INSERT INTO node_peer_receipts(key_id, idx, leaf_hash, added_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, r.KeyID, r.Index, r.LeafHash, micros(r.AddedAt))
	if err != nil {
		return fmt.Errorf("receipt %d of peer key %q: %w", r.Index, r.KeyID, mapErr(err))
	}
	var have string
	if err := s.q.QueryRow(ctx, `SELECT leaf_hash FROM node_peer_receipts WHERE key_id = $1 AND idx = $2`, r.KeyID, r.Index).Scan(&have); err != nil {
		return mapErr(err)
	}
	if have != r.LeafHash {
		return fmt.Errorf("receipt %d of peer key %q is recorded with another hash: %w", r.Index, r.KeyID, store.ErrConflict)
	}
	return nil
}

func (s peerLogs) PeerReceipts(ctx context.Context, keyID string) ([]store.PeerReceipt, error) {
	rows, err := s.q.Query(ctx, `SELECT key_id, idx, leaf_hash, added_at FROM node_peer_receipts WHERE key_id = $1 ORDER BY idx`, keyID)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.PeerReceipt, error) {
		var r store.PeerReceipt
		var at int64
		if err := row.Scan(&r.KeyID, &r.Index, &r.LeafHash, &at); err != nil {
			return store.PeerReceipt{}, err
		}
		r.AddedAt = fromMicros(at)
		return r, nil
	})
	return out, mapErr(err)
}
