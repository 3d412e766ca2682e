package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// MaxBody bounds a node-to-node request body.
const MaxBody = 1 << 20

// Handler serves /node/: every request must be signed by a pinned peer,
// and every answer to one that is, is signed by this node.
type Handler struct {
	id        *Identity
	peers     *Peers
	publicURL string // "" to take the request's own scheme and host
	replays   *replayCache
	log       *slog.Logger
	now       func() time.Time
	routes    []route
}

// route is a signed endpoint other files add (federation.go).
type route struct {
	pattern string
	fn      func(ctx context.Context, peer store.Peer, body []byte) (int, any)
}

// Route adds a signed endpoint, mounted by Register.
func (h *Handler) Route(pattern string, fn func(ctx context.Context, peer store.Peer, body []byte) (int, any)) {
	h.routes = append(h.routes, route{pattern, fn})
}

// NewHandler returns the node-to-node surface of the node id, accepting
// the peers pinned in peers.
// publicURL, when set, is the base of the target URI peers sign (the URL
// they pinned, which behind a proxy differs from what the server sees);
// when empty the request's own scheme and Host are used.
func NewHandler(id *Identity, peers *Peers, publicURL string, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{id: id, peers: peers, publicURL: publicURL, replays: newReplayCache(replayMax), log: log, now: time.Now}
}

// Register mounts the handler's routes on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /node/v1/hello", h.signed(h.hello))
	for _, r := range h.routes {
		mux.Handle(r.pattern, h.signed(r.fn))
	}
	// Anything else under /node/ is authenticated before it is found
	// missing, so an outsider learns nothing of the routes.
	mux.Handle("/node/", h.signed(func(ctx context.Context, peer store.Peer, body []byte) (int, any) {
		return http.StatusNotFound, errorBody{Error: "not_found", Message: "no such node endpoint"}
	}))
}

// HelloRequest is what a node says of itself in POST /node/v1/hello.
type HelloRequest struct {
	URL string `json:"url"` // the caller's public URL
}

// HelloAnswer is the answer: who answered, and whom it took the caller for.
type HelloAnswer struct {
	URL     string `json:"url"`      // the answering node's URL
	Key     string `json:"key"`      // its verifier key
	Peer    string `json:"peer"`     // the name it pinned the caller under
	PeerURL string `json:"peer_url"` // the URL it pinned for the caller
}

func (h *Handler) hello(ctx context.Context, peer store.Peer, body []byte) (int, any) {
	var req HelloRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, errorBody{Error: "bad_request", Message: "the body must be a JSON object with url"}
	}
	self := h.publicURL
	if self == "" {
		self, _ = h.peers.PublicURL(ctx)
	}
	return http.StatusOK, HelloAnswer{URL: self, Key: h.id.Public.VKey, Peer: peer.Name, PeerURL: peer.URL}
}

// errorBody is the JSON of every refusal on /node/.
type errorBody struct {
	Error   string `json:"error"`   // a code, see refusal
	Message string `json:"message"` // fixed text for that code
}

// refusal maps an authentication failure to its status, code and
// client-safe text: the one place /node/ turns errors into answers.
func refusal(err error) (int, errorBody) {
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			return r.status, errorBody{Error: r.code, Message: r.text}
		}
	}
	return http.StatusInternalServerError, errorBody{Error: "internal", Message: "the node failed to handle the request"}
}

var refusals = []struct {
	err    error
	status int
	code   string
	text   string
}{
	{ErrPartyToken, http.StatusUnauthorized, "party_token", "node endpoints take no Authorization header: a party's token never leaves its own node; sign the request with the node key"},
	{ErrUnsigned, http.StatusUnauthorized, "unsigned", "node requests must carry an RFC 9421 signature tagged parley-node"},
	{ErrMalformedSignature, http.StatusUnauthorized, "malformed_signature", "the request's signature fields are malformed or do not cover @method, @target-uri and content-digest with created, expires, nonce and keyid"},
	{ErrUnknownKey, http.StatusUnauthorized, "unknown_key", "the signing key is not pinned as a peer of this node"},
	{ErrBadSignature, http.StatusUnauthorized, "bad_signature", "the signature does not verify with the pinned key (was the request changed, or sent to another URL than the one signed?)"},
	{ErrExpired, http.StatusUnauthorized, "expired", "the signature is expired, too old or dated in the future; check both nodes' clocks"},
	{ErrReplayed, http.StatusUnauthorized, "replayed", "this signature's nonce was used already"},
	{ErrDigest, http.StatusUnauthorized, "digest_mismatch", "the body does not match its Content-Digest"},
	{ErrBusy, http.StatusServiceUnavailable, "busy", "too many signed requests from this peer at once; retry shortly"},
	{store.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "the database is unavailable; retry shortly"},
}

// refusalFor returns the sentinel a refusal code stands for, so a client
// can branch on what the peer said.
func refusalFor(code string) error {
	for _, r := range refusals {
		if r.code == code {
			return r.err
		}
	}
	return nil
}

// target is the absolute URI r was sent to, as its signer saw it.
func (h *Handler) target(r *http.Request) string {
	if h.publicURL != "" {
		return h.publicURL + r.RequestURI
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.RequestURI
}

// lookup finds the pinned peer whose key has id keyID.
func (h *Handler) lookup(ctx context.Context, keyID string) (store.Peer, PublicKey, error) {
	p, err := h.peers.ByKeyID(ctx, keyID)
	if err != nil {
		return store.Peer{}, PublicKey{}, err
	}
	k, err := ParseKey(p.Key)
	if err != nil {
		return store.Peer{}, PublicKey{}, fmt.Errorf("pinned key of peer %q: %w", p.Name, err)
	}
	return p, k, nil
}

// signed authenticates a request, runs fn for its peer and signs the
// answer. Refusals are not signed: there is no verified request to bind
// them to, and they carry nothing a forger could gain by.
func (h *Handler) signed(fn func(ctx context.Context, peer store.Peer, body []byte) (int, any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "too_large", Message: "a node request body is at most " + strconv.Itoa(MaxBody) + " bytes"})
			return
		}
		var peer store.Peer
		now := h.now()
		sr, err := verifyRequest(r, h.target(r), body, now, func(keyID string) (PublicKey, error) {
			p, k, err := h.lookup(ctx, keyID)
			peer = p
			return k, err
		}, h.replays)
		if err != nil {
			status, eb := refusal(err)
			if status == http.StatusInternalServerError {
				h.log.ErrorContext(ctx, "node request", slog.Any("err", err))
			} else {
				h.log.WarnContext(ctx, "node request refused", slog.String("code", eb.Error), slog.String("why", err.Error()),
					slog.String("remote", r.RemoteAddr), slog.String("path", r.URL.Path))
			}
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Signature realm="parley-node"`)
			}
			if status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "5")
			}
			writeJSON(w, status, eb)
			return
		}
		status, v := fn(ctx, peer, body)
		out, err := json.Marshal(v)
		if err != nil {
			h.log.ErrorContext(ctx, "node answer", slog.Any("err", err))
			status, out = http.StatusInternalServerError, []byte(`{"error":"internal","message":"the node failed to handle the request"}`)
		}
		out = append(out, '\n')
		if err := h.id.signResponse(w.Header(), status, out, r.Header, sr.label, h.now()); err != nil {
			h.log.ErrorContext(ctx, "signing a node answer", slog.Any("err", err))
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal", Message: "the node failed to handle the request"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(out)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}
