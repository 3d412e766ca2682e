package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// searchObj is a stored version with the fields search looks at.
func searchObj(id string, version, added time.Time, fields map[string]any) store.Object {
	m := map[string]any{"id": id, "modified": version.Format(time.RFC3339Nano)}
	for k, v := range fields {
		m[k] = v
	}
	raw, _ := json.Marshal(m)
	typ := id[:strings.Index(id, "--")]
	return store.Object{ID: id, Type: typ, SpecVersion: "2.1", Version: version, DateAdded: added, Raw: raw}
}

func searchIDs(p store.Page) []string {
	var out []string
	for _, o := range p.Objects {
		out = append(out, o.ID[:strings.Index(o.ID, "--")]+fmt.Sprint(o.ID[len(o.ID)-2:]))
	}
	return out
}

const (
	tlpAmber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
	tlpGreen = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
)

// testSearch: words of names, aliases, descriptions and patterns; facets
// (types, labels exactly, markings object-level and granular, references);
// time bounds; ids; the last version only; paging in both orders; a
// deletion leaves the index; and another collection's objects never
// appear, however well they match. Since migration 30 SQLite's Put writes
// the index rows itself (no trigger): every case here goes through it.
func testSearch(t *testing.T, st store.Store) {
	mustCollection(t, st, "c1", nil, nil)
	mustCollection(t, st, "c2", nil, nil)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	put := func(coll string, objs ...store.Object) {
		t.Helper()
		if _, err := st.Objects().Put(ctx, coll, objs); err != nil {
			t.Fatal(err)
		}
	}
	put("c1",
		searchObj(uid("indicator", 1), t0, at(1), map[string]any{"name": "Emotet C2", "pattern": "[ipv4-addr:value = '10.0.0.1']",
			"labels": []string{"malicious-activity", "botnet"}, "object_marking_refs": []string{tlpAmber}}),
		searchObj(uid("malware", 2), t0, at(2), map[string]any{"name": "Emotet", "aliases": []string{"Heodo", "Geodo"},
			"description": "A banking trojan turned loader.", "labels": []string{"botnet"}}),
		searchObj(uid("indicator", 3), t0, at(3), map[string]any{"name": "Phishing domain", "pattern": "[domain-name:value = 'evil.example.com']",
			"granular_markings": []map[string]any{{"marking_ref": tlpGreen, "selectors": []string{"pattern"}}}}),
		searchObj(uid("relationship", 4), t0, at(4), map[string]any{"relationship_type": "indicates",
			"source_ref": uid("indicator", 1), "target_ref": uid("malware", 2)}),
		searchObj(uid("report", 5), t0, at(5), map[string]any{"name": "Weekly", "description": "Loader activity",
			"object_refs": []string{uid("malware", 2), uid("indicator", 3)}}),
		// Its first version is about Emotet, its last is not.
		searchObj(uid("tool", 6), t0, at(6), map[string]any{"name": "Emotet dropper", "labels": []string{"old-label"}}),
	)
	put("c1", searchObj(uid("tool", 6), t0.Add(time.Hour), at(7), map[string]any{"name": "Generic dropper"}))
	// The other collection holds everything a query below asks for.
	put("c2",
		searchObj(uid("indicator", 91), t0, at(1), map[string]any{"name": "Emotet C2 Heodo loader", "pattern": "[ipv4-addr:value = '10.0.0.1']",
			"labels": []string{"botnet", "malicious-activity"}, "object_marking_refs": []string{tlpAmber, tlpGreen},
			"description": "evil.example.com"}),
		searchObj(uid("relationship", 92), t0, at(2), map[string]any{"source_ref": uid("indicator", 1), "target_ref": uid("malware", 2)}),
		searchObj(uid("malware", 93), t0, at(3), map[string]any{"name": "Generic dropper", "labels": []string{"old-label"}}),
	)
	search := func(q store.SearchQuery) []string {
		t.Helper()
		if q.Collection == "" {
			q.Collection = "c1"
		}
		if q.Limit == 0 {
			q.Limit = 100
		}
		p, err := st.Objects().Search(ctx, q)
		if err != nil {
			t.Fatalf("search %+v: %v", q, err)
		}
		if p.More {
			t.Fatalf("search %+v: more than %d", q, q.Limit)
		}
		return searchIDs(p)
	}
	for _, tc := range []struct {
		name string
		q    store.SearchQuery
		want []string
	}{
		{"all, newest first", store.SearchQuery{}, []string{"tool06", "report05", "relationship04", "indicator03", "malware02", "indicator01"}},
		{"a word of a name", store.SearchQuery{Text: "emotet"}, []string{"malware02", "indicator01"}},
		{"words match case-insensitively, all must occur", store.SearchQuery{Text: "EMOTET c2"}, []string{"indicator01"}},
		{"an alias", store.SearchQuery{Text: "heodo"}, []string{"malware02"}},
		{"a word of a description", store.SearchQuery{Text: "loader"}, []string{"report05", "malware02"}},
		{"an IP in a pattern", store.SearchQuery{Text: "10.0.0.1"}, []string{"indicator01"}},
		{"a domain in a pattern", store.SearchQuery{Text: "evil.example.com"}, []string{"indicator03"}},
		{"part of a domain", store.SearchQuery{Text: "example"}, []string{"indicator03"}},
		{"whole words only", store.SearchQuery{Text: "emo"}, nil},
		{"only the last version", store.SearchQuery{Text: "dropper"}, []string{"tool06"}},
		{"an old version's words are not the object's", store.SearchQuery{Text: "emotet dropper"}, nil},
		{"a quote is a character, not syntax", store.SearchQuery{Text: `"emotet"* *`}, []string{"malware02", "indicator01"}},
		{"FTS syntax is words", store.SearchQuery{Text: `body : NEAR(emotet)`}, nil},
		{"types", store.SearchQuery{Types: []string{"indicator", "report"}}, []string{"report05", "indicator03", "indicator01"}},
		{"types with words", store.SearchQuery{Text: "emotet", Types: []string{"malware"}}, []string{"malware02"}},
		{"a label", store.SearchQuery{Labels: []string{"botnet"}}, []string{"malware02", "indicator01"}},
		{"labels: all of them", store.SearchQuery{Labels: []string{"botnet", "malicious-activity"}}, []string{"indicator01"}},
		{"a label exactly, not its words", store.SearchQuery{Labels: []string{"malicious"}}, nil},
		{"an old version's label", store.SearchQuery{Labels: []string{"old-label"}}, nil},
		{"a marking", store.SearchQuery{Markings: []string{tlpAmber}}, []string{"indicator01"}},
		{"a granular marking", store.SearchQuery{Markings: []string{tlpGreen}}, []string{"indicator03"}},
		{"any of the markings", store.SearchQuery{Markings: []string{tlpGreen, tlpAmber}}, []string{"indicator03", "indicator01"}},
		{"what refers to an object", store.SearchQuery{Refs: []string{uid("malware", 2)}}, []string{"report05", "relationship04"}},
		{"what refers to either", store.SearchQuery{Refs: []string{uid("indicator", 1), uid("indicator", 3)}}, []string{"report05", "relationship04"}},
		{"added from", store.SearchQuery{AddedFrom: at(3)}, []string{"tool06", "report05", "relationship04", "indicator03"}},
		{"added before", store.SearchQuery{AddedBefore: at(3)}, []string{"malware02", "indicator01"}},
		{"time with words", store.SearchQuery{Text: "emotet", AddedFrom: at(2)}, []string{"malware02"}},
		{"ids", store.SearchQuery{IDs: []string{uid("malware", 2), uid("tool", 6), uid("malware", 93)}}, []string{"tool06", "malware02"}},
		{"ids with words", store.SearchQuery{Text: "emotet", IDs: []string{uid("malware", 2), uid("malware", 93)}}, []string{"malware02"}},
		{"the other collection", store.SearchQuery{Collection: "c2", Text: "emotet"}, []string{"indicator91"}},
	} {
		if got := search(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %+v = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}

	// Paging, in both orders, gives every match once.
	for _, q := range []store.SearchQuery{{Limit: 2}, {Text: "emotet loader botnet trojan banking", Limit: 1}, {Types: []string{"indicator", "malware", "tool", "report", "relationship"}, Labels: nil, Limit: 2},
		{Markings: []string{tlpAmber, tlpGreen}, Limit: 1}} {
		q.Collection = "c1"
		full := q
		full.Limit = 100
		want := search(full)
		var got []string
		for range 20 {
			p, err := st.Objects().Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, searchIDs(p)...)
			if !p.More {
				break
			}
			last := p.Objects[len(p.Objects)-1]
			q.Before = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
		}
		if !slices.Equal(got, want) {
			t.Errorf("paged %+v = %v, want %v", q, got, want)
		}
	}

	// A deleted object leaves the index.
	if n, err := st.Objects().Delete(ctx, "c1", uid("malware", 2), store.VersionFilter{All: true}, nil); err != nil || n != 1 {
		t.Fatalf("delete = %d, %v", n, err)
	}
	if got := search(store.SearchQuery{Text: "heodo"}); got != nil {
		t.Errorf("after deletion, heodo = %v", got)
	}
	if got := search(store.SearchQuery{Collection: "c2", Text: "heodo"}); !slices.Equal(got, []string{"indicator91"}) {
		t.Errorf("after deletion in c1, heodo in c2 = %v", got)
	}
	if _, err := st.Objects().Search(ctx, store.SearchQuery{Collection: "nope", Limit: 1}); err == nil {
		t.Error("search of a missing collection succeeded")
	}
	if _, err := st.Objects().Search(ctx, store.SearchQuery{Collection: "c1"}); err == nil {
		t.Error("search with limit 0 succeeded")
	}
}

