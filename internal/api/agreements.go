package api

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

func (s *Handler) me(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	keys, err := s.ex.PartyKeys(r.Context(), p.PartyID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"party_id": p.PartyID, "name": p.Name, "token_id": p.TokenID, "keys": keyViews(keys)})
	return nil
}

// listParties is the directory parties need to address a proposal.
func (s *Handler) listParties(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	ps, err := s.parties.List(r.Context())
	if err != nil {
		return err
	}
	type view struct {
		ID   string `json:"party_id"`
		Name string `json:"name"`
	}
	out := []view{}
	for _, x := range ps {
		out = append(out, view{x.ID, x.Name})
	}
	writeJSON(w, http.StatusOK, map[string]any{"parties": out})
	return nil
}

type keyView struct {
	Keys       json.RawMessage `json:"keys"`
	ValidFrom  time.Time       `json:"valid_from"`
	ValidUntil *time.Time      `json:"valid_until,omitempty"`
	Rotation   json.RawMessage `json:"rotation,omitempty"`
}

func keyViews(ks []store.PartyKey) []keyView {
	out := []keyView{}
	for _, k := range ks {
		v := keyView{Keys: k.Public, ValidFrom: k.ValidFrom}
		if !k.ValidUntil.IsZero() {
			u := k.ValidUntil
			v.ValidUntil = &u
		}
		if len(k.Rotation) > 0 {
			v.Rotation = k.Rotation
		}
		out = append(out, v)
	}
	return out
}

func (s *Handler) partyKeys(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	keys, err := s.ex.PartyKeys(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"party_id": r.PathValue("id"), "keys": keyViews(keys)})
	return nil
}

func (s *Handler) registerKeys(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var pub agreement.PublicKeys
	if err := decode(w, r, &pub); err != nil {
		return err
	}
	if err := s.ex.RegisterKeys(r.Context(), p, pub); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"key_id": pub.KeyID})
	return nil
}

func (s *Handler) rotateKeys(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var rot agreement.KeyRotation
	if err := decode(w, r, &rot); err != nil {
		return err
	}
	if err := s.ex.RotateKeys(r.Context(), p, rot); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"key_id": rot.NewKeys.KeyID, "retired": rot.OldKeyID})
	return nil
}

// AgreementView is the JSON form of an agreement.
type AgreementView struct {
	ID             string   `json:"id"`
	Parties        []string `json:"parties"`
	Phase          string   `json:"phase"` // or "broken", with Problem saying why
	Problem        string   `json:"problem,omitempty"`
	InForce        bool     `json:"in_force"`
	Version        int      `json:"version"`
	DocumentHash   string   `json:"document_hash,omitempty"` // of Document: SHA-256 of its canonical form, hex
	PendingVersion int      `json:"pending_version,omitempty"`
	// The version a countersignature must name now (the proposal, or a
	// pending amendment) and its document hash; absent when none awaits.
	AwaitingVersion      int                   `json:"awaiting_version,omitempty"`
	AwaitingDocumentHash string                `json:"awaiting_document_hash,omitempty"`
	SuspendedBy          []string              `json:"suspended_by,omitempty"`
	TerminationAt        *time.Time            `json:"termination_at,omitempty"`
	Reason               string                `json:"reason,omitempty"`
	APIRoot              string                `json:"taxii_api_root"`
	Document             *agreement.Document   `json:"document"`
	Versions             []*agreement.Document `json:"versions"`
	Signatures           []agreement.Signature `json:"signatures"`
	Collections          []CollectionRef       `json:"collections,omitempty"`
	LedgerIndex          *int64                `json:"ledger_index,omitempty"`
}

// CollectionRef names one of an agreement's TAXII collections.
type CollectionRef struct {
	ID          string `json:"id"`
	Contributor string `json:"contributor"`
	Title       string `json:"title"`
	CanWrite    bool   `json:"can_write"`
}

// PhaseBroken is the phase a list shows for an agreement whose recorded
// history no longer verifies (exchange.ErrBrokenAgreement).
const PhaseBroken = "broken"

// problem is what a list says of a broken agreement: the client-safe
// message of why its history does not verify.
func problem(err error) string {
	if msg, ok := fault.MessageOf(err); ok {
		return string(msg)
	}
	return "the agreement's recorded history does not verify"
}

func view(a exchange.Agreement, now time.Time) AgreementView {
	if a.Broken != nil {
		return AgreementView{ID: a.Record.ID, Parties: []string{a.Record.PartyA, a.Record.PartyB}, Phase: PhaseBroken,
			Problem: problem(a.Broken), APIRoot: "/taxii2/" + a.Record.ID + "/"}
	}
	v := AgreementView{ID: a.Record.ID, Parties: []string{a.Record.PartyA, a.Record.PartyB}, Phase: string(a.Status.Phase),
		InForce: a.Status.InForce(now), Version: a.Status.Version, SuspendedBy: a.Status.SuspendedBy, Reason: a.Status.Reason,
		APIRoot: "/taxii2/" + a.Record.ID + "/", Document: a.Status.Document, Versions: a.Versions, Signatures: a.Signatures}
	if a.Status.Pending != nil {
		v.PendingVersion = a.Status.Pending.Version
	}
	if a.Status.Document != nil {
		h := a.Status.Document.Hash()
		v.DocumentHash = hex.EncodeToString(h[:])
	}
	if d := a.Awaiting(); d != nil {
		h := d.Hash()
		v.AwaitingVersion, v.AwaitingDocumentHash = d.Version, hex.EncodeToString(h[:])
	}
	if !a.Status.TerminationAt.IsZero() {
		t := a.Status.TerminationAt
		v.TerminationAt = &t
	}
	return v
}

