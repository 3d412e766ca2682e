package web

import (
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/wire"
)

// Handovers is what the dashboard needs of package escrow (*escrow.Service);
// every step goes through it, so the browser is held to the same checks as
// the API. List returns the caller's cases, newest first (an empty list,
// not an error, when there are none). Show and Fetch return
// escrow.ErrNotFound for a case the caller is not a side of. Decide
// accepts or declines a proposed case; it returns escrow.ErrForbidden when
// the caller may not decide it, and escrow.ErrConflict
// (escrow.ErrDeadlinePassed wraps it) when the case is no longer open.
// Propose and Deposit return escrow.ErrInvalid (or
// agreement.ErrOutOfScope) for input the case refuses. JudgeChunk records
// a party's signed verdict on the other side's next chunk of a gradual
// case; it returns escrow.ErrOutOfTurn when that chunk is not due for the
// caller's verdict, escrow.ErrInvalid for a verdict of another party or
// case, escrow.ErrChunkMismatch for another chunk's hash, and
// agreement.ErrBadSignature when the caller's registered key does not
// verify it.
type Handovers interface {
	List(ctx context.Context, p party.Principal, agreementID string) ([]store.Handover, error)
	Show(ctx context.Context, p party.Principal, id string) (escrow.View, error)
	Propose(ctx context.Context, p party.Principal, in escrow.ProposeInput) (escrow.Result, error)
	Decide(ctx context.Context, p party.Principal, id string, accept bool) (escrow.Result, error)
	Deposit(ctx context.Context, p party.Principal, id string, in escrow.DepositInput) (escrow.DepositResult, error)
	Fetch(ctx context.Context, p party.Principal, id, depositor string) (store.Deposit, error)
	JudgeChunk(ctx context.Context, p party.Principal, id string, raw []byte) (escrow.Result, error)
}

type handoverRow struct {
	ID, AgreementID, Counterpart string
	ProposedByYou                bool
	YouDeliver, TheyDeliver      string
	State                        string
	Deadline, Created            time.Time
	DeadlineIn                   string
	CanDecide                    bool
	AcceptURL, DeclineURL, URL   string
	RequestID                    string
}

type requestRow struct {
	ID, AgreementID, Counterpart, Subject string
	ByYou                                 bool
	State, Urgency                        string
	AckBy, FulfilBy, Filed                time.Time
	Overdue, Pending                      bool
	URL                                   string
}

// work is the open handovers and requests a page lists.
type work struct {
	HandoversAvailable, RequestsAvailable bool
	Handovers                             []handoverRow
	Requests                              []requestRow
}

// namer names parties from the directory, caching within one page.
type namer struct {
	d     *Dashboard
	ctx   context.Context
	names map[string]string
}

func (d *Dashboard) namer(ctx context.Context, names map[string]string) namer {
	if names == nil {
		names = map[string]string{}
	}
	return namer{d: d, ctx: ctx, names: names}
}

func (n namer) name(id string) string {
	if v, ok := n.names[id]; ok && v != "" {
		return v
	}
	v := n.d.partyName(n.ctx, id)
	n.names[id] = v
	return v
}

func (d *Dashboard) handoverRow(h store.Handover, p party.Principal, n namer, now time.Time) handoverRow {
	esc := url.PathEscape(h.ID)
	row := handoverRow{ID: h.ID, AgreementID: h.AgreementID, State: h.State, Deadline: h.Deadline, Created: h.CreatedAt,
		DeadlineIn: ago(h.Deadline.Sub(now)), ProposedByYou: h.Proposer == p.PartyID, URL: "/ui/handovers/" + esc, RequestID: h.RequestID}
	if row.ProposedByYou {
		row.Counterpart, row.YouDeliver, row.TheyDeliver = n.name(h.Counterpart), h.ProposerDelivers, h.CounterpartDelivers
	} else {
		row.Counterpart, row.YouDeliver, row.TheyDeliver = n.name(h.Proposer), h.CounterpartDelivers, h.ProposerDelivers
		row.CanDecide = h.State == store.HandoverProposed && now.Before(h.Deadline)
		row.AcceptURL, row.DeclineURL = "/ui/handovers/"+esc+"/accept", "/ui/handovers/"+esc+"/decline"
	}
	return row
}

func requestRowOf(q store.Request, p party.Principal, n namer) requestRow {
	row := requestRow{ID: q.ID, AgreementID: q.AgreementID, Subject: q.Subject, ByYou: q.Requester == p.PartyID,
		State: q.State, Urgency: q.Urgency, AckBy: q.AckBy, FulfilBy: q.FulfilBy, Filed: q.FiledAt,
		Overdue: q.AckOverdue || q.AnswerOverdue, Pending: request.Pending(q), URL: "/ui/requests/" + url.PathEscape(q.ID)}
	row.Counterpart = n.name(q.Responder)
	if !row.ByYou {
		row.Counterpart = n.name(q.Requester)
	}
	return row
}

