package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
)

// Requests is what the dashboard needs of package request
// (*request.Service); every step goes through it, with the same checks as
// the API. List returns the caller's requests, made and received, newest
// first. Get returns request.ErrNotFound for a request the caller is not
// a side of; the steps return request.ErrForbidden when the caller is not
// the side that takes them, request.ErrConflict when the request's state
// does not allow them and request.ErrInvalid for refused input (an unknown
// ground, "other" without text, a handover that does not answer it).
type Requests interface {
	List(ctx context.Context, p party.Principal, agreementID string) ([]store.Request, error)
	Get(ctx context.Context, p party.Principal, id string) (store.Request, error)
	File(ctx context.Context, p party.Principal, in request.FileInput) (request.Result, error)
	Acknowledge(ctx context.Context, p party.Principal, id string) (request.Result, error)
	Fulfil(ctx context.Context, p party.Principal, id, handoverID string) (request.Result, error)
	Refuse(ctx context.Context, p party.Principal, id, ground, text string) (request.Result, error)
}

// groundLabels says what each refusal ground means; the codes are the
// API's (request.Grounds).
var groundLabels = map[string]string{
	request.GroundOutsideScope:            "outside the agreement's scope",
	request.GroundInsufficientInformation: "not enough information to act on",
	request.GroundNoDataHeld:              "no data held on the subject",
	request.GroundOngoingInvestigation:    "would prejudice an ongoing investigation",
	request.GroundPoliticalOffence:        "political offence",
	request.GroundNationalSecurity:        "national security",
	request.GroundOther:                   "other (say what in the text)",
}

func groundOptions() []option {
	out := []option{{Value: "", Label: "choose a ground", Selected: true}}
	for _, g := range request.Grounds {
		out = append(out, option{Value: g, Label: g + " — " + groundLabels[g]})
	}
	return out
}

type requestsData struct {
	Available  bool
	Rows       []requestRow
	Pager      pager
	State      []option
	Direction  []option
	Agreements []option
	File       fileForm
	CSRF       string
}

type fileForm struct {
	Agreements []option
	Urgencies  []option
}

func (d *Dashboard) requests(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	data := requestsData{Available: d.o.Requests != nil, CSRF: s.csrf,
		State: options(q.Get("state"), "", "any state", "open", "open (filed or acknowledged)", store.RequestFiled, "filed",
			store.RequestAcknowledged, "acknowledged", store.RequestFulfilled, "fulfilled", store.RequestRefused, "refused",
			store.RequestUndelivered, "undelivered (the other node refused the filing)", "overdue", "overdue"),
		Direction: options(q.Get("direction"), "", "made and received", "made", "made by you", "received", "received by you")}
	var err error
	if data.Agreements, err = d.agreementChoices(r.Context(), s.principal, q.Get("agreement")); err != nil {
		d.fail(w, r, err)
		return
	}
	data.File.Agreements = data.Agreements
	data.Agreements = append([]option{{Value: "", Label: "every agreement", Selected: q.Get("agreement") == ""}}, data.Agreements...)
	for _, u := range request.Urgencies {
		data.File.Urgencies = append(data.File.Urgencies, option{Value: u, Label: u, Selected: u == "normal"})
	}
	if data.Available {
		rs, err := d.o.Requests.List(r.Context(), s.principal, q.Get("agreement"))
		if err != nil {
			d.fail(w, r, err)
			return
		}
		n := d.namer(r.Context(), nil)
		var rows []requestRow
		for _, x := range rs {
			open := store.RequestOpen(x.State)
			switch st := q.Get("state"); st {
			case "":
			case "open":
				if !open {
					continue
				}
			case "overdue":
				if !open || !(x.AckOverdue || x.AnswerOverdue) {
					continue
				}
			default:
				if x.State != st {
					continue
				}
			}
			switch q.Get("direction") {
			case "made":
				if x.Requester != s.principal.PartyID {
					continue
				}
			case "received":
				if x.Responder != s.principal.PartyID {
					continue
				}
			}
			rows = append(rows, requestRowOf(x, s.principal, n))
		}
		from, to, pg := pageOf(len(rows), q, "/ui/requests")
		data.Rows, data.Pager = rows[from:to], pg
	}
	d.render(w, r, http.StatusOK, "requests", page{Title: "Requests", Party: &s.principal, CSRF: s.csrf, Data: data})
}

type requestData struct {
	requestRow
	Refs                    []string
	Reason                  string
	Acknowledged, Answered  time.Time
	Ground, GroundText      string
	HandoverID, HandoverURL string
	AckOverdue, AnsOverdue  bool
	Responder               bool // the caller answers it
	Open                    bool
	CanAck                  bool
	Grounds                 []option
	Answers                 []option // handovers that reference it
	ProposeURL              string
	CSRF                    string
	Base                    string
}

