package demo_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/demo"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/tests/e2e"
)

// TestGeneratedIntelIsValid: every generated object passes parley's own
// STIX validator, and the two perspectives overlap only in the crew's
// well-known identifiers.
func TestGeneratedIntelIsValid(t *testing.T) {
	now := time.Now()
	a := demo.GenerateCrew(1, "A", 240, now)
	b := demo.GenerateCrew(2, "B", 160, now)
	for _, c := range []*demo.Crew{a, b} {
		types := map[string]int{}
		for _, raw := range c.Objects {
			o, err := stix.ParseObject(raw)
			if err != nil {
				t.Fatalf("generated object is invalid: %v\n%s", err, raw)
			}
			types[o.Type]++
		}
		for _, typ := range []string{"threat-actor", "intrusion-set", "malware", "infrastructure", "indicator", "relationship", "identity"} {
			if types[typ] == 0 {
				t.Errorf("no %s generated", typ)
			}
		}
	}
	if a.Indicators != 240 || b.Indicators != 160 {
		t.Fatalf("indicators: %d, %d", a.Indicators, b.Indicators)
	}
	again := demo.GenerateCrew(1, "A", 240, now)
	if string(again.Objects[5]) != string(a.Objects[5]) {
		t.Fatal("generation is not reproducible from its seed")
	}
}

// TestDemo runs the demo against a real server, as `parley demo --exit` does.
func TestDemo(t *testing.T) {
	s := e2e.Start(t)
	var out strings.Builder
	res, err := demo.Run(context.Background(), demo.PartyService{S: s.Srv.Parties}, s.URL, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	// B reads the grace (20) first, then 20 + its credits, capped by what A gave.
	if res.ReadByB[0] != 20 {
		t.Errorf("before contributing B read %d, want the grace of 20", res.ReadByB[0])
	}
	if !(res.ReadByB[1] > res.ReadByB[0] && res.ReadByB[2] >= res.ReadByB[1]) {
		t.Errorf("B's reads did not grow with its contributions: %v", res.ReadByB)
	}
	if want := min(20+res.BalanceB.Contributed, res.BalanceA.Contributed); int64(res.ReadByB[2]) != want {
		t.Errorf("B finally reads %d, want min(20 + %d, %d) = %d", res.ReadByB[2], res.BalanceB.Contributed, res.BalanceA.Contributed, want)
	}
	if res.LedgerSize < 5 || res.ReceiptsOK != int(res.LedgerSize) {
		t.Errorf("ledger: size %d, %d receipts verified", res.LedgerSize, res.ReceiptsOK)
	}
	if res.RequestState != "fulfilled" || res.HandoverState != "released" {
		t.Errorf("request %s, handover %s; want fulfilled and released", res.RequestState, res.HandoverState)
	}
	if res.Unsealed != 30 {
		t.Errorf("B decrypted %d objects from A's sealed deposit, want 30", res.Unsealed)
	}
	// The crews share three identifiers (C2 address, support domain,
	// ransom wallet): A learns exactly those, and so does B.
	if len(res.MatchedA) != 3 || len(res.MatchedB) != 3 {
		t.Errorf("matches: A learned %v, B learned %v; want the 3 shared identifiers each", res.MatchedA, res.MatchedB)
	}
	b, _ := json.Marshal(res.BalanceB)
	if !strings.Contains(out.String(), "verified the signature") {
		t.Errorf("the demo did not report its ledger check; balance %s", b)
	}
}
