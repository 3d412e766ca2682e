package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// fakeHandovers serves one case and answers Decide with err.
type fakeHandovers struct {
	Handovers // the steps this fake does not take
	h         store.Handover
	err       error
	decided   []bool
}

func (f *fakeHandovers) List(ctx context.Context, p party.Principal, agreementID string) ([]store.Handover, error) {
	if p.PartyID != f.h.Proposer && p.PartyID != f.h.Counterpart {
		return nil, nil
	}
	return []store.Handover{f.h}, nil
}

func (f *fakeHandovers) Decide(ctx context.Context, p party.Principal, id string, accept bool) (escrow.Result, error) {
	if id != f.h.ID {
		return escrow.Result{}, escrow.ErrNotFound
	}
	if f.err != nil {
		return escrow.Result{}, f.err
	}
	f.decided = append(f.decided, accept)
	return escrow.Result{Handover: f.h}, nil
}

type fakeRequests struct {
	Requests // the steps this fake does not take
	rs       []store.Request
}

func (f fakeRequests) List(ctx context.Context, p party.Principal, agreementID string) ([]store.Request, error) {
	return f.rs, nil
}

func TestHandoverDecisions(t *testing.T) {
	f := newFixture(t)
	h := store.Handover{ID: "handover--00000000-0000-4000-8000-000000000001", AgreementID: f.agreementID, Proposer: f.a.PartyID,
		Counterpart: f.b.PartyID, ProposerDelivers: "dossier X", CounterpartDelivers: "dossier Y", State: store.HandoverProposed,
		Deadline: time.Now().Add(time.Hour)}
	cases := []struct {
		name   string
		path   string
		err    error
		csrf   bool
		status int
		says   string
	}{
		{"accept", "/accept", nil, true, http.StatusSeeOther, ""},
		{"decline", "/decline", nil, true, http.StatusSeeOther, ""},
		{"no csrf", "/accept", nil, false, http.StatusForbidden, "CSRF check failed"},
		{"deadline passed", "/accept", escrow.ErrDeadlinePassed, true, http.StatusConflict, "deadline has passed"},
		{"closed", "/accept", fmt.Errorf("%w: handover was declined", escrow.ErrConflict), true, http.StatusConflict, "already decided"},
		{"not the counterpart", "/accept", escrow.ErrForbidden, true, http.StatusForbidden, "Only the side a step belongs to"},
		{"unknown case", "/../handover--nope/accept", nil, true, http.StatusNotFound, "no such page"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeHandovers{h: h, err: tc.err}
			f.dash.o.Handovers = fake
			b := f.browser(t)
			token := b.signIn(f.tokB)
			_, page := b.do("GET", "/ui/", nil)
			if !strings.Contains(page, "dossier Y") || !strings.Contains(page, `action="/ui/handovers/`+h.ID+`/accept"`) {
				t.Fatalf("overview lacks the case and its accept form")
			}
			form := url.Values{}
			if tc.csrf {
				form.Set("csrf", token)
			}
			path := "/ui/handovers/" + h.ID + tc.path
			if strings.HasPrefix(tc.path, "/..") {
				path = "/ui/handovers/handover--nope/accept"
			}
			resp, body := b.do("POST", path, form)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("%s, want %d saying %q", resp.Status, tc.status, tc.says)
			}
			wantDecided := 0
			if tc.status == http.StatusSeeOther {
				wantDecided = 1
				if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/ui/?done=") {
					t.Fatalf("redirect to %q", loc)
				}
				_, page := b.do("GET", resp.Header.Get("Location"), nil)
				if !strings.Contains(page, "Handover "+strings.TrimPrefix(tc.path, "/")) {
					t.Fatalf("no confirmation after %s", tc.name)
				}
			}
			if len(fake.decided) != wantDecided {
				t.Fatalf("Decide called %d times, want %d", len(fake.decided), wantDecided)
			}
		})
	}
	// The proposer sees the case without buttons.
	f.dash.o.Handovers = &fakeHandovers{h: h}
	b := f.browser(t)
	b.signIn(f.tokA)
	if _, page := b.do("GET", "/ui/", nil); !strings.Contains(page, "you proposed") || strings.Contains(page, "/accept") {
		t.Fatal("the proposer is offered to accept its own case")
	}
}

func TestRequestsListed(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	f.dash.o.Requests = fakeRequests{rs: []store.Request{
		{ID: "request--1", AgreementID: f.agreementID, Requester: f.a.PartyID, Responder: f.b.PartyID, Subject: "wallets of crew Z",
			State: store.RequestFiled, Urgency: "high", AckBy: now.Add(-time.Hour), FulfilBy: now.Add(time.Hour), AckOverdue: true},
		{ID: "request--2", AgreementID: f.agreementID, Requester: f.b.PartyID, Responder: f.a.PartyID, Subject: "answered already",
			State: store.RequestFulfilled},
	}}
	b := f.browser(t)
	b.signIn(f.tokB)
	_, page := b.do("GET", "/ui/agreements/"+f.agreementID, nil)
	for _, want := range []string{"wallets of crew Z", "cert-north asked you", "overdue"} {
		if !strings.Contains(page, want) {
			t.Errorf("agreement page lacks %q", want)
		}
	}
	if strings.Contains(page, "answered already") {
		t.Error("a fulfilled request is listed as open")
	}
	f.dash.o.Requests = nil
	if _, page := b.do("GET", "/ui/", nil); !strings.Contains(page, "Requests are not available") {
		t.Error("without a request service the page does not say so")
	}
}
