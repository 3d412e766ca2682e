package report

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
	"github.com/parley-cti/parley/internal/store/sqlite/sqlitetest"
)

// The slow computation the tallies replaced, kept as the oracle: every
// released object read (exchange.ReleasedObjects) and its marking parsed.

// tlpOf is the most restrictive TLP marking an object references.
func tlpOf(raw []byte) string {
	var o struct {
		Refs []string `json:"object_marking_refs"`
	}
	_ = json.Unmarshal(raw, &o)
	best := -1
	for _, r := range o.Refs {
		if l, ok := stix.TLPLevel(r); ok && l > best {
			best = l
		}
	}
	if best < 0 {
		return Unmarked
	}
	return tlpLabels[best]
}

// oracleCount counts by type and TLP, reading them, contributor's objects
// with ordinals at most upTo.
func oracleCount(t *testing.T, ex *exchange.Service, p party.Principal, agreementID, contributor string, upTo int64) (map[string]int64, map[string]int64) {
	t.Helper()
	byType, byTLP := map[string]int64{}, map[string]int64{}
	err := ex.ReleasedObjects(context.Background(), p, agreementID, contributor, upTo, func(o store.Object) error {
		byType[o.Type]++
		byTLP[tlpOf(o.Raw)]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return byType, byTLP
}

// tallyCount is the same from exchange.ReleasedTally.
func tallyCount(t *testing.T, ex *exchange.Service, p party.Principal, agreementID, contributor string, upTo int64) (map[string]int64, map[string]int64) {
	t.Helper()
	ts, err := ex.ReleasedTally(context.Background(), p, agreementID, contributor, upTo)
	if err != nil {
		t.Fatal(err)
	}
	byType, byTLP := map[string]int64{}, map[string]int64{}
	for _, x := range ts {
		byType[x.Type] += x.N
		byTLP[tlpLabel(x.TLP)] += x.N
	}
	return byType, byTLP
}

type oracleWorld struct {
	dir         string
	st          *sqlite.DB
	ex          *exchange.Service
	a, b        party.Principal
	agreementID string
	colls       map[string]string // party → its contribution collection
}

func openWorld(t *testing.T, w *oracleWorld) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), w.dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	w.st, w.ex = st, exchange.New(st)
}

