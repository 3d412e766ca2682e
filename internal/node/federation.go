package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
)

// Agreements across nodes (issue 14, item 2): the node endpoints a peer
// calls, the calls this node makes, and the outbox sender. The decisions
// (who may speak for whom, what verifies) are exchange's; this file moves
// signed messages and turns refusals into codes.

// Node endpoints of agreements.
const (
	PathLookupParty = "/node/v1/parties/lookup"
	PathStep        = "/node/v1/agreements/steps"
	PathRequestStep = "/node/v1/requests/steps"
)

// ErrPeerUnreachable: the peer did not answer (or not with its pinned
// key); the request may be retried.
var ErrPeerUnreachable = fault.Refine(fault.New(fault.Conflict, "the peer node did not answer; try again when it is up"), nil, "peer_unreachable")

// ErrPeerRefused: the peer answered with a refusal; the message says which.
var ErrPeerRefused = fault.Refine(fault.New(fault.Conflict, "the peer node refused"), nil, "peer_refused")

// LookupRequest asks a peer for one of its parties, by id or name.
type LookupRequest struct {
	Party string `json:"party"`
}

// Federation carries agreements between this node and its peers.
type Federation struct {
	Self  *Identity
	Peers *Peers
	Ex    *exchange.Service
	// Requests takes the request steps peers relay (nil: refused).
	Requests *request.Service
	// Escrow runs handovers across nodes (handovers.go); nil leaves their
	// endpoints unmounted.
	Escrow *escrow.Service
	// Matching runs private matching across nodes (matches.go); nil
	// leaves its endpoints unmounted.
	Matching *matching.Service
	// Reports takes the report signatures peers relay (reports.go); nil
	// leaves its endpoint unmounted.
	Reports *report.Service
	Log     *slog.Logger
	// HTTP is the client peers are called with (a zero one when nil).
	HTTP *http.Client
	// Interval is how often the outbox is looked at (default 500 ms);
	// MaxBackoff caps the wait between attempts at an unreachable peer
	// (default 15 s).
	Interval, MaxBackoff time.Duration
	// FeedInterval is how often a feed with nothing new is asked again
	// (default 2 s); FeedLimit the contributions asked per page (default
	// and most exchange.FeedPageMax).
	FeedInterval time.Duration
	FeedLimit    int
	// Receipts keeps a peer's receipt for an agreement step it recorded
	// (the cross-witnessing service's AddReceipt; nil keeps none).
	Receipts func(ctx context.Context, peer string, index int64, leafHash string) error
	now      func() time.Time

	mu  sync.Mutex
	due map[string]bool // pulls a peer nudged (feeds.go)
	// versionsAt is when each pull last asked for later versions, and
	// ingestedAt when it last ingested a page of contributions (feeds.go).
	versionsAt, ingestedAt map[string]time.Time
	wake                   chan struct{}  // wakes Run after a nudge
	nudging                map[string]int // nudges to peers in flight, and asked again
}

func (f *Federation) log() *slog.Logger {
	if f.Log == nil {
		return slog.Default()
	}
	return f.Log
}

func (f *Federation) clock() time.Time {
	if f.now != nil {
		return f.now()
	}
	return time.Now()
}

func (f *Federation) client(p store.Peer) *Client {
	return &Client{Self: f.Self, Peer: p, HTTP: f.HTTP, Now: f.now}
}

// Mount adds the agreement endpoints to h.
func (f *Federation) Mount(h *Handler) {
	h.Route("POST "+PathLookupParty, f.lookup)
	h.Route("POST "+PathStep, f.step)
	h.Route("POST "+PathRequestStep, f.requestStep)
	h.Route("POST "+PathContest, f.contest)
	f.mountFeeds(h)
	f.mountHandovers(h)
	f.mountMatches(h)
	f.mountReports(h)
}

// lookup answers a peer's question about one of this node's parties.
func (f *Federation) lookup(ctx context.Context, peer store.Peer, body []byte) (int, any) {
	var req LookupRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Party == "" {
		return http.StatusBadRequest, errorBody{Error: "bad_request", Message: "the body must be a JSON object with party (an id or a name)"}
	}
	card, err := f.Ex.LocalParty(ctx, req.Party)
	if err != nil {
		return f.refuse(ctx, peer, PathLookupParty, err)
	}
	return http.StatusOK, card
}

