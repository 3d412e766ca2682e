package api

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/wire"
)

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func handoverView(h store.Handover) wire.Handover {
	return wire.Handover{ID: h.ID, Agreement: h.AgreementID, Proposer: h.Proposer, Counterpart: h.Counterpart,
		ProposerDelivers: h.ProposerDelivers, CounterpartDelivers: h.CounterpartDelivers, Request: h.RequestID,
		Deadline: h.Deadline, State: h.State, CreatedAt: h.CreatedAt, DecidedAt: optTime(h.DecidedAt), ClosedAt: optTime(h.ClosedAt),
		ReleaseLedgerIndex: h.ReleaseLedgerIndex}
}

// depositViews puts a case's deposits in their wire form.
func depositViews(ds []escrow.DepositView) []wire.HandoverDeposit {
	if ds == nil {
		return nil
	}
	out := make([]wire.HandoverDeposit, len(ds))
	for i, d := range ds {
		out[i] = wire.HandoverDeposit{Party: d.Party, Sealed: d.Sealed, SHA256: d.SHA256, Objects: d.Objects,
			DepositedAt: d.DepositedAt, LedgerIndex: d.LedgerIndex, Dispute: d.Dispute, Manifest: d.Manifest,
			DisputeStatement: d.DisputeStatement}
	}
	return out
}

func stepView(res escrow.Result) wire.Handover {
	v := handoverView(res.Handover)
	v.LedgerIndex = &res.LedgerIndex
	return v
}

func (s *Handler) proposeHandover(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in wire.HandoverProposal
	if err := decode(w, r, &in); err != nil {
		return err
	}
	res, err := s.handovers.Propose(r.Context(), p, escrow.ProposeInput{AgreementID: in.Agreement, Delivers: in.Delivers,
		Expects: in.Expects, RequestID: in.Request, Deadline: in.Deadline, Chunks: in.Chunks})
	if err != nil {
		return err
	}
	receipt(w, res.LedgerIndex)
	v := stepView(res)
	v.Chunks = in.Chunks
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Handler) listHandovers(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	hs, err := s.handovers.List(r.Context(), p, r.URL.Query().Get("agreement"))
	if err != nil {
		return err
	}
	out := []wire.Handover{}
	for _, h := range hs {
		out = append(out, handoverView(h))
	}
	writeJSON(w, http.StatusOK, map[string]any{"handovers": out})
	return nil
}

func (s *Handler) getHandover(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	v, err := s.handovers.Show(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	hv := handoverView(v.Handover)
	hv.Deposits = depositViews(v.Deposits)
	hv.Gradual = gradualView(v.Gradual)
	if hv.Gradual != nil {
		hv.Chunks = hv.Gradual.Chunks
	}
	writeJSON(w, http.StatusOK, hv)
	return nil
}

// gradualView puts a gradual case's progress in its wire form (nil for a
// case released in one step).
func gradualView(g *escrow.GradualView) *wire.GradualProgress {
	if g == nil {
		return nil
	}
	out := &wire.GradualProgress{Chunks: g.Chunks, Committed: g.Committed, StoppedBy: g.StoppedBy, StopReason: g.StopReason,
		List: make([]wire.GradualChunk, len(g.List))}
	for i, c := range g.List {
		out.List[i] = wire.GradualChunk{Depositor: c.Depositor, Index: c.Index, SHA256: c.SHA256, Size: c.Size, Held: c.Held,
			MovedAt: optTime(c.MovedAt), ConfirmedAt: optTime(c.Confirmed)}
	}
	return out
}

// maxChunkDeposit bounds the JSON body of a chunked deposit: the chunks
// (at most escrow.MaxDeposit in all) base64-encoded, and the commitment.
const maxChunkDeposit = escrow.MaxDeposit/3*4 + 1<<20

// depositChunks takes one side's deposit in a gradual case: its signed
// commitment and the sealed chunks it names.
func (s *Handler) depositChunks(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, wire.MediaJSON) {
		return apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the chunks as application/json ({commitment, chunks})")
	}
	if r.ContentLength > maxChunkDeposit {
		return apiErr(http.StatusRequestEntityTooLarge, "too_large", "a chunked deposit may be at most "+strconv.Itoa(escrow.MaxDeposit)+" bytes of chunks")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxChunkDeposit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apiErr(http.StatusRequestEntityTooLarge, "too_large", "a chunked deposit may be at most "+strconv.Itoa(escrow.MaxDeposit)+" bytes of chunks")
		}
		return apiErr(http.StatusBadRequest, "bad_body", "the request body could not be read")
	}
	var in wire.ChunkDeposit
	if err := json.Unmarshal(body, &in); err != nil {
		return apiErr(http.StatusBadRequest, "bad_json", "the body must be a JSON object {commitment, chunks}")
	}
	res, err := s.handovers.DepositChunks(r.Context(), p, r.PathValue("id"), in.Commitment, in.Chunks)
	if err != nil {
		return err
	}
	receipt(w, res.LedgerIndex)
	writeJSON(w, http.StatusCreated, stepView(res))
	return nil
}

