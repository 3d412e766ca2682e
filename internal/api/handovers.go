package api

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Deposit bodies are raw: a STIX bundle (application/json or
// application/stix+json) for a plain deposit, an age file
// (application/octet-stream) for a sealed one, whose SHA-256 the client
// states in this header.
const (
	ContentSHA256Header = "X-Parley-Content-SHA256"
	// ManifestHeader carries a deposit's signed manifest (JSON), base64.
	ManifestHeader = "X-Parley-Manifest"
	SealedHeader   = "X-Parley-Sealed"
	MediaSealed    = "application/octet-stream"
)

// The services are stateless views over the store, so a handler makes the
// one it needs; the server runs their sweepers separately.
func (s *Server) handovers() *escrow.Service { return escrow.New(s.st, s.ex) }

// HandoverView is the JSON form of a handover case.
type HandoverView struct {
	ID                  string               `json:"id"`
	Agreement           string               `json:"agreement"`
	Proposer            string               `json:"proposer"`
	Counterpart         string               `json:"counterpart"`
	ProposerDelivers    string               `json:"proposer_delivers"`
	CounterpartDelivers string               `json:"counterpart_delivers"`
	Request             string               `json:"request,omitempty"`
	Deadline            time.Time            `json:"deadline"`
	State               string               `json:"state"`
	CreatedAt           time.Time            `json:"created_at"`
	DecidedAt           *time.Time           `json:"decided_at,omitempty"`
	ClosedAt            *time.Time           `json:"closed_at,omitempty"`
	ReleaseLedgerIndex  int64                `json:"release_ledger_index,omitempty"`
	Deposits            []escrow.DepositView `json:"deposits,omitempty"`
	LedgerIndex         *int64               `json:"ledger_index,omitempty"`
	Released            bool                 `json:"released,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func handoverView(h store.Handover) HandoverView {
	return HandoverView{ID: h.ID, Agreement: h.AgreementID, Proposer: h.Proposer, Counterpart: h.Counterpart,
		ProposerDelivers: h.ProposerDelivers, CounterpartDelivers: h.CounterpartDelivers, Request: h.RequestID,
		Deadline: h.Deadline, State: h.State, CreatedAt: h.CreatedAt, DecidedAt: optTime(h.DecidedAt), ClosedAt: optTime(h.ClosedAt),
		ReleaseLedgerIndex: h.ReleaseLedgerIndex}
}

func stepView(res escrow.Result) HandoverView {
	v := handoverView(res.Handover)
	v.LedgerIndex = &res.LedgerIndex
	return v
}

func (s *Server) proposeHandover(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in struct {
		Agreement string    `json:"agreement"`
		Delivers  string    `json:"delivers"`
		Expects   string    `json:"expects"`
		Request   string    `json:"request,omitempty"`
		Deadline  time.Time `json:"deadline,omitzero"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	res, err := s.handovers().Propose(r.Context(), p, escrow.ProposeInput{AgreementID: in.Agreement, Delivers: in.Delivers,
		Expects: in.Expects, RequestID: in.Request, Deadline: in.Deadline})
	if err != nil {
		return err
	}
	receipt(w, res.LedgerIndex)
	writeJSON(w, http.StatusCreated, stepView(res))
	return nil
}

func (s *Server) listHandovers(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	hs, err := s.handovers().List(r.Context(), p, r.URL.Query().Get("agreement"))
	if err != nil {
		return err
	}
	out := []HandoverView{}
	for _, h := range hs {
		out = append(out, handoverView(h))
	}
	writeJSON(w, http.StatusOK, map[string]any{"handovers": out})
	return nil
}

func (s *Server) getHandover(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	v, err := s.handovers().Show(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	hv := handoverView(v.Handover)
	hv.Deposits = v.Deposits
	writeJSON(w, http.StatusOK, hv)
	return nil
}

func (s *Server) decideHandover(accept bool) handler {
	return func(w http.ResponseWriter, r *http.Request, p party.Principal) error {
		res, err := s.handovers().Decide(r.Context(), p, r.PathValue("id"), accept)
		if err != nil {
			return err
		}
		receipt(w, res.LedgerIndex)
		writeJSON(w, http.StatusOK, stepView(res))
		return nil
	}
}

func (s *Server) deposit(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	var sealed bool
	switch mt {
	case "application/json", "application/stix+json", "application/taxii+json":
	case MediaSealed:
		sealed = true
	default:
		return apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send a plain deposit as application/json (a STIX bundle) or a sealed one as application/octet-stream (an age file), not "+strconv.Quote(ct))
	}
	if r.ContentLength > escrow.MaxDeposit {
		return apiErr(http.StatusRequestEntityTooLarge, "too_large", "a deposit may be at most "+strconv.Itoa(escrow.MaxDeposit)+" bytes")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, escrow.MaxDeposit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apiErr(http.StatusRequestEntityTooLarge, "too_large", "a deposit may be at most "+strconv.Itoa(escrow.MaxDeposit)+" bytes")
		}
		return apiErr(http.StatusBadRequest, "bad_body", "the request body could not be read")
	}
	var manifest []byte
	if m := r.Header.Get(ManifestHeader); m != "" {
		if manifest, err = base64.StdEncoding.DecodeString(m); err != nil {
			return fmt.Errorf("%w: the %s header is not base64", escrow.ErrInvalid, ManifestHeader)
		}
	}
	res, err := s.handovers().Deposit(r.Context(), p, r.PathValue("id"), escrow.DepositInput{Sealed: sealed, Content: body,
		SHA256: r.Header.Get(ContentSHA256Header), AgreementID: r.URL.Query().Get("agreement"), Manifest: manifest})
	if err != nil {
		return err
	}
	receipt(w, res.LedgerIndex)
	v := handoverView(res.Handover)
	v.LedgerIndex, v.Released = &res.LedgerIndex, res.Released
	writeJSON(w, http.StatusCreated, map[string]any{"handover": v, "sha256": res.SHA256, "objects": res.Objects, "released": res.Released})
	return nil
}

func (s *Server) withdraw(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	res, err := s.handovers().Withdraw(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	receipt(w, res.LedgerIndex)
	writeJSON(w, http.StatusOK, stepView(res))
	return nil
}

// fetchDeposit sends a deposit's bytes: the other side's after release
// (default), or the caller's own with ?from=<own party id>.
func (s *Server) fetchDeposit(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	d, err := s.handovers().Fetch(r.Context(), p, r.PathValue("id"), r.URL.Query().Get("from"))
	if err != nil {
		return err
	}
	ct := "application/stix+json;version=2.1"
	if d.Sealed {
		ct = MediaSealed
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set(ContentSHA256Header, hex.EncodeToString(d.SHA256[:]))
	w.Header().Set(SealedHeader, strconv.FormatBool(d.Sealed))
	w.Header().Set("X-Parley-Depositor", d.PartyID)
	w.Header().Set("Content-Length", strconv.Itoa(len(d.Content)))
	w.WriteHeader(http.StatusOK)
	w.Write(d.Content)
	return nil
}

func (s *Server) disputeHandover(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in struct {
		Text      string          `json:"text"`
		Statement json.RawMessage `json:"statement,omitempty"` // a signed agreement.Dispute of Text
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	var statement []byte
	if len(in.Statement) > 0 && string(in.Statement) != "null" {
		statement = in.Statement
	}
	res, err := s.handovers().Dispute(r.Context(), p, r.PathValue("id"), in.Text, statement)
	if err != nil {
		return err
	}
	receipt(w, res.LedgerIndex)
	writeJSON(w, http.StatusOK, stepView(res))
	return nil
}
