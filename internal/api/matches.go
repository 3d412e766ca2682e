package api

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/wire"
)

func round1View(side store.MatchSide) *wire.MatchRound1 {
	if !side.Done() {
		return nil
	}
	return &wire.MatchRound1{Count: side.Count, Bytes: side.Size, At: side.At, LedgerIndex: side.LedgerIndex}
}

// matchView derives the session's state as the API shows it from the
// session and its handover.
func matchView(v matching.View) wire.Match {
	m, h := v.Session, v.Handover
	state := wire.MatchStateRound1
	switch {
	case h.State == store.HandoverReleased:
		state = wire.MatchStateReleased
	case h.State != store.HandoverAccepted:
		state = wire.MatchStateExpired
	case m.Initiator.Done() && m.Responder.Done():
		state = wire.MatchStateRound2
	}
	return wire.Match{ID: m.ID, Agreement: m.AgreementID, SessionID: hex.EncodeToString(m.SessionID), Cap: m.Cap,
		Initiator: m.Initiator.PartyID, Responder: m.Responder.PartyID, Handover: m.HandoverID, State: state,
		Deadline: h.Deadline, CreatedAt: m.CreatedAt, InitiatorRound1: round1View(m.Initiator), ResponderRound1: round1View(m.Responder),
		LedgerIndex: m.LedgerIndex}
}

func (s *Handler) startMatch(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in struct {
		Agreement string `json:"agreement"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.Agreement == "" {
		return apiErr(http.StatusBadRequest, "invalid", "name the agreement: {\"agreement\": \"agreement--...\"}")
	}
	res, err := s.matches.Start(r.Context(), p, in.Agreement)
	if err != nil {
		return err
	}
	receipt(w, res.LedgerIndex)
	writeJSON(w, http.StatusCreated, matchView(matching.View{Session: res.Session, Handover: res.Handover}))
	return nil
}

func (s *Handler) listMatches(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	vs, err := s.matches.List(r.Context(), p, r.URL.Query().Get("agreement"))
	if err != nil {
		return err
	}
	out := []wire.Match{}
	for _, v := range vs {
		out = append(out, matchView(v))
	}
	writeJSON(w, http.StatusOK, map[string]any{"matches": out})
	return nil
}

func (s *Handler) getMatch(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	v, err := s.matches.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, matchView(v))
	return nil
}

// putRound1 streams the body into the store; the body's size is bounded by
// the header's element count, which the service checks against the cap
// before reading further.
func (s *Handler) putRound1(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != wire.MediaSealed {
			return apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type",
				"send the round-1 message as application/octet-stream, not "+strconv.Quote(ct))
		}
	}
	// The session's cap bounds the message; a longer declared body is
	// refused before reading, a longer sent one when it passes the bound
	// (one byte over, so that trailing data is still seen as such).
	v, err := s.matches.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	limit := matching.Round1Size(v.Session.Cap)
	if r.ContentLength > limit {
		frame, elem := matching.Round1Size(0), matching.Round1Size(1)-matching.Round1Size(0)
		elems := (r.ContentLength - frame + elem - 1) / elem
		return apiErr(http.StatusRequestEntityTooLarge, "over_cap", fmt.Sprintf("the body announces %d bytes: %d elements, cap %d (at most %d bytes)",
			r.ContentLength, elems, v.Session.Cap, limit))
	}
	res, err := s.matches.PutRound1(r.Context(), p, r.PathValue("id"), http.MaxBytesReader(w, r.Body, limit+1))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apiErr(http.StatusRequestEntityTooLarge, "too_large", "the round-1 message is longer than its element count allows")
		}
		return err
	}
	receipt(w, res.LedgerIndex)
	v, err = s.matches.Get(r.Context(), p, res.Session.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, wire.Round1Receipt{Match: matchView(v), Count: res.Count, Bytes: res.Size,
		SHA256: res.SHA256, LedgerIndex: res.LedgerIndex})
	return nil
}

func (s *Handler) peerRound1(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	m, err := s.matches.OpenPeerRound1(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", wire.MediaSealed)
	w.Header().Set("Content-Length", strconv.FormatInt(m.Size, 10))
	w.Header().Set(wire.MatchCountHeader, strconv.FormatInt(m.Count, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, m); err != nil {
		// The status is sent; a short body is what the client sees (its
		// length and digest checks fail).
		s.log.WarnContext(r.Context(), "matching: streaming round 1 failed", "match", r.PathValue("id"), "err", err)
	}
	return nil
}