// fetchChunk sends one chunk's sealed bytes: the other side's once it
// arrived (default), or the caller's own with ?from=<own party id>.
func (s *Handler) fetchChunk(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	index, err := strconv.Atoi(r.PathValue("index"))
	if err != nil || index < 1 {
		return apiErr(http.StatusBadRequest, "bad_index", "the chunk index is a number from 1")
	}
	c, err := s.handovers.ChunkOf(r.Context(), p, r.PathValue("id"), r.URL.Query().Get("from"), index)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", wire.MediaSealed)
	w.Header().Set(wire.ContentSHA256Header, hex.EncodeToString(c.SHA256[:]))
	w.Header().Set(wire.SealedHeader, "true")
	w.Header().Set(wire.DepositorHeader, c.Depositor)
	w.Header().Set("Content-Length", strconv.Itoa(len(c.Content)))
	w.WriteHeader(http.StatusOK)
	w.Write(c.Content)
	return nil
}

// judgeChunk records the caller's signed confirmation or rejection of the
// other side's next chunk.
func (s *Handler) judgeChunk(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var in wire.ChunkVerdict
	if err := decode(w, r, &in); err != nil {
		return err
	}
	res, err := s.handovers.JudgeChunk(r.Context(), p, r.PathValue("id"), in.Verdict)
	if err != nil {
		return err
	}
	receipt(w, res.LedgerIndex)
	writeJSON(w, http.StatusOK, stepView(res))
	return nil
}

func (s *Handler) decideHandover(accept bool) handler {
	return func(w http.ResponseWriter, r *http.Request, p party.Principal) error {
		res, err := s.handovers.Decide(r.Context(), p, r.PathValue("id"), accept)
		if err != nil {
			return err
		}
		receipt(w, res.LedgerIndex)
		writeJSON(w, http.StatusOK, stepView(res))
		return nil
	}
}

func (s *Handler) deposit(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	var sealed bool
	switch mt {
	case wire.MediaJSON, wire.MediaTypeSTIX, wire.MediaTypeTAXII:
	case wire.MediaSealed:
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
	if m := r.Header.Get(wire.ManifestHeader); m != "" {
		if manifest, err = base64.StdEncoding.DecodeString(m); err != nil {
			return fault.Errorf("%w: the %s header is not base64", escrow.ErrInvalid, wire.ManifestHeader)
		}
	}
	res, err := s.handovers.Deposit(r.Context(), p, r.PathValue("id"), escrow.DepositInput{Sealed: sealed, Content: body,
		SHA256: r.Header.Get(wire.ContentSHA256Header), AgreementID: r.URL.Query().Get("agreement"), Manifest: manifest})
	if err != nil {
		return err
	}
	receipt(w, res.LedgerIndex)
	v := handoverView(res.Handover)
	v.LedgerIndex, v.Released = &res.LedgerIndex, res.Released
	writeJSON(w, http.StatusCreated, wire.DepositReceipt{Handover: v, SHA256: res.SHA256, Objects: res.Objects, Released: res.Released})
	return nil
}

func (s *Handler) withdraw(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	res, err := s.handovers.Withdraw(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	receipt(w, res.LedgerIndex)
	writeJSON(w, http.StatusOK, stepView(res))
	return nil
}

// fetchDeposit sends a deposit's bytes: the other side's after release
// (default), or the caller's own with ?from=<own party id>.
func (s *Handler) fetchDeposit(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	d, err := s.handovers.Fetch(r.Context(), p, r.PathValue("id"), r.URL.Query().Get("from"))
	if err != nil {
		return err
	}
	ct := wire.MediaSTIX
	if d.Sealed {
		ct = wire.MediaSealed
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set(wire.ContentSHA256Header, hex.EncodeToString(d.SHA256[:]))
	w.Header().Set(wire.SealedHeader, strconv.FormatBool(d.Sealed))
	w.Header().Set(wire.DepositorHeader, d.PartyID)
	w.Header().Set("Content-Length", strconv.Itoa(len(d.Content)))
	w.WriteHeader(http.StatusOK)
	w.Write(d.Content)
	return nil
}

func (s *Handler) disputeHandover(w http.ResponseWriter, r *http.Request, p party.Principal) error {
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
	res, err := s.handovers.Dispute(r.Context(), p, r.PathValue("id"), in.Text, statement)
	if err != nil {
		return err
	}
	receipt(w, res.LedgerIndex)
	writeJSON(w, http.StatusOK, stepView(res))
	return nil
}
