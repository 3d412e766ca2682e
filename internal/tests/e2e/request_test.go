package e2e

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/request"
)

func TestRequestWorkflow(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	d := Document(t, a, b, nil)
	Activate(t, a, b, d)
	d2 := Document(t, a, b, nil)
	Activate(t, a, b, d2)

	file := func(subject string) *client.Request {
		t.Helper()
		r, err := a.C.FileRequest(ctx, client.NewRequest{Agreement: d.ID, Subject: subject, Refs: []string{"threat-actor--00000000-0000-4000-8000-000000000001", "alias:darkcrew"},
			Reason: "investigation 2026/17", Urgency: "high"})
		if err != nil {
			t.Fatalf("file: %v", err)
		}
		return r
	}
	_, err := a.C.FileRequest(ctx, client.NewRequest{Agreement: d.ID, Reason: "r"})
	wantAPIError(t, "request without subject", err, http.StatusBadRequest, "invalid", "subject is empty")

	// Acknowledge, then fulfil through a handover that references it.
	r := file("the crew's infrastructure")
	if r.State != "filed" || !r.AckBy.Equal(r.FiledAt.Add(24*time.Hour)) || !r.FulfilBy.Equal(r.FiledAt.Add(168*time.Hour)) {
		t.Fatalf("filed: %+v", r)
	}
	_, err = a.C.AckRequest(ctx, r.ID)
	wantAPIError(t, "requester acknowledging", err, http.StatusForbidden, "forbidden", "addressed")
	if r, err = b.C.AckRequest(ctx, r.ID); err != nil || r.State != "acknowledged" {
		t.Fatalf("ack: %+v, %v", r, err)
	}
	_, err = b.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d2.ID, Delivers: "X", Expects: "nothing more", Request: r.ID})
	wantAPIError(t, "handover under another agreement answering the request", err, http.StatusBadRequest, "invalid", "not a request under")
	elsewhere, err := b.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d2.ID, Delivers: "X", Expects: "Y"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.C.FulfilRequest(ctx, r.ID, elsewhere.ID)
	wantAPIError(t, "fulfilling with a handover of another agreement", err, http.StatusBadRequest, "invalid", "not a handover under agreement "+d.ID)
	unrelated, err := b.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d.ID, Delivers: "X", Expects: "Y"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.C.FulfilRequest(ctx, r.ID, unrelated.ID)
	wantAPIError(t, "fulfilling with a handover not referencing it", err, http.StatusBadRequest, "invalid", "does not reference")
	h, err := b.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d.ID, Delivers: "the infrastructure", Expects: "acknowledgement of receipt", Request: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	// Naming the handover leaves the answer pending; its release fulfils.
	if r, err = b.C.FulfilRequest(ctx, r.ID, h.ID); err != nil || r.State != "acknowledged" || !r.AnswerPending || r.Handover != h.ID {
		t.Fatalf("fulfil: %+v, %v", r, err)
	}
	if _, err := a.C.AcceptHandover(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.C.Deposit(ctx, h.ID, Bundle(Indicator(1, "")), client.DepositOptions{}); err != nil {
		t.Fatal(err)
	}
	if res, err := a.C.Deposit(ctx, h.ID, Bundle(Indicator(2, "")), client.DepositOptions{}); err != nil || !res.Released {
		t.Fatalf("release: %+v, %v", res, err)
	}
	if r, err = a.C.Request(ctx, r.ID); err != nil || r.State != "fulfilled" || r.AnswerPending || r.Handover != h.ID {
		t.Fatalf("after the release: %+v, %v", r, err)
	}
	_, err = b.C.RefuseRequest(ctx, r.ID, request.GroundOther, "changed our mind")
	wantAPIError(t, "refusing a fulfilled request", err, http.StatusConflict, "conflict", "already fulfilled")

	// Every refusal ground.
	q := file("wallets")
	_, err = b.C.RefuseRequest(ctx, q.ID, "", "")
	wantAPIError(t, "refusing without a ground", err, http.StatusBadRequest, "invalid", "needs a ground")
	_, err = b.C.RefuseRequest(ctx, q.ID, "because", "")
	wantAPIError(t, "refusing with an unknown ground", err, http.StatusBadRequest, "invalid", "unknown ground")
	_, err = b.C.RefuseRequest(ctx, q.ID, request.GroundOther, " ")
	wantAPIError(t, "ground other without text", err, http.StatusBadRequest, "invalid", "needs a text")
	if got, _ := b.C.Request(ctx, q.ID); got.State != "filed" {
		t.Fatalf("refused refusals changed the request: %+v", got)
	}
	for i, g := range request.Grounds {
		if i > 0 {
			q = file("wallets")
		}
		text := ""
		if g == request.GroundOther {
			text = "the suspect is our informant"
		}
		got, err := b.C.RefuseRequest(ctx, q.ID, g, text)
		if err != nil || got.State != "refused" || got.Ground != g || got.GroundText != text {
			t.Fatalf("refusing with %s: %+v, %v", g, got, err)
		}
	}
	_, err = b.C.RefuseRequest(ctx, q.ID, request.GroundNoDataHeld, "")
	wantAPIError(t, "refusing twice", err, http.StatusConflict, "conflict", "already refused")

	stats, err := a.C.RequestStats(ctx, d.ID)
	if err != nil || len(stats) != 2 {
		t.Fatalf("stats: %+v, %v", stats, err)
	}
	n := len(request.Grounds) + 1
	want := []client.RequestStats{
		{Party: a.ID, Made: n},
		{Party: b.ID, Received: n, AnsweredInTime: n, Fulfilled: 1, Refused: n - 1},
	}
	if !slices.Equal(stats, want) {
		t.Fatalf("stats = %+v\nwant %+v", stats, want)
	}
	var filed int
	for _, e := range events(t, b) {
		if e.Kind == request.EventFiled {
			filed++
		}
	}
	if filed != n {
		t.Fatalf("bravo was told of %d requests, want %d", filed, n)
	}
}

func TestRequestOverdue(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	d := Document(t, a, b, func(m map[string]any) {
		m["request_deadlines"] = map[string]any{"acknowledge": "1s", "fulfil": "2s"}
	})
	Activate(t, a, b, d)
	r, err := a.C.FileRequest(ctx, client.NewRequest{Agreement: d.ID, Subject: "crew X", Reason: "case 1"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := a.C.Request(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.AckOverdue && got.AnswerOverdue {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request not flagged overdue: %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var stages []string
	for _, e := range events(t, a) {
		if e.Kind == request.EventOverdue && e.Subject == r.ID {
			stages = append(stages, string(e.Data))
		}
	}
	if len(stages) != 2 {
		t.Fatalf("overdue events to the requester: %v", stages)
	}
	// A late answer is recorded, and not counted as in time.
	if _, err := b.C.RefuseRequest(ctx, r.ID, request.GroundNoDataHeld, ""); err != nil {
		t.Fatal(err)
	}
	stats, err := b.C.RequestStats(ctx, d.ID)
	if err != nil || stats[1].Party != b.ID || stats[1].Overdue != 1 || stats[1].AnsweredInTime != 0 || stats[1].Refused != 1 {
		t.Fatalf("stats: %+v, %v", stats, err)
	}
}
