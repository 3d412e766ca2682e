package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Handovers is what the dashboard needs of package escrow (*escrow.Service).
// List returns the caller's cases, newest first (an empty list, not an
// error, when there are none). Decide accepts or declines a proposed case;
// it returns escrow.ErrNotFound for a case the caller is not a side of,
// escrow.ErrForbidden when the caller may not decide it, and
// escrow.ErrConflict (escrow.ErrDeadlinePassed wraps it) when the case is no
// longer open.
type Handovers interface {
	List(ctx context.Context, p party.Principal, agreementID string) ([]store.Handover, error)
	Decide(ctx context.Context, p party.Principal, id string, accept bool) (escrow.Result, error)
}

// Requests is what the dashboard needs of package request
// (*request.Service): the caller's requests, made and received, newest first.
type Requests interface {
	List(ctx context.Context, p party.Principal, agreementID string) ([]store.Request, error)
}

type handoverRow struct {
	ID, AgreementID, Counterpart string
	ProposedByYou                bool
	YouDeliver, TheyDeliver      string
	State                        string
	Deadline                     time.Time
	DeadlineIn                   string
	CanDecide                    bool
	AcceptURL, DeclineURL        string
}

type requestRow struct {
	ID, AgreementID, Counterpart, Subject string
	ByYou                                 bool
	State, Urgency                        string
	AckBy, FulfilBy                       time.Time
	Overdue                               bool
}

// work is the open handovers and requests a page lists.
type work struct {
	HandoversAvailable, RequestsAvailable bool
	Handovers                             []handoverRow
	Requests                              []requestRow
}

// openWork lists the caller's open handovers and requests (of one agreement
// when agreementID is set). names maps party ids to names.
func (d *Dashboard) openWork(ctx context.Context, p party.Principal, agreementID string, names map[string]string) (work, error) {
	var w work
	now := d.now()
	name := func(id string) string {
		if n := names[id]; n != "" {
			return n
		}
		return id
	}
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
			row := handoverRow{ID: h.ID, AgreementID: h.AgreementID, State: h.State, Deadline: h.Deadline,
				DeadlineIn: ago(h.Deadline.Sub(now)), ProposedByYou: h.Proposer == p.PartyID}
			esc := url.PathEscape(h.ID)
			if row.ProposedByYou {
				row.Counterpart, row.YouDeliver, row.TheyDeliver = name(h.Counterpart), h.ProposerDelivers, h.CounterpartDelivers
			} else {
				row.Counterpart, row.YouDeliver, row.TheyDeliver = name(h.Proposer), h.CounterpartDelivers, h.ProposerDelivers
				row.CanDecide = h.State == store.HandoverProposed && now.Before(h.Deadline)
				row.AcceptURL, row.DeclineURL = "/ui/handovers/"+esc+"/accept", "/ui/handovers/"+esc+"/decline"
			}
			w.Handovers = append(w.Handovers, row)
		}
	}
	if d.o.Requests != nil {
		w.RequestsAvailable = true
		rs, err := d.o.Requests.List(ctx, p, agreementID)
		if err != nil {
			return w, err
		}
		for _, r := range rs {
			if r.State == store.RequestFulfilled || r.State == store.RequestRefused {
				continue
			}
			row := requestRow{ID: r.ID, AgreementID: r.AgreementID, Subject: r.Subject, ByYou: r.Requester == p.PartyID,
				State: r.State, Urgency: r.Urgency, AckBy: r.AckBy, FulfilBy: r.FulfilBy, Overdue: r.AckOverdue || r.AnswerOverdue}
			row.Counterpart = name(r.Responder)
			if !row.ByYou {
				row.Counterpart = name(r.Requester)
			}
			w.Requests = append(w.Requests, row)
		}
	}
	return w, nil
}

// done messages after an action, keyed by the ?done= code the redirect
// carries (never free text from the URL).
var doneMessages = map[string]string{
	"accepted": "Handover accepted. Deposit your bundle before the deadline (parley handover deposit).",
	"declined": "Handover declined.",
}

func (d *Dashboard) decideHandover(accept bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, s session) {
		if d.o.Handovers == nil {
			d.notFound(w, r)
			return
		}
		_, err := d.o.Handovers.Decide(r.Context(), s.principal, r.PathValue("id"), accept)
		switch {
		case err == nil:
			done := "declined"
			if accept {
				done = "accepted"
			}
			http.Redirect(w, r, Prefix+"?done="+done, http.StatusSeeOther)
		case errors.Is(err, escrow.ErrNotFound):
			d.notFound(w, r)
		case errors.Is(err, escrow.ErrDeadlinePassed):
			d.showError(w, r, http.StatusConflict, "The handover's deadline has passed; it can no longer be accepted or declined.")
		case errors.Is(err, escrow.ErrConflict):
			d.showError(w, r, http.StatusConflict, "This handover was already decided, released or expired.")
		case errors.Is(err, escrow.ErrForbidden):
			d.showError(w, r, http.StatusForbidden, "Only the party a handover was proposed to may accept or decline it, and only while the agreement is in force.")
		default:
			d.fail(w, r, err)
		}
	}
}