// step receives a signed agreement step a peer relays for its party.
func (f *Federation) step(ctx context.Context, peer store.Peer, body []byte) (int, any) {
	var msg exchange.StepMessage
	if err := json.Unmarshal(body, &msg); err != nil {
		return http.StatusBadRequest, errorBody{Error: "bad_request", Message: "the body must be an agreement step message (docs/api.md)"}
	}
	got, err := f.Ex.ReceiveStep(ctx, peer, msg)
	if err != nil {
		status, eb := f.refuse(ctx, peer, PathStep, err)
		if status < 500 {
			if err := f.Ex.RefusedStep(ctx, peer, msg, eb.Error, err); err != nil {
				f.log().ErrorContext(ctx, "telling the party of a refused step", slog.Any("err", err))
			}
		}
		return status, eb
	}
	if !got.Duplicate {
		f.log().InfoContext(ctx, "agreement step received", slog.String("peer", peer.Name), slog.String("agreement", got.Agreement),
			slog.Int64("ledger_index", got.LedgerIndex))
	}
	return http.StatusOK, got
}

// requestStep receives a request step a peer relays for its party.
func (f *Federation) requestStep(ctx context.Context, peer store.Peer, body []byte) (int, any) {
	var m request.Relayed
	if err := json.Unmarshal(body, &m); err != nil {
		return http.StatusBadRequest, errorBody{Error: "bad_request", Message: "the body must be a request step message (docs/api.md)"}
	}
	if f.Requests == nil {
		return http.StatusNotFound, errorBody{Error: "not_found", Message: "this node takes no request steps"}
	}
	got, err := f.Requests.Receive(ctx, peer, m)
	if err != nil {
		status, eb := f.refuse(ctx, peer, PathRequestStep, err)
		if status < 500 {
			if err := f.Requests.RefusedRelay(ctx, peer, m, eb.Error, err); err != nil {
				f.log().ErrorContext(ctx, "telling the party of a refused request step", slog.Any("err", err))
			}
		}
		return status, eb
	}
	if !got.Duplicate {
		f.log().InfoContext(ctx, "request step received", slog.String("peer", peer.Name), slog.String("request", got.Request),
			slog.String("action", m.Action), slog.Int64("ledger_index", got.LedgerIndex))
	}
	return http.StatusOK, got
}

// pathOf is the endpoint an outbox entry of kind is posted to.
func pathOf(kind string) string {
	if kind == request.OutboxKind {
		return PathRequestStep
	}
	if p, ok := outboxPaths[kind]; ok {
		return p
	}
	return PathStep
}

// refuse turns a domain error into a coded answer and logs it.
func (f *Federation) refuse(ctx context.Context, peer store.Peer, path string, err error) (int, errorBody) {
	status, eb := domainRefusal(err)
	if status >= 500 {
		f.log().ErrorContext(ctx, "node request", slog.String("peer", peer.Name), slog.String("path", path), slog.Any("err", err))
		return status, eb
	}
	f.log().WarnContext(ctx, "node request refused", slog.String("peer", peer.Name), slog.String("path", path),
		slog.String("code", eb.Error), slog.String("why", err.Error()))
	return status, eb
}

// agreementCodes names the agreement package's refusals for a peer.
var agreementCodes = []struct {
	err  error
	code string
}{
	{agreement.ErrDocumentChanged, "document_changed"},
	{agreement.ErrBadSignature, "signature_invalid"},
	{agreement.ErrWrongVersion, "wrong_version"},
	{agreement.ErrIdentityMismatch, "identity_mismatch"},
	{agreement.ErrUnknownKey, "unknown_party_key"},
	{agreement.ErrInvalidDocument, "invalid_document"},
	{agreement.ErrIllegalTransition, "illegal_transition"},
	{agreement.ErrNotParty, "not_party"},
}

// domainRefusal maps a refusal of exchange or agreement to its status,
// code and client-safe text: the one place /node/v1 agreement endpoints
// turn domain errors into answers.
func domainRefusal(err error) (int, errorBody) {
	code := fault.Code(err)
	if code == "" {
		for _, c := range agreementCodes {
			if errors.Is(err, c.err) {
				code = c.code
				break
			}
		}
	}
	var status int
	switch fault.KindOf(err) {
	case fault.Invalid:
		status = http.StatusUnprocessableEntity
	case fault.Forbidden:
		status = http.StatusForbidden
	case fault.NotFound:
		status = http.StatusNotFound
	case fault.Conflict:
		status = http.StatusConflict
	case fault.TooLarge:
		status = http.StatusRequestEntityTooLarge
	case fault.Unavailable:
		return http.StatusServiceUnavailable, errorBody{Error: "unavailable", Message: "the database is unavailable; retry shortly"}
	default:
		return http.StatusInternalServerError, errorBody{Error: "internal", Message: "the node failed to handle the request"}
	}
	if code == "" {
		code = map[int]string{422: "invalid", 403: "forbidden", 404: "not_found", 409: "conflict", 413: "too_large"}[status]
	}
	msg, ok := fault.MessageOf(err)
	if !ok {
		msg = fault.Message(http.StatusText(status))
	}
	return status, errorBody{Error: code, Message: string(msg)}
}

