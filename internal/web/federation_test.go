package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/store"
)

// The dashboard shows an agreement with a party of a peer node (issue 14
// item 2) like any other, with no collections and no broken page.
func TestAgreementAcrossNodesPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.ex.SetNode("parley-node-a+00000001+AQ")
	peer := store.Peer{Name: "bravo", URL: "http://127.0.0.1:1", Key: "parley-node-b+00000002+AQ", KeyID: "kid-b", AddedAt: time.Now()}
	bobKeys, err := agreement.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	bob, err := f.ex.LearnRemoteParty(ctx, peer, exchange.PartyCard{PartyID: "party--00000000-0000-4000-8000-0000000000b0", Name: "bob",
		Keys: []exchange.CardKey{{Keys: bobKeys.Public(), ValidFrom: time.Now().Add(-time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	doc := &agreement.Document{SchemaVersion: agreement.SchemaVersion, ID: agreement.NewID(), Version: 1,
		Parties: [2]agreement.Party{
			{PartyID: f.a.PartyID, Name: f.a.Name, KeyID: f.keyA.KeyID(), Node: "parley-node-a+00000001+AQ"},
			{PartyID: bob.PartyID, Name: "bob", KeyID: bob.KeyID, Node: peer.Key},
		},
		Scope:       agreement.Scope{Types: []string{"indicator"}, MaxTLP: agreement.TLPAmber},
		Reciprocity: agreement.Terms{Give: 1, Get: 1, Grace: 1}, EscrowDeadline: time.Hour,
		RequestDeadlines: agreement.RequestDeadlines{Acknowledge: time.Hour, Fulfil: time.Hour},
		NotBefore:        now, NotAfter: now.Add(time.Hour), MatchCap: 10}
	sig, err := agreement.Sign(f.keyA, agreement.StatementFor(doc, agreement.ActionPropose, f.a.PartyID, f.keyA.KeyID(), time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ex.Propose(ctx, f.a, doc.Canonical(), sig); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signIn(f.tokA)
	resp, page := b.do("GET", "/ui/", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "/ui/agreements/"+doc.ID) || !strings.Contains(page, "bob@bravo") {
		t.Fatalf("overview: %s, lists the cross-node agreement: %v, names bob@bravo: %v", resp.Status,
			strings.Contains(page, doc.ID), strings.Contains(page, "bob@bravo"))
	}
	resp, page = b.do("GET", "/ui/agreements/"+doc.ID, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "propose") {
		t.Fatalf("agreement page: %s\n%s", resp.Status, page)
	}
}
