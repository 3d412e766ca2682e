// Package api is parley's management API: JSON over HTTP(S) under /api/v1/
// for parties' keys, agreements, balances, handovers, requests, matching,
// joint reports and verifications. It authenticates callers like the TAXII
// surface does and turns HTTP into calls on the services it is handed
// (Services: exchange, escrow, request, matching, …), which decide. It holds
// no store and builds no service: internal/server builds each once.
//
// Errors reach clients only through writeError, which maps fault kinds to
// statuses and shows only fault messages; a 500 logs its cause and sends a
// fixed message.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/health"
	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/mirror"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/verification"
	"github.com/parley-cti/parley/internal/wire"
)

// Prefix is where the management API lives.
const Prefix = "/api/v1/"

// MaxBody bounds every request body.
const MaxBody = 1 << 20

// Services are what the API turns HTTP into calls on. The server builds
// each once and hands them over; the API holds no store and builds no
// service of its own.
type Services struct {
	Exchange      *exchange.Service
	Parties       *party.Service
	Handovers     *escrow.Service
	Requests      *request.Service
	Matches       *matching.Service
	Reports       *report.Service
	Verifications *verification.Service
	Mirrors       *mirror.Service
	// Remote looks up a peer node's party (internal/node); nil on a
	// server that is no node.
	Remote RemoteParties
	Events Events
	Log    *slog.Logger
}

// RemoteParties finds a party of a peer node for a local party to
// address (node.Federation does).
type RemoteParties interface {
	LookupRemote(ctx context.Context, peer, party string) (exchange.RemoteParty, error)
}

// Events reads a party's event stream (store.EventStore does).
type Events interface {
	After(ctx context.Context, partyID string, after int64, limit int) ([]store.Event, error)
}

// Handler serves the management API.
type Handler struct {
	ex            *exchange.Service
	parties       *party.Service
	handovers     *escrow.Service
	requests      *request.Service
	matches       *matching.Service
	reports       *report.Service
	verifications *verification.Service
	mirrors       *mirror.Service
	remote        RemoteParties
	eventLog      Events
	log           *slog.Logger
}

// New returns the API server over sv.
func New(sv Services) *Handler {
	return &Handler{ex: sv.Exchange, parties: sv.Parties, handovers: sv.Handovers, requests: sv.Requests,
		matches: sv.Matches, reports: sv.Reports, verifications: sv.Verifications, mirrors: sv.Mirrors, remote: sv.Remote, eventLog: sv.Events, log: sv.Log}
}

type handler func(w http.ResponseWriter, r *http.Request, p party.Principal) error

// Mux is what routes are registered on (*http.ServeMux).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds every route to mux.
func (s *Handler) Register(mux Mux) {
	routes := map[string]handler{
		"GET /api/v1/me":                          s.me,
		"GET /api/v1/parties":                     s.listParties,
		"GET /api/v1/parties/{id}/keys":           s.partyKeys,
		"POST /api/v1/keys":                       s.registerKeys,
		"POST /api/v1/keys/rotate":                s.rotateKeys,
		"GET /api/v1/agreements":                  s.listAgreements,
		"POST /api/v1/agreements":                 s.propose,
		"GET /api/v1/agreements/{id}":             s.getAgreement,
		"POST /api/v1/agreements/{id}/versions":   s.amend,
		"POST /api/v1/agreements/{id}/signatures": s.sign,
		"GET /api/v1/agreements/{id}/balance":     s.balance,
		// Contests of credits (issue 12).
		"POST /api/v1/agreements/{id}/contests":                    s.fileContest,
		"GET /api/v1/agreements/{id}/contests":                     s.listContests,
		"POST /api/v1/agreements/{id}/contests/{contest}/withdraw": s.withdrawContest,
		// Handovers, requests and events (issue 6).
		"POST /api/v1/handovers":                s.proposeHandover,
		"GET /api/v1/handovers":                 s.listHandovers,
		"GET /api/v1/handovers/{id}":            s.getHandover,
		"POST /api/v1/handovers/{id}/accept":    s.decideHandover(true),
		"POST /api/v1/handovers/{id}/decline":   s.decideHandover(false),
		"PUT /api/v1/handovers/{id}/deposit":    s.deposit,
		"DELETE /api/v1/handovers/{id}/deposit": s.withdraw,
		"GET /api/v1/handovers/{id}/deposit":    s.fetchDeposit,
		"POST /api/v1/handovers/{id}/dispute":   s.disputeHandover,
		// Gradual release between two nodes without an escrow node.
		"PUT /api/v1/handovers/{id}/chunks":          s.depositChunks,
		"GET /api/v1/handovers/{id}/chunks/{index}":  s.fetchChunk,
		"POST /api/v1/handovers/{id}/chunk-verdicts": s.judgeChunk,
		"POST /api/v1/requests":                      s.fileRequest,
		"GET /api/v1/requests":                       s.listRequests,
		"GET /api/v1/requests/{id}":                  s.getRequest,
		"POST /api/v1/requests/{id}/ack":             s.ackRequest,
		"POST /api/v1/requests/{id}/fulfil":          s.fulfilRequest,
		"POST /api/v1/requests/{id}/refuse":          s.refuseRequest,
		"GET /api/v1/agreements/{id}/requests":       s.requestStats,
		"GET /api/v1/events":                         s.events,
		// Private matching (issue 8).
		"POST /api/v1/matches":                 s.startMatch,
		"GET /api/v1/matches":                  s.listMatches,
		"GET /api/v1/matches/{id}":             s.getMatch,
		"PUT /api/v1/matches/{id}/round1":      s.putRound1,
		"GET /api/v1/matches/{id}/round1/peer": s.peerRound1,
		// The joint report and its signatures (issue 17).
		"GET /api/v1/agreements/{id}/report":             s.getReport,
		"POST /api/v1/agreements/{id}/report/signatures": s.signReport,
		"GET /api/v1/agreements/{id}/report/signatures":  s.listReportSignatures,
		// Keys opening ledger commitments (issue 12).
		"GET /api/v1/ledger/openings/{index}": s.ledgerOpening,
		// Parties' own verifications of the ledger (issue 17).
		"POST /api/v1/verifications": s.uploadVerification,
		"GET /api/v1/verifications":  s.listVerifications,
		// Mirrors from other TAXII servers (issue 14).
		"POST /api/v1/mirrors":        s.addMirror,
		"GET /api/v1/mirrors":         s.listMirrors,
		"GET /api/v1/mirrors/{id}":    s.getMirror,
		"DELETE /api/v1/mirrors/{id}": s.removeMirror,
		// Parties of peer nodes and the outbox to them (issue 14).
		"GET /api/v1/peers/{peer}/parties/{party}": s.remoteParty,
		"GET /api/v1/agreements/{id}/outbox":       s.agreementOutbox,
		"GET /api/v1/agreements/{id}/feeds":        s.agreementFeeds,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, s.wrap(h))
	}
	mux.Handle("/api/", s.wrap(func(w http.ResponseWriter, r *http.Request, p party.Principal) error {
		return apiErr(http.StatusNotFound, "not_found", "no such endpoint; see docs/api.md")
	}))
}

