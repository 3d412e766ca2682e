package sqlite

import (
	"context"
	"fmt"

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
	l, err := scanPeerLog(s.r.QueryRowContext(ctx, `SELECT `+peerLogCols+` FROM node_peer_logs WHERE key_id = ?`, keyID))
	if err != nil {
		return store.PeerLog{}, fmt.Errorf("view of peer key %q: %w", keyID, err)
	}
	return l, nil
}

func (s peerLogs) PeerLogs(ctx context.Context) ([]store.PeerLog, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+peerLogCols+` FROM node_peer_logs ORDER BY key_id`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.PeerLog
	for rows.Next() {
		l, err := scanPeerLog(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, mapErr(rows.Err())
}

func (s peerLogs) CreatePeerLog(ctx context.Context, l store.PeerLog) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO node_peer_logs(`+peerLogCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		l.KeyID, l.Peer, l.LogKey, l.WitnessKey, l.Size, l.Checkpoint, micros(l.UpdatedAt))
	if err != nil {
		return fmt.Errorf("view of peer %q: %w", l.Peer, mapErr(err))
	}
	return nil
}

func (s peerLogs) UpdatePeerLog(ctx context.Context, l store.PeerLog, prevSize int64) error {
	res, err := s.w.ExecContext(ctx, `UPDATE node_peer_logs SET peer = ?, log_key = ?, witness_key = ?, size = ?, checkpoint = ?, updated_at = ?
		WHERE key_id = ? AND size = ?`, l.Peer, l.LogKey, l.WitnessKey, l.Size, l.Checkpoint, micros(l.UpdatedAt), l.KeyID, prevSize)
	if err != nil {
		return fmt.Errorf("view of peer %q: %w", l.Peer, mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return mapErr(err)
	} else if n == 1 {
		return nil
	}
	if _, err := s.PeerLog(ctx, l.KeyID); err != nil {
		return err
	}
	return fmt.Errorf("view of peer %q moved from size %d: %w", l.Peer, prevSize, store.ErrConflict)
}

func (s peerLogs) AddPeerIncident(ctx context.Context, i store.PeerIncident) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO node_peer_incidents(key_id, digest, peer, kind, detail, ours, theirs, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		i.KeyID, i.Digest, i.Peer, i.Kind, i.Detail, i.Ours, i.Theirs, micros(i.At))
	if err != nil {
		return fmt.Errorf("incident of peer %q: %w", i.Peer, mapErr(err))
	}
	return nil
}

func (s peerLogs) PeerIncidents(ctx context.Context, limit int) ([]store.PeerIncident, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key_id, digest, peer, kind, detail, ours, theirs, at FROM node_peer_incidents
		ORDER BY at DESC, key_id, digest LIMIT ?`, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.PeerIncident
	for rows.Next() {
		var i store.PeerIncident
		var at int64
		if err := rows.Scan(&i.KeyID, &i.Digest, &i.Peer, &i.Kind, &i.Detail, &i.Ours, &i.Theirs, &at); err != nil {
			return nil, mapErr(err)
		}
		i.At = fromMicros(at)
		out = append(out, i)
	}
	return out, mapErr(rows.Err())
}

func (s peerLogs) AddPeerReceipt(ctx context.Context, r store.PeerReceipt) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO node_peer_receipts(key_id, idx, leaf_hash, added_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(key_id, idx) DO NOTHING`, r.KeyID, r.Index, r.LeafHash, micros(r.AddedAt))
	if err != nil {
		return fmt.Errorf("receipt %d of peer key %q: %w", r.Index, r.KeyID, mapErr(err))
	}
	var have string
	if err := s.w.QueryRowContext(ctx, `SELECT leaf_hash FROM node_peer_receipts WHERE key_id = ? AND idx = ?`, r.KeyID, r.Index).Scan(&have); err != nil {
		return mapErr(err)
	}
	if have != r.LeafHash {
		return fmt.Errorf("receipt %d of peer key %q is recorded with another hash: %w", r.Index, r.KeyID, store.ErrConflict)
	}
	return nil
}

func (s peerLogs) PeerReceipts(ctx context.Context, keyID string) ([]store.PeerReceipt, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key_id, idx, leaf_hash, added_at FROM node_peer_receipts WHERE key_id = ? ORDER BY idx`, keyID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.PeerReceipt
	for rows.Next() {
		var r store.PeerReceipt
		var at int64
		if err := rows.Scan(&r.KeyID, &r.Index, &r.LeafHash, &at); err != nil {
			return nil, mapErr(err)
		}
		r.AddedAt = fromMicros(at)
		out = append(out, r)
	}
	return out, mapErr(rows.Err())
}