// LookupParty asks the peer for one of its parties and returns what it
// said, verified as the peer's answer to this request.
func (c *Client) LookupParty(ctx context.Context, ref string) (exchange.PartyCard, error) {
	body, err := json.Marshal(LookupRequest{Party: ref})
	if err != nil {
		return exchange.PartyCard{}, err
	}
	_, out, err := c.Do(ctx, http.MethodPost, PathLookupParty, body)
	if err != nil {
		return exchange.PartyCard{}, err
	}
	var card exchange.PartyCard
	if err := json.Unmarshal(out, &card); err != nil {
		return exchange.PartyCard{}, fmt.Errorf("peer %q: the party answer is not JSON: %w", c.Peer.Name, err)
	}
	return card, nil
}

// LookupRemote asks the peer named peerName for its party ref and records
// what it says (its id, name and keys) for this node's parties to address
// it. ErrNoSuchPeer, ErrPeerUnreachable, ErrPeerRefused (its message says
// why, e.g. no such party there), or exchange's refusals of the card.
func (f *Federation) LookupRemote(ctx context.Context, peerName, ref string) (exchange.RemoteParty, error) {
	peer, err := f.Peers.Get(ctx, peerName)
	if err != nil {
		return exchange.RemoteParty{}, err
	}
	card, err := f.client(peer).LookupParty(ctx, ref)
	var re *RefusedError
	switch {
	case errors.As(err, &re) && re.Signed:
		return exchange.RemoteParty{}, fault.Errorf("%w: peer %q answered %s: %s", ErrPeerRefused, peerName, re.Code, re.Message)
	case err != nil:
		f.log().WarnContext(ctx, "looking up a peer's party", slog.String("peer", peerName), slog.Any("err", err))
		// What the peer said before still holds as far as it went: a
		// proposal made now waits in the outbox until the peer is up.
		if rp, kerr := f.Ex.KnownRemoteParty(ctx, peer, ref); kerr == nil {
			return rp, nil
		}
		if errors.As(err, &re) {
			// Something answered at the peer's address, but not signed by
			// the pinned key: its words are not the peer's, so only the
			// status is repeated. The usual cause is a peer whose operator
			// has not pinned this node (it cannot sign for a stranger).
			return exchange.RemoteParty{}, fault.Errorf("%w (peer %q): an unsigned answer (HTTP %d) came back, which this node does not take as the peer's; has the peer's operator pinned this node (parley peer add)?",
				ErrPeerUnreachable, peerName, re.Status)
		}
		return exchange.RemoteParty{}, fault.Errorf("%w (peer %q)", ErrPeerUnreachable, peerName)
	}
	if card.PartyID != ref && card.Name != ref {
		return exchange.RemoteParty{}, fault.Errorf("%w: peer %q answered for %q when asked for %q", ErrPeerRefused, peerName, card.Name, ref)
	}
	return f.Ex.LearnRemoteParty(ctx, peer, card)
}