func (d *Dashboard) request(w http.ResponseWriter, r *http.Request, s session) {
	if d.o.Requests == nil {
		d.notFound(w, r)
		return
	}
	q, err := d.o.Requests.Get(r.Context(), s.principal, r.PathValue("id"))
	if err != nil {
		d.refuse(w, r, err, caseSteps)
		return
	}
	n := d.namer(r.Context(), nil)
	data := requestData{requestRow: requestRowOf(q, s.principal, n), Refs: q.Refs, Reason: q.Reason, Acknowledged: q.AcknowledgedAt,
		Answered: q.AnsweredAt, Ground: q.Ground, GroundText: q.GroundText, HandoverID: q.HandoverID, AckOverdue: q.AckOverdue,
		AnsOverdue: q.AnswerOverdue, Responder: q.Responder == s.principal.PartyID, CSRF: s.csrf}
	data.Base = data.URL
	data.Open = store.RequestOpen(q.State)
	data.CanAck = data.Responder && q.State == store.RequestFiled
	if q.HandoverID != "" {
		data.HandoverURL = "/ui/handovers/" + url.PathEscape(q.HandoverID)
	}
	if data.Responder && data.Open {
		data.Grounds = groundOptions()
		data.ProposeURL = "/ui/handovers?" + url.Values{"agreement": {q.AgreementID}, "request": {q.ID}}.Encode() + "#propose"
		if d.o.Handovers != nil {
			hs, err := d.o.Handovers.List(r.Context(), s.principal, q.AgreementID)
			if err != nil {
				d.fail(w, r, err)
				return
			}
			for _, h := range hs {
				if h.RequestID == q.ID && h.State != store.HandoverDeclined && h.State != store.HandoverExpired {
					data.Answers = append(data.Answers, option{Value: h.ID, Label: h.ID + " (" + h.State + ")"})
				}
			}
		}
	}
	d.render(w, r, http.StatusOK, "request", page{Title: "Request " + shorten(q.ID, 24), Party: &s.principal, CSRF: s.csrf, Data: data})
}

func (d *Dashboard) fileRequest(w http.ResponseWriter, r *http.Request, s session) {
	if d.o.Requests == nil {
		d.notFound(w, r)
		return
	}
	f := r.PostForm
	var refs []string
	for _, ref := range strings.FieldsFunc(f.Get("refs"), func(r rune) bool { return r == '\n' || r == ',' || r == '\r' }) {
		if ref = strings.TrimSpace(ref); ref != "" {
			refs = append(refs, ref)
		}
	}
	res, err := d.o.Requests.File(r.Context(), s.principal, request.FileInput{AgreementID: f.Get("agreement"), Subject: f.Get("subject"),
		Refs: refs, Reason: f.Get("reason"), Urgency: f.Get("urgency")})
	if err != nil {
		d.refuse(w, r, err, caseSteps)
		return
	}
	http.Redirect(w, r, withDone("/ui/requests/"+url.PathEscape(res.Request.ID), "filed"), http.StatusSeeOther)
}

// requestStep runs one responder's step and goes back to the request.
func (d *Dashboard) requestStep(step func(r *http.Request, s session, id string) (request.Result, string, error)) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, s session) {
		if d.o.Requests == nil {
			d.notFound(w, r)
			return
		}
		id := r.PathValue("id")
		_, done, err := step(r, s, id)
		if err != nil {
			d.refuse(w, r, err, caseSteps)
			return
		}
		http.Redirect(w, r, withDone("/ui/requests/"+url.PathEscape(id), done), http.StatusSeeOther)
	}
}

func (d *Dashboard) ackRequest(r *http.Request, s session, id string) (request.Result, string, error) {
	res, err := d.o.Requests.Acknowledge(r.Context(), s.principal, id)
	return res, "acknowledged", err
}

func (d *Dashboard) refuseRequest(r *http.Request, s session, id string) (request.Result, string, error) {
	res, err := d.o.Requests.Refuse(r.Context(), s.principal, id, r.PostForm.Get("ground"), r.PostForm.Get("text"))
	return res, "refused", err
}

func (d *Dashboard) fulfilRequest(r *http.Request, s session, id string) (request.Result, string, error) {
	res, err := d.o.Requests.Fulfil(r.Context(), s.principal, id, strings.TrimSpace(r.PostForm.Get("handover")))
	done := "fulfilled"
	if err == nil && res.Request.State != store.RequestFulfilled {
		done = "pending"
	}
	return res, done, err
}
