package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/store"
)

// Handovers across nodes (issue 14 item 4): the endpoints party nodes and
// the escrow node call on each other, and where each outbox kind is sent.
// The decisions are escrow's; this file moves signed messages, fetches a
// released deposit from the escrow node before its verdict is recorded,
// and turns refusals into codes.

// Node endpoints of handovers.
const (
	PathHandoverCase     = "/node/v1/handovers/cases"     // proposer's node → counterpart's node
	PathHandoverDecision = "/node/v1/handovers/decisions" // counterpart's node → proposer's node
	PathHandoverVerdict  = "/node/v1/handovers/verdicts"  // escrow node → party nodes
	PathEscrowCase       = "/node/v1/escrow/cases"        // proposer's node → escrow node
	PathEscrowDecision   = "/node/v1/escrow/decisions"    // counterpart's node → escrow node
	PathEscrowDeposit    = "/node/v1/escrow/deposits"     // depositor's node → escrow node
	PathEscrowFetch      = "/node/v1/escrow/fetch"        // recipient's node → escrow node
	PathHandoverDeposit  = "/node/v1/handovers/deposits"  // escrow node → depositor's node: the rest of a deposit
	// Gradual release between two nodes without an escrow node.
	PathHandoverCommitment   = "/node/v1/handovers/commitments"    // depositor's node → recipient's node
	PathHandoverChunk        = "/node/v1/handovers/chunks"         // depositor's node → recipient's node
	PathHandoverChunkVerdict = "/node/v1/handovers/chunk-verdicts" // recipient's node → depositor's node
)

// outboxPaths maps an outbox entry's kind to the endpoint it is sent to.
var outboxPaths = map[string]string{
	escrow.OutboxCase:         PathHandoverCase,
	escrow.OutboxDecision:     PathHandoverDecision,
	escrow.OutboxVerdict:      PathHandoverVerdict,
	escrow.OutboxHeldCase:     PathEscrowCase,
	escrow.OutboxHeldDecision: PathEscrowDecision,
	escrow.OutboxDeposit:      PathEscrowDeposit,
	escrow.OutboxCommitment:   PathHandoverCommitment,
	escrow.OutboxChunk:        PathHandoverChunk,
	escrow.OutboxChunkVerdict: PathHandoverChunkVerdict,
	matching.OutboxSession:    PathMatchSession,
	matching.OutboxRound1:     PathMatchRound1,
	exchange.OutboxContest:    PathContest,
}

// mountHandovers adds the handover endpoints to h.
func (f *Federation) mountHandovers(h *Handler) {
	if f.Escrow == nil {
		return
	}
	h.Route("POST "+PathHandoverCase, handoverEndpoint(f, PathHandoverCase, func(ctx context.Context, peer store.Peer, m escrow.CaseMessage) (any, string, error) {
		r, err := f.Escrow.ReceiveCase(ctx, peer, m)
		return r, m.Handover, err
	}))
	h.Route("POST "+PathHandoverDecision, handoverEndpoint(f, PathHandoverDecision, func(ctx context.Context, peer store.Peer, m escrow.DecisionMessage) (any, string, error) {
		r, err := f.Escrow.ReceiveDecision(ctx, peer, m)
		return r, m.Handover, err
	}))
	h.Route("POST "+PathHandoverVerdict, f.verdict)
	h.Route("POST "+PathHandoverCommitment, handoverEndpoint(f, PathHandoverCommitment, func(ctx context.Context, peer store.Peer, m escrow.CommitmentMessage) (any, string, error) {
		r, err := f.Escrow.ReceiveCommitment(ctx, peer, m)
		return r, m.Handover, err
	}))
	h.Route("POST "+PathHandoverChunk, handoverEndpoint(f, PathHandoverChunk, func(ctx context.Context, peer store.Peer, m escrow.ChunkMessage) (any, string, error) {
		r, err := f.Escrow.ReceiveChunk(ctx, peer, m)
		return r, m.Handover, err
	}))
	h.Route("POST "+PathHandoverChunkVerdict, handoverEndpoint(f, PathHandoverChunkVerdict, func(ctx context.Context, peer store.Peer, m escrow.ChunkVerdictMessage) (any, string, error) {
		r, err := f.Escrow.ReceiveChunkVerdict(ctx, peer, m)
		return r, m.Handover, err
	}))
	h.Route("POST "+PathEscrowCase, handoverEndpoint(f, PathEscrowCase, func(ctx context.Context, peer store.Peer, m escrow.CaseMessage) (any, string, error) {
		r, err := f.Escrow.HoldCase(ctx, peer, m)
		return r, "", err
	}))
	h.Route("POST "+PathEscrowDecision, handoverEndpoint(f, PathEscrowDecision, func(ctx context.Context, peer store.Peer, m escrow.DecisionMessage) (any, string, error) {
		r, err := f.Escrow.HoldDecision(ctx, peer, m)
		return r, "", err
	}))
	h.Route("POST "+PathEscrowDeposit, handoverEndpoint(f, PathEscrowDeposit, func(ctx context.Context, peer store.Peer, m escrow.DepositMessage) (any, string, error) {
		r, err := f.Escrow.HoldDeposit(ctx, peer, m, func(ctx context.Context, offset int64) (escrow.FetchAnswer, error) {
			return f.fetchPart(ctx, peer, PathHandoverDeposit, escrow.FetchRequest{Handover: m.Handover, Depositor: m.Party, Offset: offset})
		})
		return r, "", err
	}))
	h.Route("POST "+PathHandoverDeposit, handoverEndpoint(f, PathHandoverDeposit, func(ctx context.Context, peer store.Peer, m escrow.FetchRequest) (any, string, error) {
		a, err := f.Escrow.DepositPart(ctx, peer, m)
		return a, "", err
	}))
	h.Route("POST "+PathEscrowFetch, handoverEndpoint(f, PathEscrowFetch, func(ctx context.Context, peer store.Peer, m escrow.FetchRequest) (any, string, error) {
		a, err := f.Escrow.FetchHeld(ctx, peer, m)
		return a, "", err
	}))
}