// openWork lists the caller's open handovers and requests (of one agreement
// when agreementID is set). names maps party ids to names.
func (d *Dashboard) openWork(ctx context.Context, p party.Principal, agreementID string, names map[string]string) (work, error) {
	var w work
	now := d.now()
	n := d.namer(ctx, names)
	if d.o.Handovers != nil {
		w.HandoversAvailable = true
		hs, err := d.o.Handovers.List(ctx, p, agreementID)
		if err != nil {
			return w, err
		}
		for _, h := range hs {
			if h.State != store.HandoverProposed && h.State != store.HandoverAccepted {
				continue
			}
			w.Handovers = append(w.Handovers, d.handoverRow(h, p, n, now))
		}
	}
	if d.o.Requests != nil {
		w.RequestsAvailable = true
		rs, err := d.o.Requests.List(ctx, p, agreementID)
		if err != nil {
			return w, err
		}
		for _, r := range rs {
			if !store.RequestOpen(r.State) {
				continue
			}
			w.Requests = append(w.Requests, requestRowOf(r, p, n))
		}
	}
	return w, nil
}

// doneMessages are shown after an action, keyed by the ?done= code the
// redirect carries (never free text from the URL).
var doneMessages = map[string]string{
	"accepted":      "Handover accepted. Deposit your bundle before the deadline.",
	"declined":      "Handover declined.",
	"proposed":      "Handover proposed. The other side can now accept or decline it.",
	"deposited":     "Deposit stored. The handover is released as soon as the other side deposits too.",
	"released":      "Deposit stored, and both sides have now deposited: the handover is released.",
	"filed":         "Request filed. The other side has to acknowledge it within the agreement's deadline.",
	"acknowledged":  "Request acknowledged.",
	"refused":       "Request refused with the ground you chose.",
	"fulfilled":     "Request fulfilled by a released handover.",
	"pending":       "The handover is named as the answer; the request is fulfilled when it is released.",
	"signed":        "Signature accepted: it verified against your registered key.",
	"contested":     "Contest filed: the credit no longer counts while it stands.",
	"seen":          "All events marked as seen.",
	"verifications": "Verification result received and checked against your registered key.",
	"chunk_confirmed": "Confirmation recorded: it verified against your registered key. Your node sends your next chunk if it is due, " +
		"and the other side's next chunk comes after they confirm yours.",
	"chunk_rejected":  "Rejection recorded: the exchange is stopped on both nodes and nothing more is sent either way.",
	"chunks_released": "Confirmation recorded, and every chunk is handed over both ways: the handover is released.",
}

// agreementChoices lists the caller's agreements for a form's <select>,
// the one in force first.
func (d *Dashboard) agreementChoices(ctx context.Context, p party.Principal, current string) ([]option, error) {
	as, err := d.o.Exchange.Agreements(ctx, p)
	if err != nil {
		return nil, err
	}
	n := d.namer(ctx, nil)
	var out []option
	for _, a := range as {
		label := a.Record.ID
		if a.Broken == nil {
			label = "with " + n.name(a.Counterpart(p.PartyID)) + " — " + string(a.Status.Phase) + " — " + a.Record.ID
		}
		out = append(out, option{Value: a.Record.ID, Label: label, Selected: a.Record.ID == current})
	}
	return out, nil
}

type handoversData struct {
	Available  bool
	Rows       []handoverRow
	Pager      pager
	State      []option
	Role       []option
	Agreements []option
	Propose    proposeForm
	CSRF       string
}

type proposeForm struct {
	Agreements                 []option
	Request, Delivers, Expects string
}