// Routes lists the registered patterns, for the OpenAPI check.
func Routes() []string {
	var out []string
	(&Handler{}).Register(&recordingMux{&out})
	return out
}

type recordingMux struct{ out *[]string }

func (m *recordingMux) Handle(pattern string, h http.Handler) { *m.out = append(*m.out, pattern) }

func (s *Handler) wrap(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		p, err := s.authenticate(r)
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Handler) authenticate(r *http.Request) (party.Principal, error) {
	token := party.TokenFromAuthorization(r.Header.Get("Authorization"))
	if token == "" {
		return party.Principal{}, party.ErrUnauthenticated
	}
	return s.parties.Authenticate(r.Context(), token)
}

// Error is the JSON body of every error response.
type Error struct {
	Code    string `json:"error"`
	Message string `json:"message"`
	status  int
}

func (e *Error) Error() string { return e.Message }

func apiErr(status int, code, msg string) *Error {
	return &Error{Code: code, Message: msg, status: status}
}

// writeError answers err. This is the only place that turns an error into
// a status: an *Error as it is, anything else by its fault kind, with the
// code the domain gave it (deadline_passed, over_cap…) and its client-safe
// message. An error of no kind is a 500 whose detail goes to the log only.
func (s *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if health.ClientGone(r, err) {
		w.WriteHeader(health.StatusClientGone)
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		e = refusal(err)
	}
	health.Refused(w, r, s.log, e.status, err)
	writeJSON(w, e.status, e)
}

// refusal is the response for a domain error: its kind decides the status,
// its message (or the kind's fixed words) the text.
func refusal(err error) *Error {
	kind := fault.KindOf(err)
	msg, ok := fault.MessageOf(err)
	say := func(status int, code, fallback string) *Error {
		if c := fault.Code(err); c != "" {
			code = c
		}
		if !ok {
			msg = fault.Message(fallback)
		}
		return apiErr(status, code, string(msg))
	}
	switch kind {
	case fault.Unauthenticated:
		return apiErr(http.StatusUnauthorized, "unauthenticated", "send a valid parley token: 'Authorization: Bearer <token>'")
	case fault.NotFound:
		return apiErr(http.StatusNotFound, "not_found", "the resource does not exist or you do not have access to it")
	case fault.Forbidden:
		return say(http.StatusForbidden, "forbidden", "not permitted")
	case fault.Conflict:
		return say(http.StatusConflict, "conflict", "conflict")
	case fault.Invalid:
		return say(http.StatusBadRequest, "invalid", "invalid request")
	case fault.TooLarge:
		return say(http.StatusRequestEntityTooLarge, "too_large", "too large")
	case fault.Unavailable:
		return apiErr(http.StatusServiceUnavailable, "unavailable", "the database is unavailable; retry shortly")
	}
	return apiErr(http.StatusInternalServerError, "internal", "the server failed to handle the request; the operator's log has the details")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"encoding failed"}`)
	}
	w.Header().Set("Content-Type", wire.MediaJSON)
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte("\n"))
}

// decode reads a size-limited JSON body into v, refusing unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", fmt.Sprintf("send Content-Type: application/json, not %q", ct))
	}
	// A declared length over the limit is refused before reading, so a
	// client announcing gigabytes gets its answer at once.
	if r.ContentLength > MaxBody {
		return apiErr(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", MaxBody))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apiErr(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", MaxBody))
		}
		return apiErr(http.StatusBadRequest, "bad_body", "the request body could not be read")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiErr(http.StatusBadRequest, "bad_json", "the body is not the expected JSON: "+err.Error())
	}
	if dec.More() {
		return apiErr(http.StatusBadRequest, "bad_json", "the body holds more than one JSON value")
	}
	return nil
}

func receipt(w http.ResponseWriter, idx int64) {
	w.Header().Set(wire.LedgerIndexHeader, strconv.FormatInt(idx, 10))
}