// handoverEndpoint decodes a message of type M, runs fn and answers with
// its result or its coded refusal. A refusal of a message about a case
// this node's party is in (case is its id) is told to that party.
func handoverEndpoint[M any](f *Federation, path string, fn func(ctx context.Context, peer store.Peer, m M) (answer any, caseID string, err error)) func(context.Context, store.Peer, []byte) (int, any) {
	return func(ctx context.Context, peer store.Peer, body []byte) (int, any) {
		var m M
		if err := json.Unmarshal(body, &m); err != nil {
			return http.StatusBadRequest, errorBody{Error: "bad_request", Message: "the body must be a handover message (docs/api.md)"}
		}
		out, caseID, err := fn(ctx, peer, m)
		if err != nil {
			return f.refuseHandover(ctx, peer, path, caseID, err)
		}
		return http.StatusOK, out
	}
}

// refuseHandover answers a refused handover message with its code (425
// too_early for a step ahead of its case, which the sender retries), logs
// it, and tells the local parties of the case.
func (f *Federation) refuseHandover(ctx context.Context, peer store.Peer, path, caseID string, err error) (int, any) {
	status, eb := f.refuse(ctx, peer, path, err)
	if errors.Is(err, escrow.ErrTooEarly) {
		status = http.StatusTooEarly
	}
	if status < 500 && status != http.StatusTooEarly && caseID != "" {
		if err := f.Escrow.RefusedFromPeer(ctx, peer, caseID, eb.Error, err); err != nil {
			f.log().ErrorContext(ctx, "telling the parties of a refused handover message", slog.Any("err", err))
		}
	}
	return status, eb
}

// verdict records the escrow node's verdict on a case of this node's
// party. For a release it first fetches the other side's sealed deposit
// from the escrow node (the peer that sent the verdict); if that fails the
// verdict is answered 503, and the escrow node's outbox sends it again.
func (f *Federation) verdict(ctx context.Context, peer store.Peer, body []byte) (int, any) {
	var v escrow.VerdictMessage
	if err := json.Unmarshal(body, &v); err != nil {
		return http.StatusBadRequest, errorBody{Error: "bad_request", Message: "the body must be a handover verdict (docs/api.md)"}
	}
	depositor, err := f.Escrow.VerdictTarget(ctx, peer, v)
	if err != nil {
		return f.refuseHandover(ctx, peer, PathHandoverVerdict, v.Handover, err)
	}
	var content []byte
	if depositor != "" {
		a, err := f.FetchReleased(ctx, peer, v.Handover, depositor)
		if err != nil {
			f.log().WarnContext(ctx, "fetching a released deposit from the escrow node", slog.String("peer", peer.Name),
				slog.String("handover", v.Handover), slog.Any("err", err))
			return http.StatusServiceUnavailable, errorBody{Error: "fetch_failed", Message: "this node could not fetch the released deposit yet; send the verdict again"}
		}
		content = a.Content
	}
	r, err := f.Escrow.ReceiveVerdict(ctx, peer, v, content)
	if err != nil {
		return f.refuseHandover(ctx, peer, PathHandoverVerdict, v.Handover, err)
	}
	if !r.Duplicate {
		f.log().InfoContext(ctx, "handover verdict recorded", slog.String("peer", peer.Name), slog.String("handover", v.Handover),
			slog.String("state", r.State), slog.Int64("ledger_index", r.LedgerIndex))
	}
	return http.StatusOK, r
}

// FetchReleased asks the escrow node peer for depositor's released deposit
// in a case, part after part (escrow.FetchPartSize), each verified as its
// answer to that request.
func (f *Federation) FetchReleased(ctx context.Context, peer store.Peer, handoverID, depositor string) (escrow.FetchAnswer, error) {
	var sum string
	content, err := escrow.FetchWhole(ctx, handoverID, depositor, 0, "", nil, func(ctx context.Context, offset int64) (escrow.FetchAnswer, error) {
		a, err := f.fetchPart(ctx, peer, PathEscrowFetch, escrow.FetchRequest{Handover: handoverID, Depositor: depositor, Offset: offset})
		sum = a.SHA256
		return a, err
	})
	if err != nil {
		return escrow.FetchAnswer{}, fmt.Errorf("peer %q: %w", peer.Name, err)
	}
	return escrow.FetchAnswer{Handover: handoverID, Depositor: depositor, SHA256: sum, Size: int64(len(content)), Content: content}, nil
}

// fetchPart sends r to path on peer and returns its answer.
func (f *Federation) fetchPart(ctx context.Context, peer store.Peer, path string, r escrow.FetchRequest) (escrow.FetchAnswer, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return escrow.FetchAnswer{}, err
	}
	_, out, err := f.client(peer).Do(ctx, http.MethodPost, path, body)
	if err != nil {
		return escrow.FetchAnswer{}, err
	}
	var a escrow.FetchAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		return escrow.FetchAnswer{}, fmt.Errorf("peer %q: the deposit answer is not JSON: %w", peer.Name, err)
	}
	return a, nil
}