func (s *Handler) listAgreements(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	as, err := s.ex.Agreements(r.Context(), p)
	if err != nil {
		return err
	}
	out := []AgreementView{}
	for _, a := range as {
		out = append(out, view(a, time.Now()))
	}
	writeJSON(w, http.StatusOK, map[string]any{"agreements": out})
	return nil
}

func (s *Handler) getAgreement(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	a, err := s.ex.Agreement(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.fullView(r, p, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// SignedDocument is the body of a proposal or amendment.
type SignedDocument struct {
	Document  json.RawMessage     `json:"document"`
	Signature agreement.Signature `json:"signature"`
}

// SignatureBody is the body of a countersignature, suspension, resumption
// or termination.
type SignatureBody struct {
	Signature agreement.Signature `json:"signature"`
}

// fullView is view plus the agreement's collections as the caller sees them.
func (s *Handler) fullView(r *http.Request, p party.Principal, a exchange.Agreement) (AgreementView, error) {
	v := view(a, time.Now())
	cs, err := s.ex.Collections(r.Context(), p, a.Record.ID)
	if err != nil {
		return AgreementView{}, err
	}
	for _, c := range cs {
		v.Collections = append(v.Collections, CollectionRef{ID: c.ID, Contributor: c.Contributor, Title: c.Title, CanWrite: c.Write})
	}
	return v, nil
}

func (s *Handler) respond(w http.ResponseWriter, r *http.Request, p party.Principal, status int, a exchange.Agreement, idx int64) error {
	v, err := s.fullView(r, p, a)
	if err != nil {
		return err
	}
	receipt(w, idx)
	v.LedgerIndex = &idx
	writeJSON(w, status, v)
	return nil
}

func (s *Handler) propose(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var body SignedDocument
	if err := decode(w, r, &body); err != nil {
		return err
	}
	a, idx, err := s.ex.Propose(r.Context(), p, body.Document, body.Signature)
	if err != nil {
		return err
	}
	return s.respond(w, r, p, http.StatusCreated, a, idx)
}

func (s *Handler) amend(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var body SignedDocument
	if err := decode(w, r, &body); err != nil {
		return err
	}
	a, idx, err := s.ex.Amend(r.Context(), p, r.PathValue("id"), body.Document, body.Signature)
	if err != nil {
		return err
	}
	return s.respond(w, r, p, http.StatusCreated, a, idx)
}

func (s *Handler) sign(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var body SignatureBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	a, idx, err := s.ex.Sign(r.Context(), p, r.PathValue("id"), body.Signature)
	if err != nil {
		return err
	}
	return s.respond(w, r, p, http.StatusOK, a, idx)
}

func (s *Handler) balance(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	b, err := s.ex.Balance(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// remoteParty asks this node's peer for one of its parties (by id or
// name), records what the peer says, and returns it: what a proposal to
// PARTY@PEER needs (its id, name, node and current key). The caller's
// token stays here; the peer is asked by this node, signing as itself.
func (s *Handler) remoteParty(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	if s.remote == nil {
		return apiErr(http.StatusNotFound, "not_found", "this server is not a node with peers")
	}
	rp, err := s.remote.LookupRemote(r.Context(), r.PathValue("peer"), r.PathValue("party"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rp)
	return nil
}

// OutboxView is one message this node owes, or delivered to, a peer.
type OutboxView struct {
	Seq         int64      `json:"seq"`
	Kind        string     `json:"kind"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"created_at"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	DoneAt      *time.Time `json:"done_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// agreementOutbox lists what this node owes the peer of an agreement
// between two nodes, and what it delivered.
func (s *Handler) agreementOutbox(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	es, err := s.ex.OutboxOf(r.Context(), p.PartyID, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []OutboxView{}
	for _, e := range es {
		v := OutboxView{Seq: e.Seq, Kind: e.Kind, State: e.State, Attempts: e.Attempts, CreatedAt: e.CreatedAt, LastError: e.LastError}
		if e.State == store.OutboxPending {
			t := e.NextAttempt
			v.NextAttempt = &t
		} else {
			t := e.DoneAt
			v.DoneAt = &t
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"outbox": out})
	return nil
}

// agreementFeeds shows where this node's pulls of the other party's
// contributions under an agreement between two nodes stand, to a party
// to it (none under an agreement on one server).
func (s *Handler) agreementFeeds(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	fs, err := s.ex.FeedPulls(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"feeds": fs})
	return nil
}