// testSearchReleased: a search bounded by a release returns, for every
// filter, exactly the released objects Query returns: never an unreleased
// contribution, however well it matches.
func testSearchReleased(t *testing.T, st store.Store) {
	x := ext(t, st)
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	ag := "agreement--search"
	if err := x.Agreements().Create(ctx, store.AgreementRecord{ID: ag, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := st.Collections().Create(ctx, store.Collection{ID: "contrib-a", APIRoot: ag, Title: "alpha's", CreatedAt: t0, Agreement: ag, Contributor: a.ID}); err != nil {
		t.Fatal(err)
	}
	var objs []store.Object
	var items []store.Contribution
	for i := range 20 {
		id := uid("indicator", i)
		objs = append(objs, searchObj(id, t0, t0.Add(time.Duration(i)*time.Second), map[string]any{
			"name": fmt.Sprintf("secret%d shared", i), "labels": []string{fmt.Sprintf("l%d", i%2)}}))
		items = append(items, store.Contribution{ObjectID: id, Weight: 1})
	}
	if _, err := st.Objects().Put(ctx, "contrib-a", objs); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Credits().Contribute(ctx, ag, a.ID, items, t0); err != nil {
		t.Fatal(err)
	}
	if err := x.Credits().SetReleased(ctx, ag, b.ID, 7); err != nil {
		t.Fatal(err)
	}
	released, err := x.Credits().Range(ctx, ag, a.ID, 1, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Credits().Reach(ctx, ag, b.ID, a.ID, released); err != nil {
		t.Fatal(err)
	}
	bound, err := x.Credits().Bound(ctx, ag, b.ID, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Objects().Query(ctx, store.ObjectQuery{Collection: "contrib-a", Released: &bound, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	visible := map[string]bool{}
	for _, o := range p.Objects {
		visible[o.ID] = true
	}
	if len(visible) != 7 {
		t.Fatalf("Query released %d objects, want 7", len(visible))
	}
	for _, q := range []store.SearchQuery{{}, {Text: "shared"}, {Text: "secret15"}, {Text: "secret3"}, {Labels: []string{"l1"}},
		{Types: []string{"indicator"}}, {IDs: []string{uid("indicator", 19), uid("indicator", 2)}}, {AddedFrom: t0.Add(5 * time.Second)}} {
		q.Collection, q.Released, q.Limit = "contrib-a", &bound, 100
		p, err := st.Objects().Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Objects {
			if !visible[o.ID] {
				t.Errorf("search %+v returned %s, which is not released", q, o.ID)
			}
		}
		// And it finds every released match: compare with the unbounded
		// search filtered by hand.
		free := q
		free.Released = nil
		all, err := st.Objects().Search(ctx, free)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, o := range all.Objects {
			if visible[o.ID] {
				want = append(want, o.ID)
			}
		}
		var got []string
		for _, o := range p.Objects {
			got = append(got, o.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("search %+v = %v, want the released matches %v", q, got, want)
		}
	}
}
