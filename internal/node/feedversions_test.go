package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/store"
)

// indV is version modified of ind(who, n), revoked when revoked is set.
func indV(who, n int, modified string, revoked bool) json.RawMessage {
	raw := ind(who, n)
	raw = bytes.Replace(raw, []byte(`"modified":"2026-01-01T00:00:00.000Z"`), []byte(`"modified":"`+modified+`"`), 1)
	if revoked {
		raw = bytes.Replace(raw, []byte(`"pattern_type"`), []byte(`"revoked":true,"pattern_type"`), 1)
	}
	return raw
}

// versionsOf returns the versions (modified times) n stores of id in
// other's collection under agreement id.
func versionsOf(t testing.TB, n *fedNode, agreementID, other, id string) []string {
	t.Helper()
	p, err := n.st.Objects().Query(ctx, store.ObjectQuery{Collection: coll(t, n, agreementID, other), IDs: []string{id},
		Versions: store.VersionFilter{All: true}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range p.Objects {
		out = append(out, o.Version.UTC().Format("2006-01-02"))
	}
	return out
}

// A later version alice pushes of a contribution B already pulled (a
// revocation) reaches B and is what bob reads; a later version of a
// contribution not released to bob does not, until it is released, and
// then it comes with its contribution's page, once.
func TestFeedLaterVersions(t *testing.T) {
	a, b, bob := twoNodes(t)
	// Later versions are asked for at most once a poll interval; the
	// test pulls many times a millisecond.
	b.fed.FeedInterval = time.Millisecond
	doc := agreed(t, a, b, bob, 2)
	push(t, a, doc.ID, 1, 0, 3)
	converge(t, a, b)
	if got := reads(t, b, doc.ID, a.me.PartyID); len(got) != 2 {
		t.Fatalf("bob reads %v; want alice's first 2", got)
	}
	alicePush := func(raws ...json.RawMessage) {
		t.Helper()
		res, err := a.ex.Ingest(ctx, a.me, doc.ID, coll(t, a, doc.ID, a.me.PartyID), raws)
		if err != nil || len(res.Status.Failures) != 0 {
			t.Fatalf("alice's push: %+v, %v", res.Status.Failures, err)
		}
	}
	// alice revokes her first (released) and changes her third (not).
	alicePush(indV(1, 0, "2026-02-01T00:00:00.000Z", true), indV(1, 2, "2026-02-01T00:00:00.000Z", false))
	converge(t, a, b)
	if got := versionsOf(t, b, doc.ID, a.me.PartyID, idOf(1, 0)); fmt.Sprint(got) != "[2026-01-01 2026-02-01]" {
		t.Fatalf("B holds versions %v of alice's first; want both", got)
	}
	p, err := b.ex.Query(ctx, b.me, doc.ID, store.ObjectQuery{Collection: coll(t, b, doc.ID, a.me.PartyID), IDs: []string{idOf(1, 0)}, Limit: 10})
	if err != nil || len(p.Objects) != 1 || !strings.Contains(string(p.Objects[0].Raw), `"revoked":true`) {
		t.Fatalf("bob reads %v (%v); want the revoked version", p.Objects, err)
	}
	if got := versionsOf(t, b, doc.ID, a.me.PartyID, idOf(1, 2)); len(got) != 0 {
		t.Fatalf("B holds versions %v of alice's unreleased third", got)
	}
	cur, _ := b.st.Federation().FeedCursor(ctx, doc.ID, a.me.PartyID)
	if cur.VersionsAfter == "" || cur.After != 2 || cur.LastError != "" {
		t.Fatalf("B's cursor = %+v", cur)
	}
	// bob gives one: alice's third is released, with both its versions.
	push(t, b, doc.ID, 2, 0, 1)
	converge(t, a, b)
	if got := versionsOf(t, b, doc.ID, a.me.PartyID, idOf(1, 2)); fmt.Sprint(got) != "[2026-01-01 2026-02-01]" {
		t.Fatalf("B holds versions %v of alice's third once released", got)
	}
	all, err := b.st.Objects().Query(ctx, store.ObjectQuery{Collection: coll(t, b, doc.ID, a.me.PartyID), Versions: store.VersionFilter{All: true}, Limit: 100})
	if err != nil || len(all.Objects) != 5 {
		t.Fatalf("B stores %d versions of alice's; want 5 (%v)", len(all.Objects), err)
	}
	// Nothing is pulled twice: another round ingests nothing.
	due(b)
	if n := b.fed.PullDue(ctx); n != 0 {
		t.Fatalf("a quiet feed pulled %d pages", n)
	}
}

// The later-versions endpoint answers a pinned peer only for an agreement
// its party is in, never beyond what is released to it nor beyond the
// ordinal it says it pulled, and never a first version.
func TestFeedVersionsEndpoint(t *testing.T) {
	a, b, bob := twoNodes(t)
	doc := agreed(t, a, b, bob, 2)
	push(t, a, doc.ID, 1, 0, 4)
	var raws []json.RawMessage
	for i := 0; i < 4; i++ {
		raws = append(raws, indV(1, i, "2026-03-01T00:00:00.000Z", false))
	}
	if res, err := a.ex.Ingest(ctx, a.me, doc.ID, coll(t, a, doc.ID, a.me.PartyID), raws); err != nil || len(res.Status.Failures) != 0 {
		t.Fatalf("later versions on A: %v %v", res.Status.Failures, err)
	}
	bc := b.fed.client(mustPeer(t, b, "alpha"))
	ids := func(p exchange.FeedVersionsPage) string {
		var out []string
		for _, o := range p.Objects {
			var v struct{ ID, Modified string }
			json.Unmarshal(o, &v)
			out = append(out, v.ID[len(v.ID)-1:]+"@"+v.Modified[:7])
		}
		return strings.Join(out, " ")
	}
	// Released to bob: 2 (the grace). Asking up to 4 gets 2.
	p, err := bc.FeedVersions(ctx, FeedVersionsRequest{Agreement: doc.ID, UpTo: 4})
	if err != nil || ids(p) != "0@2026-03 1@2026-03" || p.More {
		t.Fatalf("up to 4 with 2 released: %q more %v, %v", ids(p), p.More, err)
	}
	// Asking up to 1 gets 1; resuming from its next gets nothing more.
	p, err = bc.FeedVersions(ctx, FeedVersionsRequest{Agreement: doc.ID, UpTo: 1})
	if err != nil || ids(p) != "0@2026-03" {
		t.Fatalf("up to 1: %q, %v", ids(p), err)
	}
	if q, err := bc.FeedVersions(ctx, FeedVersionsRequest{Agreement: doc.ID, After: p.Next, UpTo: 1}); err != nil || len(q.Objects) != 0 || q.Next != p.Next {
		t.Fatalf("after the last: %q next %q, %v", ids(q), q.Next, err)
	}
	// A limit of 1 looks at one version at a time (first versions
	// skipped, the cursor still moving past them).
	var seen []string
	after := ""
	for i := 0; i < 20; i++ {
		q, err := bc.FeedVersions(ctx, FeedVersionsRequest{Agreement: doc.ID, After: after, UpTo: 2, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if s := ids(q); s != "" {
			seen = append(seen, s)
		}
		if q.Next == after {
			break
		}
		after = q.Next
	}
	if fmt.Sprint(seen) != "[0@2026-03 1@2026-03]" {
		t.Fatalf("page by page: %v", seen)
	}
	for bad, code := range map[FeedVersionsRequest]string{{Agreement: doc.ID, After: "x.1"}: "422 invalid", {Agreement: doc.ID, After: "1"}: "422 invalid",
		{Agreement: doc.ID, UpTo: -1}: "400 bad_request"} {
		var re *RefusedError
		if _, err := bc.FeedVersions(ctx, bad); !errors.As(err, &re) || fmt.Sprint(re.Status, " ", re.Code) != code {
			t.Fatalf("%+v: %v, want %s", bad, err, code)
		}
	}
	// A pinned peer whose party is not in the agreement learns nothing.
	carol := newFedNode(t, "carol")
	a.pin(t, "charlie", carol)
	carol.pin(t, "alpha", a)
	if _, err := carol.fed.client(mustPeer(t, carol, "alpha")).FeedVersions(ctx, FeedVersionsRequest{Agreement: doc.ID, UpTo: 4}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("another peer's request: %v", err)
	}
}

// A hostile peer's later-versions pages that do not answer the request
// are refused: the cursor stays, the party hears of it once, and the
// contributions' pull goes on.
func TestHostileFeedVersions(t *testing.T) {
	a, b, bob := twoNodes(t)
	a.fed.FeedInterval = time.Millisecond
	doc := agreed(t, a, b, bob, 2)
	var serve func(req FeedVersionsRequest) any
	h := NewHandler(b.id, NewPeers(b.st), "", nil)
	h.Route("POST "+PathFeed, func(_ context.Context, _ store.Peer, body []byte) (int, any) {
		var req FeedRequest
		json.Unmarshal(body, &req)
		if req.After > 0 {
			return http.StatusOK, exchange.FeedPage{Agreement: req.Agreement, After: req.After, Next: req.After, Released: 1, Objects: []json.RawMessage{}}
		}
		return http.StatusOK, exchange.FeedPage{Agreement: req.Agreement, After: 0, Next: 1, Released: 1, Objects: []json.RawMessage{ind(2, 0)}}
	})
	h.Route("POST "+PathFeedVersions, func(_ context.Context, _ store.Peer, body []byte) (int, any) {
		var req FeedVersionsRequest
		json.Unmarshal(body, &req)
		return http.StatusOK, serve(req)
	})
	mux := http.NewServeMux()
	h.Register(mux)
	hostile := httptest.NewServer(mux)
	defer hostile.Close()
	peers := NewPeers(a.st)
	if err := peers.Remove(ctx, "bravo"); err != nil {
		t.Fatal(err)
	}
	if _, err := peers.Add(ctx, a.id, "bravo", hostile.URL, b.id.Public.VKey); err != nil {
		t.Fatal(err)
	}
	alerts := func() int {
		evs, err := a.st.Events().After(ctx, a.me.PartyID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.Kind == "node.feed_refused" && strings.Contains(string(e.Data), `"what":"page"`) {
				n++
			}
		}
		return n
	}
	for name, fn := range map[string]func(FeedVersionsRequest) any{
		"next before after": func(req FeedVersionsRequest) any {
			return exchange.FeedVersionsPage{Agreement: req.Agreement, After: req.After, Next: "", Objects: []json.RawMessage{ind(2, 0)}, More: true}
		},
		"another agreement": func(req FeedVersionsRequest) any {
			return exchange.FeedVersionsPage{Agreement: "agreement--x", After: req.After, Next: "5.5", Objects: []json.RawMessage{ind(2, 0)}}
		},
		"not a position": func(req FeedVersionsRequest) any {
			return exchange.FeedVersionsPage{Agreement: req.Agreement, After: req.After, Next: "soon", Objects: []json.RawMessage{ind(2, 0)}}
		},
		"more than asked": func(req FeedVersionsRequest) any {
			objs := make([]json.RawMessage, exchange.FeedPageMax+1)
			for i := range objs {
				objs[i] = ind(2, 0)
			}
			return exchange.FeedVersionsPage{Agreement: req.Agreement, After: req.After, Next: "5.5", Objects: objs}
		},
	} {
		serve = fn
		c, _ := a.st.Federation().FeedCursor(ctx, doc.ID, b.me.PartyID)
		c.NextAttempt, c.LastError, c.VersionsAfter = c.NextAttempt.AddDate(-1, 0, 0), "", "1.1"
		a.st.Federation().SetFeedCursor(ctx, c)
		before := alerts()
		due(a)
		a.fed.PullDue(ctx)
		c, _ = a.st.Federation().FeedCursor(ctx, doc.ID, b.me.PartyID)
		if c.After != 1 || c.VersionsAfter != "1.1" || !strings.HasPrefix(c.LastError, "later versions not pulled") {
			t.Fatalf("%s: cursor %+v", name, c)
		}
		if got := alerts(); got != before+1 {
			t.Fatalf("%s: %d alerts, want %d", name, got, before+1)
		}
		due(a)
		a.fed.PullDue(ctx)
		if got := alerts(); got != before+1 {
			t.Fatalf("%s: a retry alerted again (%d)", name, got)
		}
	}
	if got := reads(t, a, doc.ID, b.me.PartyID); len(got) != 1 {
		t.Fatalf("alice reads %d of bob's; want the 1 his page carried", len(got))
	}
}