// handovers lists every case of the caller, closed ones included, with
// filters and pages.
func (d *Dashboard) handovers(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	data := handoversData{Available: d.o.Handovers != nil, CSRF: s.csrf,
		State: options(q.Get("state"), "", "any state", store.HandoverProposed, "proposed", store.HandoverAccepted, "accepted",
			store.HandoverReleased, "released", store.HandoverDeclined, "declined", store.HandoverExpired, "expired",
			store.HandoverStopped, "stopped"),
		Role: options(q.Get("role"), "", "either side", "proposer", "proposed by you", "counterpart", "proposed to you", "waiting", "waiting for you")}
	var err error
	if data.Agreements, err = d.agreementChoices(r.Context(), s.principal, q.Get("agreement")); err != nil {
		d.fail(w, r, err)
		return
	}
	data.Agreements = append([]option{{Value: "", Label: "every agreement", Selected: q.Get("agreement") == ""}}, data.Agreements...)
	data.Propose = proposeForm{Request: q.Get("request")}
	if data.Propose.Agreements, err = d.agreementChoices(r.Context(), s.principal, q.Get("agreement")); err != nil {
		d.fail(w, r, err)
		return
	}
	if data.Available {
		hs, err := d.o.Handovers.List(r.Context(), s.principal, q.Get("agreement"))
		if err != nil {
			d.fail(w, r, err)
			return
		}
		now, n := d.now(), d.namer(r.Context(), nil)
		var rows []handoverRow
		for _, h := range hs {
			if st := q.Get("state"); st != "" && h.State != st {
				continue
			}
			switch q.Get("role") {
			case "proposer":
				if h.Proposer != s.principal.PartyID {
					continue
				}
			case "counterpart":
				if h.Counterpart != s.principal.PartyID {
					continue
				}
			case "waiting":
				if !d.waitingOn(r.Context(), h, s.principal, now) {
					continue
				}
			}
			rows = append(rows, d.handoverRow(h, s.principal, n, now))
		}
		from, to, pg := pageOf(len(rows), q, "/ui/handovers")
		data.Rows, data.Pager = rows[from:to], pg
	}
	d.render(w, r, http.StatusOK, "handovers", page{Title: "Handovers", Party: &s.principal, CSRF: s.csrf, Data: data})
}

// waitingOn reports whether an open case waits for the caller: to be
// decided, or for its deposit.
func (d *Dashboard) waitingOn(ctx context.Context, h store.Handover, p party.Principal, now time.Time) bool {
	if !now.Before(h.Deadline) {
		return false
	}
	switch h.State {
	case store.HandoverProposed:
		return h.Counterpart == p.PartyID
	case store.HandoverAccepted:
		v, err := d.o.Handovers.Show(ctx, p, h.ID)
		if err != nil {
			return false
		}
		if g := gradualOf(v, p, "", now); g != nil {
			return g.Due != 0 || !g.Yours.Committed
		}
		for _, dep := range v.Deposits {
			if dep.Party == p.PartyID {
				return false
			}
		}
		return true
	}
	return false
}

type depositRow struct {
	Party, SHA256, Dispute string
	Yours, Sealed          bool
	Objects                int
	At                     time.Time
	LedgerIndex            int64
	FetchURL               string
}

type handoverData struct {
	handoverRow
	Agreement, AgreementURL, RequestURL string
	Decided, Closed                     time.Time
	ReleaseLedgerIndex                  int64
	Deposits                            []depositRow
	CanDeposit                          bool
	DepositURL                          string
	// Gradual is the progress of a case released gradually; nil for one
	// released in one step.
	Gradual *gradualData
	CSRF    string
	Return  string
}

func (d *Dashboard) handover(w http.ResponseWriter, r *http.Request, s session) {
	if d.o.Handovers == nil {
		d.notFound(w, r)
		return
	}
	v, err := d.o.Handovers.Show(r.Context(), s.principal, r.PathValue("id"))
	if err != nil {
		d.refuse(w, r, err, caseSteps)
		return
	}
	now, n := d.now(), d.namer(r.Context(), nil)
	data := handoverData{handoverRow: d.handoverRow(v.Handover, s.principal, n, now), Decided: v.DecidedAt, Closed: v.ClosedAt,
		ReleaseLedgerIndex: v.ReleaseLedgerIndex, CSRF: s.csrf, AgreementURL: "/ui/agreements/" + url.PathEscape(v.AgreementID)}
	data.Return = data.URL
	if v.RequestID != "" {
		data.RequestURL = "/ui/requests/" + url.PathEscape(v.RequestID)
	}
	mine := false
	for _, dep := range v.Deposits {
		row := depositRow{Party: n.name(dep.Party), SHA256: dep.SHA256, Dispute: dep.Dispute, Yours: dep.Party == s.principal.PartyID,
			Sealed: dep.Sealed, Objects: dep.Objects, At: dep.DepositedAt, LedgerIndex: dep.LedgerIndex}
		if row.Yours || v.State == store.HandoverReleased {
			row.FetchURL = data.URL + "/deposit?from=" + url.QueryEscape(dep.Party)
		}
		mine = mine || row.Yours
		data.Deposits = append(data.Deposits, row)
	}
	data.Gradual = gradualOf(v, s.principal, data.Counterpart, now)
	// A gradual case takes only sealed chunks with a signed commitment,
	// which only the CLI makes; the page shows the command instead.
	data.CanDeposit = v.State == store.HandoverAccepted && !mine && now.Before(v.Deadline) && data.Gradual == nil
	data.DepositURL = data.URL + "/deposit"
	d.render(w, r, http.StatusOK, "handover", page{Title: "Handover " + shorten(v.ID, 24), Party: &s.principal, CSRF: s.csrf, Data: data})
}

