package crosswitness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/node"
	"github.com/parley-cti/parley/internal/store"
)

// Register mounts the node endpoints of this package on mux, each
// authenticated by h (package node) before it runs.
func (s *Service) Register(mux *http.ServeMux, h *node.Handler) {
	mux.Handle("POST "+PathAddCheckpoint, h.Endpoint(s.AddCheckpoint))
	mux.Handle("POST "+PathView, h.Endpoint(s.view))
	mux.Handle("POST "+PathCheckpoint, h.Endpoint(s.current))
	mux.Handle("POST "+PathConsistency, h.Endpoint(s.consistency))
	mux.Handle("POST "+PathInclusion, h.Endpoint(s.inclusion))
}

func refuse(status int, code, msg string) (int, any) {
	return status, Refusal{Error: code, Message: msg}
}

func refuseSize(status int, code, msg string, size int64) (int, any) {
	return status, Refusal{Error: code, Message: msg, Size: &size}
}

// internal answers a failure of this node (not the peer's doing) with
// fixed text, logging the detail.
func (s *Service) internal(ctx context.Context, what string, err error) (int, any) {
	if errors.Is(err, store.ErrUnavailable) {
		return refuse(http.StatusServiceUnavailable, "unavailable", "the database is unavailable; retry shortly")
	}
	s.log().ErrorContext(ctx, what, slog.Any("err", err))
	return refuse(http.StatusInternalServerError, "internal", "the node failed to handle the request")
}

func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// AddCheckpoint is the witness side of a peer's submission: it checks the
// checkpoint against this node's view of the peer's log and cosigns it.
// Refusals (code, status): bad_request 400; key_changed 403; forged 403
// (the ledger key's signature does not verify or the origin is not the
// key's); rollback 409 with the size cosigned before; fork 409;
// size_conflict 409 with the size to prove from (tlog-witness's 409);
// inconsistent 422. Every refusal but bad_request and size_conflict is
// recorded as an incident naming the peer.
func (s *Service) AddCheckpoint(ctx context.Context, p store.Peer, body []byte) (int, any) {
	var sub Submission
	if err := decodeJSON(body, &sub); err != nil {
		return refuse(http.StatusBadRequest, "bad_request", "the body must be a JSON object with log_key, old_size, proof and checkpoint")
	}
	proof, err := decodeHashes(sub.Proof)
	if err != nil || sub.OldSize < 0 || len(sub.Checkpoint) > ledger.MaxNoteSize || sub.LogKey == "" {
		return refuse(http.StatusBadRequest, "bad_request", "log_key is required, proof holds at most 63 base64 SHA-256 hashes, old_size is not negative, the checkpoint at most 64 KiB")
	}
	v, err := s.learn(ctx, p, sub.LogKey, "")
	var in Incident
	switch {
	case errors.As(err, &in):
		return refuse(http.StatusForbidden, "key_changed", "the ledger key differs from the one this node learned from your node before; the change is recorded")
	case errors.Is(err, ledger.ErrMalformed):
		return refuse(http.StatusBadRequest, "bad_request", "log_key is not a signed-note verifier key")
	case err != nil:
		return s.internal(ctx, "witness view", err)
	}
	theirs := []byte(sub.Checkpoint)
	c, err := ledger.VerifyCheckpoint(theirs, v.LogKey)
	if err != nil {
		if errors.Is(err, ledger.ErrBadSignature) {
			s.record(ctx, Incident{Peer: p.Name, PeerKey: p.Key, KeyID: p.KeyID, Kind: KindForged, Theirs: theirs,
				Detail: "a submitted checkpoint is not signed by its ledger key " + v.LogKey})
			return refuse(http.StatusForbidden, "forged", "the checkpoint's signature does not verify with your ledger key; the submission is recorded")
		}
		return refuse(http.StatusBadRequest, "bad_request", "the checkpoint is not a signed note")
	}
	// A stale old size is the protocol's ordinary 409, asked before
	// anything is held against the peer: an honest submitter that lost
	// track (a restart, another instance) proves from the size named.
	if sub.OldSize != v.Size {
		return refuseSize(http.StatusConflict, "size_conflict", "old_size is not the size this node last cosigned; prove from size", v.Size)
	}
	state := ledger.WitnessState{Size: v.Size}
	if v.Size > 0 {
		ours, err := ledger.VerifyCheckpoint(v.Checkpoint, v.LogKey)
		if err != nil {
			return s.internal(ctx, "stored view of a peer's log", err)
		}
		state.Hash = ours.Hash
		switch {
		case c.Size < v.Size:
			s.record(ctx, Incident{Peer: p.Name, PeerKey: p.Key, KeyID: p.KeyID, Kind: KindRollback, Ours: v.Checkpoint, Theirs: theirs,
				Detail: fmt.Sprintf("it submitted a checkpoint of size %d after this node cosigned size %d", c.Size, v.Size)})
			return refuseSize(http.StatusConflict, "rollback", "this node cosigned a larger checkpoint of your log before; the submission is recorded", v.Size)
		case c.Size == v.Size && c.Hash != ours.Hash:
			s.record(ctx, Incident{Peer: p.Name, PeerKey: p.Key, KeyID: p.KeyID, Kind: KindFork, Ours: v.Checkpoint, Theirs: theirs,
				Detail: fmt.Sprintf("two roots at size %d: %s cosigned, %s submitted", c.Size, ours.Hash, c.Hash)})
			return refuse(http.StatusConflict, "fork", "the checkpoint has another root than the one this node cosigned at that size; the submission is recorded")
		}
	}
	w, err := ledger.NewWitness(s.wskey, v.LogKey, state, nil)
	if err != nil {
		return s.internal(ctx, "witness", err)
	}
	line, err := w.AddCheckpoint(ledger.AddCheckpointRequest{OldSize: sub.OldSize, Proof: proof, Checkpoint: theirs}, s.now())
	var sc *ledger.SizeConflictError
	switch {
	case errors.As(err, &sc):
		return refuseSize(http.StatusConflict, "size_conflict", "old_size is not the size this node last cosigned; prove from size", sc.Size)
	case errors.Is(err, ledger.ErrInconsistent), errors.Is(err, ledger.ErrTruncatedProof), errors.Is(err, ledger.ErrFork):
		s.record(ctx, Incident{Peer: p.Name, PeerKey: p.Key, KeyID: p.KeyID, Kind: KindInconsistent, Ours: v.Checkpoint, Theirs: theirs,
			Detail: fmt.Sprintf("the consistency proof from size %d to %d does not verify: %v", v.Size, c.Size, err)})
		return refuse(http.StatusUnprocessableEntity, "inconsistent", "the consistency proof does not verify; the submission is recorded")
	case errors.Is(err, ledger.ErrInvalid), errors.Is(err, ledger.ErrMalformed):
		return refuse(http.StatusBadRequest, "bad_request", "old_size exceeds the checkpoint's size, or the checkpoint does not parse")
	case err != nil:
		return s.internal(ctx, "witness", err)
	}
	// The view moves before the answer leaves: a cosignature is never
	// given for a checkpoint this node would not hold its peer to.
	next := v
	next.Size, next.Checkpoint, next.UpdatedAt = c.Size, theirs, s.now().UTC()
	if err := s.st.PeerLogs().UpdatePeerLog(ctx, next, v.Size); errors.Is(err, store.ErrConflict) {
		return refuseSize(http.StatusConflict, "size_conflict", "another submission moved this node's view; prove from size", v.Size)
	} else if err != nil {
		return s.internal(ctx, "saving the view of a peer's log", err)
	}
	return http.StatusOK, Cosigned{Cosignature: string(line), Size: c.Size, WitnessKey: s.wvkey, LogKey: s.LogKey()}
}

