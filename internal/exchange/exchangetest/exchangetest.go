// Package exchangetest gives the tests of the agreement workflows (escrow,
// request, matching) one fixture: a real store with two parties in
// an agreement in force, an outsider in none, and a clock the test moves.
// It is imported by tests only.
package exchangetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Member is a party with its signing keys and its API token.
type Member struct {
	P     party.Principal
	Keys  *agreement.PrivateKeys
	Token string
}

// NewMember creates a party named name and registers a new key set for it.
func NewMember(t testing.TB, ps *party.Service, ex *exchange.Service, name string) Member {
	t.Helper()
	ctx := context.Background()
	pt, secret, err := ps.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	m := Member{Token: secret}
	if m.P, err = ps.Authenticate(ctx, secret); err != nil || m.P.PartyID != pt.ID {
		t.Fatalf("authenticate %s: %v", name, err)
	}
	if m.Keys, err = agreement.GenerateKeys(); err != nil {
		t.Fatal(err)
	}
	if err := ex.RegisterKeys(ctx, m.P, m.Keys.Public()); err != nil {
		t.Fatal(err)
	}
	return m
}

// Terms are what an agreement document says beyond its parties: the STIX
// types in scope, the highest TLP, the ratio ("get:give") and the grace.
// Documents made here also say: escrow deadline 72h, requests acknowledged
// in 24h and fulfilled in 168h, match cap 1,000, in force from an hour
// before now for a year, no termination notice.
type Terms struct {
	Types  []string
	MaxTLP string
	Ratio  string
	Grace  int
}

// DocumentTerms is the document, as a map to edit before it is signed, of
// an agreement between a and b on terms, made at now.
func DocumentTerms(a, b Member, terms Terms, now time.Time) map[string]any {
	return map[string]any{
		"schema_version": 1, "id": agreement.NewID(), "version": 1,
		"parties": []map[string]any{
			{"party_id": a.P.PartyID, "name": a.P.Name, "key_id": a.Keys.KeyID()},
			{"party_id": b.P.PartyID, "name": b.P.Name, "key_id": b.Keys.KeyID()},
		},
		"scope":              map[string]any{"types": terms.Types, "max_tlp": terms.MaxTLP, "unmarked": "allow"},
		"reciprocity":        map[string]any{"ratio": terms.Ratio, "grace": terms.Grace},
		"escrow_deadline":    "72h",
		"request_deadlines":  map[string]any{"acknowledge": "24h", "fulfil": "168h"},
		"match_cap":          1000,
		"not_before":         now.Add(-time.Hour).Format(time.RFC3339),
		"not_after":          now.Add(365 * 24 * time.Hour).Format(time.RFC3339),
		"termination_notice": "0s",
	}
}

// Fixture is an agreement between A and B, in force at Now; Outsider is a
// registered party in no agreement.
type Fixture struct {
	T           testing.TB
	St          store.Store
	Ex          *exchange.Service
	A, B        Member
	Outsider    Member
	AgreementID string
	Document    *agreement.Document
	Now         time.Time
}

// Clock returns the fixture's clock, for the services' SetClock.
func (f *Fixture) Clock() func() time.Time { return func() time.Time { return f.Now } }

// Advance moves the clock.
func (f *Fixture) Advance(d time.Duration) { f.Now = f.Now.Add(d) }

// New makes the parties and the agreement on db, a new, empty, migrated
// store (the test chooses the backend). mutate, when not nil, edits the
// agreement document's terms before it is signed (for example
// "escrow_deadline" or "match_cap").
func New(t testing.TB, db store.Store, mutate func(map[string]any)) *Fixture {
	t.Helper()
	ctx := context.Background()
	f := &Fixture{T: t, St: db, Ex: exchange.New(db), Now: time.Now().UTC().Truncate(time.Second)}
	f.Ex.SetClock(f.Clock())
	ps := party.New(db)
	f.A, f.B, f.Outsider = NewMember(t, ps, f.Ex, "alpha"), NewMember(t, ps, f.Ex, "bravo"), NewMember(t, ps, f.Ex, "outsider")
	terms := DocumentTerms(f.A, f.B, Terms{Types: []string{"indicator", "malware"}, MaxTLP: "amber", Ratio: "1:2", Grace: 10}, f.Now)
	if mutate != nil {
		mutate(terms)
	}
	raw, err := json.Marshal(terms)
	if err != nil {
		t.Fatal(err)
	}
	if f.Document, err = agreement.ParseDocument(raw); err != nil {
		t.Fatal(err)
	}
	f.AgreementID = f.Document.ID
	if _, _, err := f.Ex.Propose(ctx, f.A.P, raw, f.Sign(f.A, agreement.ActionPropose)); err != nil {
		t.Fatalf("propose: %v", err)
	}
	f.Advance(time.Second)
	a, _, err := f.Ex.Sign(ctx, f.B.P, f.AgreementID, f.Sign(f.B, agreement.ActionCountersign))
	if err != nil {
		t.Fatalf("countersign: %v", err)
	}
	if !a.Status.InForce(f.Now) {
		t.Fatalf("agreement not in force: %s", a.Status.Phase)
	}
	f.Advance(time.Second)
	return f
}

// Sign returns m's signature of action on the agreement's document, now.
func (f *Fixture) Sign(m Member, action agreement.Action) agreement.Signature {
	f.T.Helper()
	st := agreement.StatementFor(f.Document, action, m.P.PartyID, m.Keys.KeyID(), f.Now)
	switch action {
	case agreement.ActionSuspend, agreement.ActionResume, agreement.ActionTerminate:
		st.EffectiveAt, st.Reason = f.Now, "test: "+string(action)
	}
	sig, err := agreement.Sign(m.Keys, st)
	if err != nil {
		f.T.Fatal(err)
	}
	return sig
}

// Step records a lifecycle step by m (suspend, resume, terminate) now.
func (f *Fixture) Step(m Member, action agreement.Action) {
	f.T.Helper()
	if _, _, err := f.Ex.Sign(context.Background(), m.P, f.AgreementID, f.Sign(m, action)); err != nil {
		f.T.Fatalf("%s: %v", action, err)
	}
}

// Events returns the kinds of p's events about subject, oldest first.
func (f *Fixture) Events(p party.Principal, subject string) []string {
	f.T.Helper()
	es, err := f.St.Events().After(context.Background(), p.PartyID, 0, 1000)
	if err != nil {
		f.T.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if subject == "" || e.Subject == subject {
			out = append(out, e.Kind)
		}
	}
	return out
}

// LedgerSize is the ledger's size.
func (f *Fixture) LedgerSize() int64 {
	f.T.Helper()
	n, err := f.St.Ledger().Size(context.Background())
	if err != nil {
		f.T.Fatal(err)
	}
	return n
}