func (d *Dashboard) decideHandover(accept bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, s session) {
		if d.o.Handovers == nil {
			d.notFound(w, r)
			return
		}
		if _, err := d.o.Handovers.Decide(r.Context(), s.principal, r.PathValue("id"), accept); err != nil {
			d.refuse(w, r, err, caseSteps)
			return
		}
		done := "declined"
		if accept {
			done = "accepted"
		}
		http.Redirect(w, r, withDone(safeReturn(r.PostForm.Get("return")), done), http.StatusSeeOther)
	}
}

func (d *Dashboard) proposeHandover(w http.ResponseWriter, r *http.Request, s session) {
	if d.o.Handovers == nil {
		d.notFound(w, r)
		return
	}
	f := r.PostForm
	res, err := d.o.Handovers.Propose(r.Context(), s.principal, escrow.ProposeInput{AgreementID: f.Get("agreement"),
		Delivers: f.Get("delivers"), Expects: f.Get("expects"), RequestID: strings.TrimSpace(f.Get("request"))})
	if err != nil {
		d.refuse(w, r, err, caseSteps)
		return
	}
	http.Redirect(w, r, withDone("/ui/handovers/"+url.PathEscape(res.Handover.ID), "proposed"), http.StatusSeeOther)
}

// maxDepositForm bounds a deposit form: the largest deposit plus room for
// the form's other fields and multipart framing.
const maxDepositForm = escrow.MaxDeposit + 64<<10

// deposit stores the caller's plain deposit: a STIX bundle uploaded as a
// file (multipart) or pasted (urlencoded). Sealed deposits need the
// recipient's key and the CLI; the server never encrypts for a party.
func (d *Dashboard) deposit(w http.ResponseWriter, r *http.Request, s session) {
	if d.o.Handovers == nil {
		d.notFound(w, r)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.ContentLength > maxDepositForm {
		d.showError(w, r, http.StatusRequestEntityTooLarge, "The deposit is larger than the "+strconv.Itoa(escrow.MaxDeposit>>20)+" MiB a handover accepts.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxDepositForm)
	var content []byte
	switch mt {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			d.showError(w, r, http.StatusBadRequest, "The form could not be read (too large or malformed).")
			return
		}
		if f, _, err := r.FormFile("bundle"); err == nil {
			content, err = io.ReadAll(io.LimitReader(f, escrow.MaxDeposit+1))
			f.Close()
			if err != nil {
				d.showError(w, r, http.StatusBadRequest, "The uploaded file could not be read.")
				return
			}
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			d.showError(w, r, http.StatusBadRequest, "The form could not be read (too large or malformed).")
			return
		}
	default:
		d.showError(w, r, http.StatusBadRequest, "Send the deposit form as multipart/form-data or application/x-www-form-urlencoded.")
		return
	}
	if !tokensEqual(r.PostFormValue("csrf"), s.csrf) {
		d.showError(w, r, http.StatusForbidden, csrfFailed)
		return
	}
	if len(content) == 0 {
		content = []byte(strings.TrimSpace(r.PostFormValue("bundle_text")))
	}
	res, err := d.o.Handovers.Deposit(r.Context(), s.principal, r.PathValue("id"), escrow.DepositInput{Content: content,
		AgreementID: r.PostFormValue("agreement")})
	if err != nil {
		d.refuse(w, r, err, caseSteps)
		return
	}
	done := "deposited"
	if res.Released {
		done = "released"
	}
	http.Redirect(w, r, withDone("/ui/handovers/"+url.PathEscape(res.Handover.ID), done), http.StatusSeeOther)
}

// fetchDeposit downloads a deposit: the caller's own at any time, the
// other side's once released (escrow.Fetch decides).
func (d *Dashboard) fetchDeposit(w http.ResponseWriter, r *http.Request, s session) {
	if d.o.Handovers == nil {
		d.notFound(w, r)
		return
	}
	id := r.PathValue("id")
	dep, err := d.o.Handovers.Fetch(r.Context(), s.principal, id, r.URL.Query().Get("from"))
	if err != nil {
		d.refuse(w, r, err, caseSteps)
		return
	}
	ct, ext := wire.MediaSTIX, ".json"
	if dep.Sealed {
		ct, ext = wire.MediaSealed, ".age"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	// A download, never rendered: the bytes are the other party's.
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": safeFilename(id) + ext}))
	h.Set("Content-Length", strconv.Itoa(len(dep.Content)))
	h.Set(wire.ContentSHA256Header, hexOf(dep.SHA256))
	w.WriteHeader(http.StatusOK)
	w.Write(dep.Content)
}

func safeFilename(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

const csrfFailed = "This form was stale or did not come from this dashboard (CSRF check failed). Reload the page and try again."

// errNotFoundPage is a case id that names nothing the party may see.
var errNotFoundPage = fault.Generic(fault.NotFound, "web: not found")