func newOracleWorld(t *testing.T) *oracleWorld {
	t.Helper()
	ctx := context.Background()
	w := &oracleWorld{dir: t.TempDir(), colls: map[string]string{}}
	openWorld(t, w)
	t.Cleanup(func() { w.st.Close() })
	ps := party.New(w.st)
	mk := func(name string) (party.Principal, *agreement.PrivateKeys) {
		_, tok, err := ps.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		pr, err := ps.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		k, err := agreement.GenerateKeys()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.ex.RegisterKeys(ctx, pr, k.Public()); err != nil {
			t.Fatal(err)
		}
		return pr, k
	}
	var ka, kb *agreement.PrivateKeys
	w.a, ka = mk("alpha")
	w.b, kb = mk("bravo")
	now := time.Now().UTC()
	m := map[string]any{
		"schema_version": 1, "id": agreement.NewID(), "version": 1,
		"parties": []map[string]any{
			{"party_id": w.a.PartyID, "name": w.a.Name, "key_id": ka.KeyID()},
			{"party_id": w.b.PartyID, "name": w.b.Name, "key_id": kb.KeyID()},
		},
		"scope":              map[string]any{"types": []string{"indicator", "malware", "tool"}, "max_tlp": "red", "unmarked": "allow"},
		"reciprocity":        map[string]any{"ratio": "1:1", "grace": 40},
		"escrow_deadline":    "72h",
		"request_deadlines":  map[string]any{"acknowledge": "24h", "fulfil": "168h"},
		"not_before":         now.Add(-time.Minute).Format(time.RFC3339),
		"not_after":          now.Add(365 * 24 * time.Hour).Format(time.RFC3339),
		"termination_notice": "0s",
	}
	raw, _ := json.Marshal(m)
	doc, err := agreement.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(k *agreement.PrivateKeys, p party.Principal, action agreement.Action) agreement.Signature {
		sig, err := agreement.Sign(k, agreement.StatementFor(doc, action, p.PartyID, k.KeyID(), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	if _, _, err := w.ex.Propose(ctx, w.a, doc.Canonical(), sign(ka, w.a, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.ex.Sign(ctx, w.b, doc.ID, sign(kb, w.b, agreement.ActionCountersign)); err != nil {
		t.Fatal(err)
	}
	w.agreementID = doc.ID
	for _, p := range []party.Principal{w.a, w.b} {
		cs, err := w.ex.Collections(ctx, p, doc.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Write {
				w.colls[p.PartyID] = c.ID
			}
		}
	}
	return w
}

var oracleMarkings = [][]string{nil, nil, {stix.TLPWhite}, {stix.TLPGreen}, {stix.TLP2Green}, {stix.TLPAmber}, {stix.TLP2AmberStrict},
	{stix.TLPRed}, {stix.TLPGreen, stix.TLP2Red}, {stix.TLP2Clear, stix.TLPAmber}, {"marking-definition--00000000-0000-4000-8000-000000000001"}}

// object is a valid STIX object of type typ, number n, version v (minutes
// after a fixed time), with marks.
func oracleObject(typ string, n, v int, marks []string) json.RawMessage {
	mod := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(v) * time.Minute).Format("2006-01-02T15:04:05.000Z")
	id := fmt.Sprintf("%s--20000000-0000-4000-8000-%012d", typ, n)
	o := map[string]any{"type": typ, "spec_version": "2.1", "id": id, "created": "2026-01-01T00:00:00.000Z", "modified": mod, "name": fmt.Sprintf("o%d v%d", n, v)}
	switch typ {
	case "indicator":
		o["pattern"], o["pattern_type"], o["valid_from"] = fmt.Sprintf("[ipv4-addr:value = '10.1.%d.%d']", n>>8&255, n&255), "stix", "2026-01-01T00:00:00Z"
	case "malware":
		o["is_family"] = true
	}
	if marks != nil {
		o["object_marking_refs"] = marks
	}
	raw, _ := json.Marshal(o)
	return raw
}

// TestTalliesMatchTheOracle: on random contributions by both sides (new
// objects, new and old versions changing the marking, re-posts, objects
// the other side gave), the counts by type and TLP from the tallies equal
// those of reading every released object, at every block boundary and
// random ordinals, in the report's figures for random periods, and again
// after the tallies are forgotten and rebuilt on first use (a database
// migrated from before they existed).
func TestTalliesMatchTheOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("ingests a few thousand objects")
	}
	ctx := context.Background()
	w := newOracleWorld(t)
	rng := rand.New(rand.NewPCG(17, 2026))
	types := []string{"indicator", "malware", "tool"}
	type known struct {
		typ string
		n   int
	}
	var pool []known
	version := 0
	next := 0
	ingest := func(p party.Principal, size int) {
		var raws []json.RawMessage
		for range size {
			version++
			var k known
			if len(pool) > 0 && rng.IntN(4) == 0 {
				k = pool[rng.IntN(len(pool))] // a new, old or same version of a known object, either side's
			} else {
				k = known{types[rng.IntN(len(types))], next}
				next++
				pool = append(pool, k)
			}
			v := version
			if rng.IntN(5) == 0 {
				v = rng.IntN(version) // an older version
			}
			raws = append(raws, oracleObject(k.typ, k.n, v, oracleMarkings[rng.IntN(len(oracleMarkings))]))
		}
		if _, err := w.ex.Ingest(ctx, p, w.agreementID, w.colls[p.PartyID], raws); err != nil {
			t.Fatal(err)
		}
	}
	for range 16 {
		ingest(w.a, 150+rng.IntN(100))
		ingest(w.b, 1+rng.IntN(40))
	}
	check := func(stage string) {
		t.Helper()
		for _, pr := range []party.Principal{w.a, w.b} {
			bal, err := w.st.Credits().Balance(ctx, w.agreementID, pr.PartyID, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			ups := []int64{0, 1, 2, bal.Contributed, bal.Contributed + 5}
			for _, b := range []int64{1, 2} {
				ups = append(ups, b*store.TallyBlock-2, b*store.TallyBlock-1, b*store.TallyBlock, b*store.TallyBlock+1)
			}
			for range 4 {
				ups = append(ups, rng.Int64N(bal.Contributed+1))
			}
			for _, up := range ups {
				ot, ol := oracleCount(t, w.ex, w.b, w.agreementID, pr.PartyID, up)
				tt, tl := tallyCount(t, w.ex, w.a, w.agreementID, pr.PartyID, up)
				if !maps.Equal(ot, tt) || !maps.Equal(ol, tl) {
					t.Fatalf("%s: %s up to %d: tallies %v %v, oracle %v %v", stage, pr.Name, up, tt, tl, ot, ol)
				}
			}
		}
		// The report's figures for random periods, against the oracle on
		// the same released bounds.
		svc := New(w.ex, w.st.Ledger(), nil)
		for range 3 {
			from := time.Now().Add(-time.Duration(rng.IntN(600)) * time.Second)
			to := time.Now().Add(time.Duration(1+rng.IntN(60)) * time.Second)
			if rng.IntN(3) == 0 {
				from = time.Now().Add(-time.Hour)
			}
			r, err := svc.Build(ctx, w.a, w.agreementID, from, to)
			if err != nil {
				t.Fatal(err)
			}
			for _, sd := range r.Facts.Sides {
				hi, lo := sd.ReleasedTotal, sd.ReleasedTotal-sd.Released
				ht, hl := oracleCount(t, w.ex, w.a, w.agreementID, sd.Party, hi)
				lt, ll := oracleCount(t, w.ex, w.a, w.agreementID, sd.Party, lo)
				for k, v := range lt {
					ht[k] -= v
				}
				for k, v := range ll {
					hl[k] -= v
				}
				maps.DeleteFunc(ht, func(_ string, v int64) bool { return v == 0 })
				maps.DeleteFunc(hl, func(_ string, v int64) bool { return v == 0 })
				if !maps.Equal(ht, sd.ByType) || !maps.Equal(hl, sd.ByTLP) {
					t.Fatalf("%s: report side %s (%d, %d]: %v %v, oracle %v %v", stage, sd.Party, lo, hi, sd.ByType, sd.ByTLP, ht, hl)
				}
			}
		}
	}
	check("kept at ingest")
	bal, _ := w.st.Credits().Balance(ctx, w.agreementID, w.a.PartyID, time.Time{})
	if bal.Contributed <= 2*store.TallyBlock {
		t.Fatalf("only %d contributions: the test needs more than two whole blocks", bal.Contributed)
	}

	// Forgotten, as after the migration, and rebuilt on first use.
	w.st.Close()
	if err := sqlitetest.ForgetMarks(ctx, w.dir); err != nil {
		t.Fatal(err)
	}
	openWorld(t, w)
	for _, pr := range []party.Principal{w.a, w.b} {
		if ok, err := w.st.Credits().Marked(ctx, w.agreementID, pr.PartyID); err != nil || ok {
			t.Fatalf("Marked(%s) after the tallies were forgotten = %v, %v", pr.Name, ok, err)
		}
	}
	check("rebuilt on first use")
	for _, pr := range []party.Principal{w.a, w.b} {
		if ok, err := w.st.Credits().Marked(ctx, w.agreementID, pr.PartyID); err != nil || !ok {
			t.Fatalf("Marked(%s) after the rebuild = %v, %v", pr.Name, ok, err)
		}
	}
	// And kept from there on.
	for range 3 {
		ingest(w.a, 100)
		ingest(w.b, 20)
	}
	check("kept after the rebuild")
}
