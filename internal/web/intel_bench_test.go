package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// BenchmarkIntelPages measures the intelligence pages IN-PROCESS (the
// handler through the mux, no network, no client) over a SQLite store
// where the counterpart has contributed n objects, all released to the
// reader: the listing, each filter, searches common and rare, a deep
// page, an object page with its graph, and a 1,000-object export.
// PARLEY_BENCH_MILLION=1 seeds 1,000,000 (several minutes), and
// PARLEY_BENCH_OBJECTS=n seeds n; the default is 20,000. The seed goes through the store directly (the objects, their
// credits, their marks and the release), not through ingest, so that it takes minutes
// rather than the ingest benchmark's time.
func BenchmarkIntelPages(b *testing.B) {
	n := 20000
	if os.Getenv("PARLEY_BENCH_MILLION") != "" {
		n = 1000000
	}
	if v, err := strconv.Atoi(os.Getenv("PARLEY_BENCH_OBJECTS")); err == nil && v >= 2000 {
		n = v
	}
	f := newFixture(b)
	start := time.Now()
	base := seedIntel(b, f, n)
	b.Logf("seeded %d objects in %s", n, time.Since(start).Round(time.Second))
	// The joint report counts every seeded object as released, by type.
	rep, err := report.New(f.ex, f.st.Ledger(), nil).Build(context.Background(), f.b, f.agreementID, base.Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	if sd := rep.Facts.Sides[0]; sd.ReleasedTotal < int64(n) || sd.ByType["indicator"]+sd.ByType["malware"]+sd.ByType["relationship"] != sd.Released {
		b.Fatalf("the joint report of the seed: %+v", sd)
	}
	mux := http.NewServeMux()
	f.dash.Register(mux)
	reader, _ := f.dash.sessions.create(f.b, f.dash.now())
	owner, _ := f.dash.sessions.create(f.a, f.dash.now())
	mid := base.Add(time.Duration(n/2) * time.Microsecond)
	day := base.Format("2006-01-02")
	for _, tc := range []struct{ name, path, session string }{
		{"list", "/ui/intel", reader},
		{"list-own", "/ui/intel?dir=given", owner},
		{"list-deep-page", "/ui/intel?before=" + strconv.FormatInt(mid.UnixMicro(), 10) + ".1", reader},
		{"time-range", "/ui/intel?from=" + day + "&to=" + day, reader},
		{"type-common", "/ui/intel?type=indicator", reader},
		{"type-rare", "/ui/intel?type=malware", reader},
		{"type-absent", "/ui/intel?type=tool", reader},
		{"label-every", "/ui/intel?label=bulk", reader},
		{"label-1pc", "/ui/intel?label=l7", reader},
		{"tlp-amber-10pc", "/ui/intel?tlp=amber", reader},
		{"search-common", "/ui/intel?q=server", reader},
		{"search-0.1pc", "/ui/intel?q=word417", reader},
		{"search-one-ip", "/ui/intel?q=" + url.QueryEscape(ipOf(n/3)), reader},
		{"search-none", "/ui/intel?q=nothingmatchesthis", reader},
		{"search-and-filters", "/ui/intel?q=server&label=l3&tlp=green&type=indicator", reader},
		{"object-with-graph", "/ui/objects/" + url.PathEscape(seedID("malware", n/2-n/2%50)), reader},
		{"export-1000-picked", "/ui/intel/export?" + pickIDs(n), reader},
		{"joint-report", "/ui/agreements/" + url.PathEscape(f.agreementID) + "/report", reader},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", tc.path, nil)
				req.AddCookie(&http.Cookie{Name: "parley_session", Value: tc.session})
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d", tc.path, w.Code)
				}
			}
		})
	}
	b.ReportMetric(float64(n), "objects")
}

func seedID(typ string, i int) string {
	return fmt.Sprintf("%s--10000000-0000-4000-8000-%012d", typ, i)
}

