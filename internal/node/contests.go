package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/store"
)

// Contests across nodes (issue 14): the endpoint the contester's node
// calls on the contributor's node with a contest, or its withdrawal, it
// recorded and acted on itself. The decisions are exchange's (it only
// records and shows what a peer relays); this file moves signed messages
// and turns refusals into codes.

// PathContest is where a contest or its withdrawal is relayed:
// contester's node → contributor's node.
const PathContest = "/node/v1/contests"

// contest takes a relayed contest message and answers with its receipt
// or its coded refusal; a refusal is logged and told to this node's party
// of the agreement, if it has one here.
func (f *Federation) contest(ctx context.Context, peer store.Peer, body []byte) (int, any) {
	var m exchange.ContestMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return http.StatusBadRequest, errorBody{Error: "bad_request", Message: "the body must be a contest message (docs/api.md)"}
	}
	r, err := f.Ex.ReceiveContest(ctx, peer, m)
	if err != nil {
		status, eb := f.refuse(ctx, peer, PathContest, err)
		if status < 500 {
			if err := f.Ex.RefusedContest(ctx, peer, m, eb.Error, err); err != nil {
				f.log().ErrorContext(ctx, "telling the party of a refused contest", slog.Any("err", err))
			}
		}
		return status, eb
	}
	if !r.Duplicate {
		f.log().InfoContext(ctx, "contest received", slog.String("peer", peer.Name), slog.String("contest", r.Contest),
			slog.Int64("ledger_index", r.LedgerIndex))
	}
	return http.StatusOK, r
}
