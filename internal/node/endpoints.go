package node

import (
	"context"
	"net/http"

	"github.com/parley-cti/parley/internal/store"
)

// EndpointFunc serves one node-to-node endpoint for an authenticated
// peer: it gets the verified body and returns the status and the value
// to answer with as JSON. A refusal is a non-2xx status with a body whose
// "error" and "message" fields are a code and fixed text (RefusedError
// gives both to the caller).
type EndpointFunc func(ctx context.Context, peer store.Peer, body []byte) (status int, answer any)

// Endpoint wraps fn as the handler of another package's endpoint under
// /node/: the request is authenticated exactly as hello is (pinned key,
// validity, nonce, digest, no party token) before fn runs, and the answer
// is signed for that request. The caller mounts it at its own pattern,
// e.g. mux.Handle("POST /node/v1/witness/add-checkpoint", h.Endpoint(fn)).
func (h *Handler) Endpoint(fn EndpointFunc) http.Handler { return h.signed(fn) }