func ipOf(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// pickIDs is 1,000 ids spread over the seed, as a picked export sends.
func pickIDs(n int) string {
	v := url.Values{}
	for i := range 1000 {
		v.Add("id", seedID("indicator", i*(n/1000)+3))
	}
	return v.Encode()
}

// seedIntel stores n objects in A's agreement collection, credits them to
// A and releases them all to B, as package exchange would, and returns the
// first one's date_added. Every 50th is a malware with a relationship
// from the indicator before it; labels "bulk" and one of l0–l99; every
// 10th TLP:AMBER, the rest TLP:GREEN; the description holds one of 1,000
// words.
func seedIntel(tb testing.TB, f *fixture, n int) time.Time {
	tb.Helper()
	ctx := context.Background()
	cs, err := f.ex.Collections(ctx, f.a, f.agreementID)
	if err != nil {
		tb.Fatal(err)
	}
	own := ""
	for _, c := range cs {
		if c.Write {
			own = c.ID
		}
	}
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	const chunk = 2000
	var last []string
	for lo := 0; lo < n; lo += chunk {
		var objs []store.Object
		var items []store.Contribution
		var marks []store.Mark
		for i := lo; i < min(lo+chunk, n); i++ {
			tlp := stix.TLPGreen
			if i%10 == 0 {
				tlp = stix.TLPAmber
			}
			typ, id := "indicator", seedID("indicator", i)
			raw := fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"C2 server %d","description":"Seen with word%d","pattern":"[ipv4-addr:value = '%s']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","labels":["bulk","l%d"],"object_marking_refs":[%q]}`,
				id, i, i%1000, ipOf(i), i%100, tlp)
			switch {
			case i%50 == 0:
				typ, id = "malware", seedID("malware", i)
				raw = fmt.Sprintf(`{"type":"malware","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"Family %d","is_family":true,"labels":["bulk"],"object_marking_refs":[%q]}`, id, i, tlp)
			case i%50 == 1:
				typ, id = "relationship", seedID("relationship", i)
				raw = fmt.Sprintf(`{"type":"relationship","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","relationship_type":"indicates","source_ref":%q,"target_ref":%q}`,
					id, seedID("indicator", i+1), seedID("malware", i-1))
			}
			v := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			objs = append(objs, store.Object{ID: id, Type: typ, SpecVersion: "2.1", Version: v, DateAdded: base.Add(time.Duration(i) * time.Microsecond), Raw: []byte(raw)})
			items = append(items, store.Contribution{ObjectID: id, Weight: 1})
			level, _ := stix.TLPLevel(tlp)
			if typ == "relationship" {
				level = -1 // unmarked
			}
			marks = append(marks, store.Mark{ObjectID: id, Type: typ, TLP: level, Version: v})
		}
		err := f.st.Update(ctx, func(tx store.Handle) error {
			if err := tx.Agreements().Lock(ctx, f.agreementID); err != nil {
				return err
			}
			if _, err := tx.Objects().Put(ctx, own, objs); err != nil {
				return err
			}
			if _, err := tx.Credits().Contribute(ctx, f.agreementID, f.a.PartyID, items, base); err != nil {
				return err
			}
			return tx.Credits().Mark(ctx, f.agreementID, f.a.PartyID, marks)
		})
		if err != nil {
			tb.Fatal(err)
		}
		last = last[:0]
		for _, o := range objs {
			last = append(last, o.ID)
		}
	}
	bal, err := f.st.Credits().Balance(ctx, f.agreementID, f.a.PartyID, time.Time{})
	if err != nil {
		tb.Fatal(err)
	}
	err = f.st.Update(ctx, func(tx store.Handle) error {
		if err := tx.Credits().SetReleased(ctx, f.agreementID, f.b.PartyID, bal.Contributed); err != nil {
			return err
		}
		if err := tx.Credits().Reach(ctx, f.agreementID, f.b.PartyID, f.a.PartyID, last); err != nil {
			return err
		}
		// The release's ledger entry, so that the joint report counts
		// every seeded object as released in its period.
		_, err := ledger.Append(ctx, tx.Ledger(), ledger.Entry{Kind: ledger.KindFeedReleased, Agreement: f.agreementID,
			Subject: fmt.Sprintf("release--%s--%s--%d", f.agreementID, f.b.PartyID, bal.Contributed), Time: time.Now().UTC().Truncate(time.Microsecond),
			Parties: []string{f.b.PartyID, f.a.PartyID},
			Attrs:   map[string]string{"recipient": f.b.PartyID, "contributor": f.a.PartyID, "from": "1", "to": strconv.FormatInt(bal.Contributed, 10)}})
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return base
}
