package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
)

var ctx = context.Background()

// Document builds an agreement document from a to b, in force now.
func Document(t testing.TB, a, b *Party, mutate func(map[string]any)) *agreement.Document {
	t.Helper()
	now := time.Now().UTC()
	m := map[string]any{
		"schema_version": 1, "id": agreement.NewID(), "version": 1,
		"parties": []map[string]any{
			{"party_id": a.ID, "name": a.Name, "key_id": a.Keys.KeyID()},
			{"party_id": b.ID, "name": b.Name, "key_id": b.Keys.KeyID()},
		},
		"scope":              map[string]any{"types": []string{"indicator", "malware", "threat-actor"}, "max_tlp": "amber", "unmarked": "allow"},
		"reciprocity":        map[string]any{"ratio": "1:2", "grace": 10},
		"escrow_deadline":    "72h",
		"request_deadlines":  map[string]any{"acknowledge": "24h", "fulfil": "168h"},
		"not_before":         now.Add(-time.Minute).Format(time.RFC3339),
		"not_after":          now.Add(365 * 24 * time.Hour).Format(time.RFC3339),
		"termination_notice": "0s",
	}
	if mutate != nil {
		mutate(m)
	}
	raw, _ := json.Marshal(m)
	d, err := agreement.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Sign signs an action on d by p, now.
func Sign(t testing.TB, p *Party, d *agreement.Document, action agreement.Action) agreement.Signature {
	t.Helper()
	st := agreement.StatementFor(d, action, p.ID, p.Keys.KeyID(), time.Now())
	switch action {
	case agreement.ActionSuspend, agreement.ActionResume, agreement.ActionTerminate:
		st.EffectiveAt, st.Reason = st.SignedAt, "end-to-end test"
	}
	sig, err := agreement.Sign(p.Keys, st)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// Activate has a propose and b countersign d over the API.
func Activate(t testing.TB, a, b *Party, d *agreement.Document) *client.Agreement {
	t.Helper()
	if _, err := a.C.Propose(ctx, d, Sign(t, a, d, agreement.ActionPropose)); err != nil {
		t.Fatalf("propose: %v", err)
	}
	ag, err := b.C.Sign(ctx, Sign(t, b, d, agreement.ActionCountersign))
	if err != nil {
		t.Fatalf("countersign: %v", err)
	}
	if !ag.InForce || ag.Phase != "active" {
		t.Fatalf("after countersigning: phase %s, in force %v", ag.Phase, ag.InForce)
	}
	return ag
}

// Collections returns p's own and the counterpart's collection in the
// agreement's API root, as TAXII lists them.
func Collections(t testing.TB, p *Party, agreementID string) (own, theirs string) {
	t.Helper()
	cs, err := p.C.Collections(ctx, agreementID)
	if err != nil || len(cs) != 2 {
		t.Fatalf("%s's collections under %s: %+v, %v", p.Name, agreementID, cs, err)
	}
	for _, c := range cs {
		if c.CanWrite {
			own = c.ID
		} else {
			theirs = c.ID
		}
	}
	if own == "" || theirs == "" {
		t.Fatalf("%s: collections %+v lack one writable and one read-only", p.Name, cs)
	}
	return own, theirs
}

func Indicator(n int, marking string) json.RawMessage {
	refs := ""
	if marking != "" {
		refs = fmt.Sprintf(`,"object_marking_refs":[%q]`, marking)
	}
	return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"C2 %d","pattern":"[ipv4-addr:value = '10.%d.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"%s}`,
		n, n, (n>>16)&255, (n>>8)&255, n&255, refs))
}

func Indicators(from, n int) []json.RawMessage {
	out := make([]json.RawMessage, 0, n)
	for i := from; i < from+n; i++ {
		out = append(out, Indicator(i, ""))
	}
	return out
}

// ReadAll pages through a collection with limit/next and returns the ids.
func ReadAll(t testing.TB, p *Party, root, coll string, limit int) []string {
	t.Helper()
	var ids []string
	for o, err := range p.C.AllObjects(ctx, root, coll, client.Filter{Limit: limit}) {
		if err != nil {
			t.Fatalf("%s reading %s: %v", p.Name, coll, err)
		}
		var head struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(o, &head); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, head.ID)
	}
	return ids
}

// TestGiveToGetOverTAXII is the end-to-end scenario, through real
// TAXII requests and the management API.
func TestGiveToGetOverTAXII(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "cert-north"), s.NewParty(t, "police-south")
	d := Document(t, a, b, nil)
	ag := Activate(t, a, b, d)
	aOwn, aTheirs := Collections(t, a, ag.ID)
	bOwn, bTheirs := Collections(t, b, ag.ID)
	if aOwn != bTheirs || bOwn != aTheirs {
		t.Fatalf("the two parties' views do not pair up")
	}

	// A publishes 100 objects; B reads only the grace of 10.
	st, err := a.C.AddObjects(ctx, ag.ID, aOwn, Indicators(0, 100))
	if err != nil || st.SuccessCount != 100 {
		t.Fatalf("A publishes: %+v, %v", st, err)
	}
	if got := ReadAll(t, b, ag.ID, bTheirs, 3); len(got) != 10 {
		t.Fatalf("B reads %d before contributing, want the grace of 10", len(got))
	}
	// B publishes 50; at 1:2 it reads 10 + 2×50 = 110, capped by A's 100.
	if _, err := b.C.AddObjects(ctx, ag.ID, bOwn, Indicators(1000, 20)); err != nil {
		t.Fatal(err)
	}
	if got := ReadAll(t, b, ag.ID, bTheirs, 7); len(got) != 50 {
		t.Fatalf("B reads %d after contributing 20, want 10 + 2×20 = 50", len(got))
	}
	if _, err := b.C.AddObjects(ctx, ag.ID, bOwn, Indicators(1020, 30)); err != nil {
		t.Fatal(err)
	}
	got := ReadAll(t, b, ag.ID, bTheirs, 1000)
	if len(got) != 100 {
		t.Fatalf("B reads %d after contributing 50, want all 100 (allowance 110)", len(got))
	}
	for i, id := range got {
		if want := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i); id != want {
			t.Fatalf("B's object %d is %s, want A's publish order (%s)", i, id, want)
		}
	}
	// Objects beyond the allowance are invisible by id too, exactly like
	// objects that do not exist.
	bal, err := b.C.Balance(ctx, ag.ID)
	if err != nil || bal.Contributed != 50 || bal.Allowance != 110 || bal.Released != 100 || bal.Available != 100 {
		t.Fatalf("B's balance = %+v, %v", bal, err)
	}
	// Duplicates earn nothing.
	st, err = b.C.AddObjects(ctx, ag.ID, bOwn, append(Indicators(1000, 5), Indicators(0, 5)...))
	if err != nil || st.SuccessCount != 10 {
		t.Fatalf("duplicates: %+v, %v", st, err)
	}
	if bal2, _ := b.C.Balance(ctx, ag.ID); bal2.Contributed != 50 {
		t.Fatalf("duplicates earned credit: %+v", bal2)
	}
	// Out of scope: refused with the reason, the valid object kept.
	st, err = b.C.AddObjects(ctx, ag.ID, bOwn, []json.RawMessage{
		json.RawMessage(`{"type":"tool","spec_version":"2.1","id":"tool--00000000-0000-4000-8000-000000000001","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"mimikatz"}`),
		Indicator(5000, agreement.MarkingID(agreement.TLPRed)),
		Indicator(5001, agreement.MarkingID(agreement.TLPAmber)),
	})
	if err != nil || st.SuccessCount != 1 || st.FailureCount != 2 ||
		!strings.Contains(st.Failures[0].Message, "outside the agreement's scope") ||
		!strings.Contains(st.Failures[1].Message, "TLP:RED, above the agreement's highest TLP:AMBER") {
		t.Fatalf("scope: %+v, %v", st, err)
	}
	// A terminates: nothing more flows; what was released stays.
	if _, err := a.C.Sign(ctx, Sign(t, a, d, agreement.ActionTerminate)); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := a.C.AddObjects(ctx, ag.ID, aOwn, Indicators(200, 10)); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("publishing after termination: %v, want 403", err)
	}
	if got := ReadAll(t, b, ag.ID, bTheirs, 50); len(got) != 100 {
		t.Fatalf("after termination B reads %d, want the 100 released before", len(got))
	}
	final, err := a.C.Agreement(ctx, ag.ID)
	if err != nil || final.Phase != "terminated" || final.InForce {
		t.Fatalf("final agreement: %+v, %v", final, err)
	}
}

