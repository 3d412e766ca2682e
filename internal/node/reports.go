package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/store"
)

// Joint reports across nodes (issue 14): the endpoint the signer's node
// calls on the other party's node with a report signature it recorded.
// The checks are report's and exchange's (the facts, the agreement, the
// nodes, the signature); this file moves signed messages and turns
// refusals into codes.

// PathReportSignature is where a report signature is relayed: signer's
// node → the other party's node.
const PathReportSignature = "/node/v1/reports/signatures"

func init() { outboxPaths[exchange.OutboxReportSignature] = PathReportSignature }

// mountReports adds the report endpoint when the node builds reports.
func (f *Federation) mountReports(h *Handler) {
	if f.Reports != nil {
		h.Route("POST "+PathReportSignature, f.reportSignature)
	}
}

// reportSignature takes a relayed report signature and answers with its
// receipt or its coded refusal; a refusal is logged and told to this
// node's party of the agreement, if it has one here.
func (f *Federation) reportSignature(ctx context.Context, peer store.Peer, body []byte) (int, any) {
	var m exchange.ReportMessage
	if err := json.Unmarshal(body, &m); err != nil || m.Agreement == "" {
		return http.StatusBadRequest, errorBody{Error: "bad_request", Message: "the body must be a report signature message (docs/api.md)"}
	}
	r, err := f.Reports.ReceiveSignature(ctx, peer, m)
	if err != nil {
		status, eb := f.refuse(ctx, peer, PathReportSignature, err)
		if status < 500 {
			if err := f.Ex.RefusedReportSignature(ctx, peer, m.Agreement, eb.Error, err); err != nil {
				f.log().ErrorContext(ctx, "telling the party of a refused report signature", slog.Any("err", err))
			}
		}
		return status, eb
	}
	if !r.Duplicate {
		f.log().InfoContext(ctx, "report signature received", slog.String("peer", peer.Name), slog.String("agreement", m.Agreement),
			slog.Int64("ledger_index", r.LedgerIndex))
	}
	return http.StatusOK, r
}