// Run sends the outbox and pulls the feeds (feeds.go) until ctx ends:
// each peer's entries in order, the next only once the one before is
// delivered or refused for good; an unreachable peer is tried again after
// a growing wait.
func (f *Federation) Run(ctx context.Context) {
	interval := f.Interval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	wake := f.wakeChan()
	for {
		f.SendDue(ctx)
		f.PullDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// SendDue sends every outbox entry that is due, peer by peer, until none
// is; it returns how many were closed (delivered or refused).
func (f *Federation) SendDue(ctx context.Context) int {
	closed := 0
	for ctx.Err() == nil {
		heads, err := f.Ex.OutboxHeads(ctx)
		if err != nil {
			f.log().ErrorContext(ctx, "reading the outbox", slog.Any("err", err))
			return closed
		}
		progress := false
		for _, e := range heads {
			if e.NextAttempt.After(f.clock()) {
				continue
			}
			if f.send(ctx, e) {
				closed++
				progress = true
			}
		}
		if !progress {
			return closed
		}
	}
	return closed
}

// send makes one attempt at e and reports whether it is closed.
func (f *Federation) send(ctx context.Context, e store.OutboxEntry) bool {
	peer, err := f.Peers.ByKeyID(ctx, e.PeerKeyID)
	if err != nil {
		f.retry(ctx, e, "the peer is not pinned (parley peer add)")
		return false
	}
	_, answer, err := f.client(peer).Do(ctx, http.MethodPost, pathOf(e.Kind), e.Body)
	var re *RefusedError
	switch {
	case err == nil:
		if err := f.Ex.OutboxDone(ctx, e.Seq, store.OutboxDelivered, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
			f.log().ErrorContext(ctx, "closing an outbox entry", slog.Int64("seq", e.Seq), slog.Any("err", err))
			return false
		}
		if e.Kind == exchange.OutboxStep {
			f.keepReceipt(ctx, peer, e, answer)
		}
		f.log().InfoContext(ctx, "outbox entry delivered", slog.String("peer", peer.Name), slog.String("kind", e.Kind), slog.String("agreement", e.AgreementID), slog.Int64("seq", e.Seq))
		return true
	case errors.As(err, &re) && re.Signed && re.Status >= 400 && re.Status < 500 && re.Status != http.StatusTooManyRequests && re.Status != http.StatusTooEarly:
		// The peer itself said no, in words it signed: sending again would
		// get the same answer. The party that signed the step hears of it.
		why := re.Code + ": " + re.Message
		if err := f.refusedForGood(ctx, peer, e, re, why); err != nil && !errors.Is(err, store.ErrNotFound) {
			f.log().ErrorContext(ctx, "closing an outbox entry", slog.Int64("seq", e.Seq), slog.Any("err", err))
			return false
		}
		if e.PartyID == "" {
			// An escrow node's verdict concerns no party of its own.
		} else if err := f.Ex.DeliveryRefused(ctx, e, peer.Name, re.Code, re.Message); err != nil {
			f.log().ErrorContext(ctx, "telling the party of a refused delivery", slog.Any("err", err))
		}
		f.log().WarnContext(ctx, "agreement step refused by the peer", slog.String("peer", peer.Name), slog.String("agreement", e.AgreementID),
			slog.Int64("seq", e.Seq), slog.String("code", re.Code), slog.String("message", re.Message))
		return true
	case ctx.Err() != nil:
		return false // stopping: the entry stays as it was, and is sent at the next start
	default:
		// The detail (addresses, the transport's words) is for the log;
		// the outbox, which the party reads, says what it means.
		why := "the peer did not answer"
		if re != nil {
			why = "the peer refused for now: " + re.Code
		}
		f.log().DebugContext(ctx, "agreement step not delivered", slog.Int64("seq", e.Seq), slog.Any("err", err))
		f.retry(ctx, e, why)
		return false
	}
}

// refusedForGood closes e as refused for good by peer (re, why): a
// request step through the request workflow, which closes the request
// undelivered in the same transaction when the step is its filing
// (request.Service.RefusedForGood); any other entry as refused only.
func (f *Federation) refusedForGood(ctx context.Context, peer store.Peer, e store.OutboxEntry, re *RefusedError, why string) error {
	if e.Kind != request.OutboxKind || f.Requests == nil {
		return f.Ex.OutboxDone(ctx, e.Seq, store.OutboxRefused, why)
	}
	closed, err := f.Requests.RefusedForGood(ctx, peer, e, re.Code, re.Message, why)
	if closed {
		f.log().WarnContext(ctx, "request closed undelivered: the peer refused its filing for good", slog.String("peer", peer.Name),
			slog.String("agreement", e.AgreementID), slog.Int64("seq", e.Seq), slog.String("code", re.Code))
	}
	return err
}

// keepReceipt records, from the peer's signed answer to an agreement
// step, that its log holds the step's entry (index and leaf hash), so
// that parley verify --peers holds it to that: a node that later shows a
// log without it is caught (receipt). An answer without one (a
// duplicate) or not for this step's agreement records nothing.
func (f *Federation) keepReceipt(ctx context.Context, peer store.Peer, e store.OutboxEntry, answer []byte) {
	var got exchange.StepReceipt
	if f.Receipts == nil || json.Unmarshal(answer, &got) != nil || got.LeafHash == "" || got.Agreement != e.AgreementID || got.Duplicate {
		return
	}
	if err := f.Receipts(ctx, peer.Name, got.LedgerIndex, got.LeafHash); err != nil {
		f.log().WarnContext(ctx, "keeping a peer's receipt", slog.String("peer", peer.Name), slog.Int64("index", got.LedgerIndex), slog.Any("err", err))
	}
}

func (f *Federation) retry(ctx context.Context, e store.OutboxEntry, why string) {
	max := f.MaxBackoff
	if max <= 0 {
		max = 15 * time.Second
	}
	wait := time.Second << min(e.Attempts, 20)
	wait = min(wait, max)
	if err := f.Ex.OutboxRetry(ctx, e.Seq, e.Attempts+1, f.clock().Add(wait), why); err != nil && !errors.Is(err, store.ErrNotFound) {
		f.log().ErrorContext(ctx, "recording an outbox attempt", slog.Int64("seq", e.Seq), slog.Any("err", err))
	}
	if e.Attempts == 0 {
		f.log().WarnContext(ctx, "agreement step not delivered yet; retrying", slog.Int64("seq", e.Seq), slog.String("agreement", e.AgreementID), slog.String("why", why))
	}
}