// TestAllowanceExactUnderConcurrency has both parties write (with
// duplicates) and read at once through several connections. No read ever
// returns more than was released when it finished, and at the end each
// party reads exactly min(grace + get/give × credits, contributed).
func TestAllowanceExactUnderConcurrency(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	d := Document(t, a, b, func(m map[string]any) { m["reciprocity"] = map[string]any{"ratio": "3:2", "grace": 7} })
	ag := Activate(t, a, b, d)
	type side struct {
		p           *Party
		own, theirs string
		base        int
	}
	sides := []side{{p: a, base: 0}, {p: b, base: 1_000_000}}
	for i := range sides {
		sides[i].own, sides[i].theirs = Collections(t, sides[i].p, ag.ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range sides {
		sd := sides[i]
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, 1))
				for k := 0; k < 15; k++ {
					n := 1 + r.IntN(12)
					// Overlapping ranges make duplicates across writers.
					from := sd.base + r.IntN(120)
					if _, err := sd.p.C.AddObjects(ctx, ag.ID, sd.own, Indicators(from, n)); err != nil {
						errs <- err
						return
					}
				}
			}(uint64(i*10 + w))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 25; k++ {
				n := 0
				for _, err := range sd.p.C.AllObjects(ctx, ag.ID, sd.theirs, client.Filter{Limit: 1 + k%9}) {
					if err != nil {
						errs <- err
						return
					}
					n++
				}
				bal, err := sd.p.C.Balance(ctx, ag.ID)
				if err != nil {
					errs <- err
					return
				}
				if int64(n) > bal.Released {
					errs <- fmt.Errorf("%s read %d objects, but only %d were released", sd.p.Name, n, bal.Released)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, sd := range sides {
		mine, err := sd.p.C.Balance(ctx, ag.ID)
		if err != nil {
			t.Fatal(err)
		}
		// "3:2" is give:get: three credits earn two objects.
		want := min(7+mine.Credits*2/3, float64(mine.Available))
		got := ReadAll(t, sd.p, ag.ID, sd.theirs, 13)
		if float64(len(got)) != float64(int64(want)) || mine.Released != int64(want) {
			t.Fatalf("%s reads %d (released %d); want min(7 + 2/3 × %v, %d) = %d", sd.p.Name, len(got), mine.Released, mine.Credits, mine.Available, int64(want))
		}
		own := ReadAll(t, sd.p, ag.ID, sd.own, 50)
		if int64(len(own)) != mine.Contributed {
			t.Fatalf("%s has %d objects in its own collection but %d credited contributions", sd.p.Name, len(own), mine.Contributed)
		}
	}
}
