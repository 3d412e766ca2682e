package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/store"
)

// Private matching across nodes (issue 14): the endpoints the two party
// nodes of a session call on each other. Round 2 goes through the escrow
// node's handover endpoints (handovers.go). The decisions are matching's;
// this file moves signed messages and turns refusals into codes.

// Node endpoints of matching.
const (
	PathMatchSession = "/node/v1/matches/sessions" // starter's node → other party's node
	PathMatchRound1  = "/node/v1/matches/round1"   // each party's node → the other's
)

// mountMatches adds the matching endpoints to h.
func (f *Federation) mountMatches(h *Handler) {
	if f.Matching == nil {
		return
	}
	h.Route("POST "+PathMatchSession, matchEndpoint(f, PathMatchSession, func(ctx context.Context, peer store.Peer, m matching.SessionMessage) (matching.Receipt, string, error) {
		r, err := f.Matching.ReceiveSession(ctx, peer, m)
		return r, m.Match, err
	}))
	h.Route("POST "+PathMatchRound1, matchEndpoint(f, PathMatchRound1, func(ctx context.Context, peer store.Peer, m matching.Round1Message) (matching.Receipt, string, error) {
		r, err := f.Matching.ReceiveRound1(ctx, peer, m)
		return r, m.Match, err
	}))
}

// matchEndpoint decodes a message of type M, runs fn and answers with its
// receipt or its coded refusal; a refusal is logged and told to this
// node's side of the session, if it holds one.
func matchEndpoint[M any](f *Federation, path string, fn func(ctx context.Context, peer store.Peer, m M) (matching.Receipt, string, error)) func(context.Context, store.Peer, []byte) (int, any) {
	return func(ctx context.Context, peer store.Peer, body []byte) (int, any) {
		var m M
		if err := json.Unmarshal(body, &m); err != nil {
			return http.StatusBadRequest, errorBody{Error: "bad_request", Message: "the body must be a matching message (docs/api.md)"}
		}
		r, id, err := fn(ctx, peer, m)
		if err != nil {
			status, eb := f.refuse(ctx, peer, path, err)
			if status < 500 && id != "" {
				if err := f.Matching.RefusedFromPeer(ctx, peer, id, eb.Error, err); err != nil {
					f.log().ErrorContext(ctx, "telling the party of a refused matching message", slog.Any("err", err))
				}
			}
			return status, eb
		}
		if !r.Duplicate {
			f.log().InfoContext(ctx, "matching message received", slog.String("peer", peer.Name), slog.String("path", path),
				slog.String("match", r.Match), slog.Int64("ledger_index", r.LedgerIndex))
		}
		return http.StatusOK, r
	}
}
