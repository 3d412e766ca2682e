package exchangetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Pair is what the tests of parley's surfaces (API, dashboard) start
// from: A and B under one agreement in force by the wall clock, each with
// keys and a token, and C, a bystander in no agreement. Unlike Fixture it
// keeps real time, as the surfaces do.
type Pair struct {
	Store      store.Store
	Ex         *exchange.Service
	Parties    *party.Service
	A, B, C    party.Principal
	TokA, TokB string
	TokC       string
	KeyA, KeyB *agreement.PrivateKeys
	Agreement  string // the agreement's id (and API root)
	OwnA, OwnB string // each party's contribution collection under it
}

// NewPair makes the parties cert-north, police-south and bystander on st
// and an agreement between the first two: indicators up to TLP:AMBER,
// ratio 1:2, grace 10.
func NewPair(t testing.TB, st store.Store) *Pair {
	t.Helper()
	p := &Pair{Store: st, Ex: exchange.New(st), Parties: party.New(st)}
	a, b, c := p.NewMember(t, "cert-north"), p.NewMember(t, "police-south"), p.NewMember(t, "bystander")
	p.A, p.TokA, p.KeyA = a.P, a.Token, a.Keys
	p.B, p.TokB, p.KeyB = b.P, b.Token, b.Keys
	p.C, p.TokC = c.P, c.Token
	p.Agreement = p.Activate(t, a, b, Terms{Types: []string{"indicator"}, MaxTLP: "amber", Ratio: "1:2", Grace: 10})
	p.OwnA, p.OwnB = p.Own(t, p.A, p.Agreement), p.Own(t, p.B, p.Agreement)
	return p
}

// NewMember creates a party named name with registered keys.
func (p *Pair) NewMember(t testing.TB, name string) Member {
	t.Helper()
	return NewMember(t, p.Parties, p.Ex, name)
}

// Activate has a propose an agreement on terms to b and b countersign it,
// now; it returns the agreement's id.
func (p *Pair) Activate(t testing.TB, a, b Member, terms Terms) string {
	t.Helper()
	ctx := context.Background()
	raw, err := json.Marshal(DocumentTerms(a, b, terms, time.Now().UTC()))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := agreement.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(m Member, action agreement.Action) agreement.Signature {
		sig, err := agreement.Sign(m.Keys, agreement.StatementFor(doc, action, m.P.PartyID, m.Keys.KeyID(), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	if _, _, err := p.Ex.Propose(ctx, a.P, doc.Canonical(), sign(a, agreement.ActionPropose)); err != nil {
		t.Fatalf("propose: %v", err)
	}
	if _, _, err := p.Ex.Sign(ctx, b.P, doc.ID, sign(b, agreement.ActionCountersign)); err != nil {
		t.Fatalf("countersign: %v", err)
	}
	return doc.ID
}

// Own returns pr's contribution collection under agreementID.
func (p *Pair) Own(t testing.TB, pr party.Principal, agreementID string) string {
	t.Helper()
	cs, err := p.Ex.Collections(context.Background(), pr, agreementID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Write {
			return c.ID
		}
	}
	t.Fatalf("%s has no contribution collection under %s", pr.Name, agreementID)
	return ""
}

// Indicator is indicator number n, in scope of the agreements made here.
func Indicator(n int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"C2 %d","pattern":"[ipv4-addr:value = '10.0.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
		n, n, (n>>8)&255, n&255))
}

// Ingest has pr contribute indicators from, …, from+n-1 to its collection
// under agreementID.
func (p *Pair) Ingest(t testing.TB, pr party.Principal, agreementID string, from, n int) {
	t.Helper()
	var objs []json.RawMessage
	for i := from; i < from+n; i++ {
		objs = append(objs, Indicator(i))
	}
	res, err := p.Ex.Ingest(context.Background(), pr, agreementID, p.Own(t, pr, agreementID), objs)
	if err != nil || len(res.Status.Successes) != n {
		t.Fatalf("ingest: %+v, %v", res.Status, err)
	}
}