// view answers a peer's question: which checkpoint of a third node's log
// did this node cosign last?
func (s *Service) view(ctx context.Context, p store.Peer, body []byte) (int, any) {
	var req ViewRequest
	if err := decodeJSON(body, &req); err != nil || req.PeerKeyID == "" {
		return refuse(http.StatusBadRequest, "bad_request", "the body must be a JSON object with peer_key_id")
	}
	v, err := s.st.PeerLogs().PeerLog(ctx, req.PeerKeyID)
	if errors.Is(err, store.ErrNotFound) {
		return http.StatusOK, View{}
	}
	if err != nil {
		return s.internal(ctx, "view of a peer's log", err)
	}
	return http.StatusOK, View{Checkpoint: string(v.Checkpoint), Size: v.Size}
}

// current answers a peer's fetch of this node's latest checkpoint.
func (s *Service) current(ctx context.Context, p store.Peer, body []byte) (int, any) {
	size, signed, err := s.st.Ledger().LatestCheckpoint(ctx)
	if errors.Is(err, ledger.ErrNotFound) {
		return refuse(http.StatusNotFound, "no_checkpoint", "this node has not signed a checkpoint yet")
	}
	if err != nil {
		return s.internal(ctx, "latest checkpoint", err)
	}
	lines, err := s.st.Ledger().Cosignatures(ctx, size)
	if err != nil {
		return s.internal(ctx, "cosignatures", err)
	}
	return http.StatusOK, Current{Checkpoint: string(ledger.WithCosignatures(signed, lines)), LogKey: s.LogKey(), WitnessKey: s.wvkey}
}

// proofRequest reads a proof request and the log's size; bad is set when
// the body, not the node, is at fault.
func (s *Service) proofRequest(ctx context.Context, body []byte) (req ProofRequest, size int64, bad bool, err error) {
	if err := decodeJSON(body, &req); err != nil {
		return req, 0, true, err
	}
	size, err = s.st.Ledger().Size(ctx)
	return req, size, false, err
}

func (s *Service) consistency(ctx context.Context, p store.Peer, body []byte) (int, any) {
	req, size, bad, err := s.proofRequest(ctx, body)
	if err != nil && !bad {
		return s.internal(ctx, "ledger size", err)
	}
	if bad || req.From < 0 || req.From > req.To || req.To > size {
		return refuse(http.StatusBadRequest, "bad_request", "the body must be a JSON object with 0 <= from <= to <= the log's size")
	}
	proof, err := ledger.ConsistencyProof(ctx, s.st.Ledger(), req.From, req.To)
	if err != nil {
		return s.internal(ctx, "consistency proof", err)
	}
	return http.StatusOK, Proof{Hashes: encodeHashes(proof)}
}

func (s *Service) inclusion(ctx context.Context, p store.Peer, body []byte) (int, any) {
	req, size, bad, err := s.proofRequest(ctx, body)
	if err != nil && !bad {
		return s.internal(ctx, "ledger size", err)
	}
	if bad || req.Index < 0 || req.Index >= req.To || req.To > size {
		return refuse(http.StatusBadRequest, "bad_request", "the body must be a JSON object with 0 <= index < to <= the log's size")
	}
	proof, err := ledger.InclusionProof(ctx, s.st.Ledger(), req.Index, req.To)
	if err != nil {
		return s.internal(ctx, "inclusion proof", err)
	}
	return http.StatusOK, Proof{Hashes: encodeHashes(proof)}
}
