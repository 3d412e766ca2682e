package node

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// ind is a valid indicator, distinct in id and content for each (who, n).
func ind(who, n int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8%03d-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.%d.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
		who, n, who, n/256, n%256))
}

// agreed makes a cross-node agreement between alice on a and bob on b
// with a grace, countersigned and delivered both ways.
func agreed(t testing.TB, a, b *fedNode, bob exchange.RemoteParty, grace int) *agreement.Document {
	t.Helper()
	doc := a.document(t, bob)
	doc.Reciprocity = agreement.Terms{Give: 1, Get: 1, Grace: int64(grace)}
	if err := doc.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.ex.Propose(ctx, a.me, doc.Canonical(), a.sign(t, doc, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	a.fed.SendDue(ctx)
	if _, _, err := b.ex.Sign(ctx, b.me, doc.ID, b.sign(t, doc, agreement.ActionCountersign)); err != nil {
		t.Fatal(err)
	}
	if b.fed.SendDue(ctx) != 1 {
		t.Fatal("the countersignature did not reach A")
	}
	return doc
}

// coll returns the collection of contributor under agreement id on n.
func coll(t testing.TB, n *fedNode, id, contributor string) string {
	t.Helper()
	cs, err := n.st.Collections().List(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Contributor == contributor {
			return c.ID
		}
	}
	t.Fatalf("no collection of %s under %s", contributor, id)
	return ""
}

// push adds objects who..n as n's own party through exchange (as TAXII).
func push(t testing.TB, n *fedNode, id string, who, from, to int) {
	t.Helper()
	var raws []json.RawMessage
	for i := from; i < to; i++ {
		raws = append(raws, ind(who, i))
	}
	res, err := n.ex.Ingest(ctx, n.me, id, coll(t, n, id, n.me.PartyID), raws)
	if err != nil || len(res.Status.Failures) != 0 {
		t.Fatalf("push on %s: %+v, %v", n.me.Name, res.Status.Failures, err)
	}
}

// reads returns the ids n's party reads of other's contributions on n.
func reads(t testing.TB, n *fedNode, id, other string) []string {
	t.Helper()
	p, err := n.ex.Query(ctx, n.me, id, store.ObjectQuery{Collection: coll(t, n, id, other), Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range p.Objects {
		out = append(out, o.ID)
	}
	return out
}

// due makes every feed of n due now: no waiting in tests.
func due(n *fedNode) {
	curs, _ := n.st.Federation().FeedCursors(ctx)
	for _, c := range curs {
		c.NextAttempt = time.Time{}
		n.st.Federation().SetFeedCursor(ctx, c)
	}
}

// converge pulls on both nodes until neither ingests a page.
func converge(t testing.TB, a, b *fedNode) {
	t.Helper()
	for i := 0; i < 50; i++ {
		due(a)
		due(b)
		if a.fed.PullDue(ctx)+b.fed.PullDue(ctx) == 0 {
			return
		}
	}
	t.Fatal("the feeds did not converge")
}

// Under a 1:1 agreement with a grace of 2, alice pushes 10 on A and bob,
// at first, nothing on B: bob reads the grace of alice's, alice nothing.
// Once bob pushed 3, alice reads his 3 and bob 2+3 of hers — what one
// server would release — each node counting the other's credits itself.
func TestFeedsAcrossNodes(t *testing.T) {
	a, b, bob := twoNodes(t)
	a.fed.FeedLimit = 2 // several pages per pull
	doc := agreed(t, a, b, bob, 2)
	push(t, a, doc.ID, 1, 0, 10)
	converge(t, a, b)
	if got := reads(t, b, doc.ID, a.me.PartyID); len(got) != 2 || got[0] != idOf(1, 0) || got[1] != idOf(1, 1) {
		t.Fatalf("bob, having given nothing, reads %v; want alice's first 2", got)
	}
	if got := reads(t, a, doc.ID, b.me.PartyID); len(got) != 0 {
		t.Fatalf("alice reads %v of bob's, who gave nothing", got)
	}
	push(t, b, doc.ID, 2, 0, 3)
	converge(t, a, b)
	if got := reads(t, a, doc.ID, b.me.PartyID); len(got) != 3 {
		t.Fatalf("alice reads %d of bob's 3", len(got))
	}
	if got := reads(t, b, doc.ID, a.me.PartyID); len(got) != 5 || got[4] != idOf(1, 4) {
		t.Fatalf("bob reads %v of alice's; want her first 5 (grace 2 + his 3)", got)
	}
	// Each node counted the other's credits itself: A holds bob's 3, B
	// alice's 5 (the released prefix), not her 10.
	if bal, _ := a.st.Credits().Balance(ctx, doc.ID, b.me.PartyID, time.Time{}); bal.Credits != 3 {
		t.Fatalf("A counts %v credits for bob", bal.Credits)
	}
	if bal, _ := b.st.Credits().Balance(ctx, doc.ID, a.me.PartyID, time.Time{}); bal.Contributed != 5 {
		t.Fatalf("B holds %d of alice's contributions", bal.Contributed)
	}
	// Pulling again brings nothing twice.
	converge(t, a, b)
	cur, _ := b.st.Federation().FeedCursor(ctx, doc.ID, a.me.PartyID)
	if cur.After != 5 || cur.Pulled != 5 || cur.Refused != 0 {
		t.Fatalf("B's cursor = %+v", cur)
	}
	// B crashed after ingesting pages but before recording its cursor:
	// it asks for them again, and stores and credits nothing twice.
	cur.After = 0
	if err := b.st.Federation().SetFeedCursor(ctx, cur); err != nil {
		t.Fatal(err)
	}
	converge(t, a, b)
	if cur, _ := b.st.Federation().FeedCursor(ctx, doc.ID, a.me.PartyID); cur.After != 5 {
		t.Fatalf("B's cursor after the repeat = %+v", cur)
	}
	if bal, _ := b.st.Credits().Balance(ctx, doc.ID, a.me.PartyID, time.Time{}); bal.Contributed != 5 || bal.Credits != 5 {
		t.Fatalf("after the repeat B holds %d of alice's contributions, %v credits", bal.Contributed, bal.Credits)
	}
	all, err := b.st.Objects().Query(ctx, store.ObjectQuery{Collection: coll(t, b, doc.ID, a.me.PartyID), Versions: store.VersionFilter{All: true}, Limit: 100})
	if err != nil || len(all.Objects) != 5 {
		t.Fatalf("after the repeat B stores %d versions of alice's (%v)", len(all.Objects), err)
	}
	if got := reads(t, b, doc.ID, a.me.PartyID); len(got) != 5 {
		t.Fatalf("after the repeat bob reads %d", len(got))
	}
	// B offline: A's pull fails, backs off, keeps its cursor; once B is
	// back it resumes where it stood.
	b.down.Store(true)
	push(t, b, doc.ID, 2, 3, 4)
	due(a)
	a.fed.PullDue(ctx)
	if cur, _ := a.st.Federation().FeedCursor(ctx, doc.ID, b.me.PartyID); cur.After != 3 || cur.Attempts != 1 || cur.LastError == "" || !cur.NextAttempt.After(time.Now()) {
		t.Fatalf("A's cursor with B offline = %+v", cur)
	}
	b.down.Store(false)
	converge(t, a, b)
	if got := reads(t, a, doc.ID, b.me.PartyID); len(got) != 4 {
		t.Fatalf("alice reads %d of bob's 4 after B came back", len(got))
	}
	if got := reads(t, b, doc.ID, a.me.PartyID); len(got) != 6 {
		t.Fatalf("bob reads %d of alice's; want 6", len(got))
	}
	// alice suspends on A (B not told yet): A pulls nothing more, without
	// asking B, until she resumes.
	if _, _, err := a.ex.Sign(ctx, a.me, doc.ID, a.sign(t, doc, agreement.ActionSuspend)); err != nil {
		t.Fatal(err)
	}
	push(t, b, doc.ID, 2, 4, 5)
	due(a)
	if n := a.fed.PullDue(ctx); n != 0 {
		t.Fatalf("A pulled %d pages while suspended", n)
	}
	if cur, _ := a.st.Federation().FeedCursor(ctx, doc.ID, b.me.PartyID); cur.After != 4 || !strings.Contains(cur.LastError, "not in force") {
		t.Fatalf("A's cursor while suspended = %+v", cur)
	}
	if _, _, err := a.ex.Sign(ctx, a.me, doc.ID, a.sign(t, doc, agreement.ActionResume)); err != nil {
		t.Fatal(err)
	}
	converge(t, a, b)
	if got := reads(t, a, doc.ID, b.me.PartyID); len(got) != 5 {
		t.Fatalf("alice reads %d of bob's 5 after resuming", len(got))
	}
}

func idOf(who, n int) string {
	return fmt.Sprintf("indicator--00000000-0000-4000-8%03d-%012d", who, n)
}

// The feed endpoint answers only a pinned peer's signed request, only for
// an agreement its party is in, and only with the released prefix.
// A pull asks for the peer's next page while it ingests the one it has, so
// that the peer's serving and this node's writer overlap. A's writer is
// held from the moment B serves the first page; the second page's request
// must reach B while it is still held (a pull that fetched only after
// storing would send it once the hold ends, after 5 s), and every object
// still arrives once.
func TestFeedAsksAheadWhileIngesting(t *testing.T) {
	a, b, bob := twoNodes(t)
	a.fed.FeedLimit = 5
	doc := agreed(t, a, b, bob, 100)
	push(t, b, doc.ID, 2, 0, 12)

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	end := func() { once.Do(func() { close(release) }) }
	var aheadInTime atomic.Bool
	b.mu.Lock()
	b.onRequest = func(path string, body []byte) {
		if path != PathFeed {
			return
		}
		var req FeedRequest
		if json.Unmarshal(body, &req) != nil || req.Agreement != doc.ID {
			return
		}
		switch req.After {
		case 0: // the first page: hold A's writer until the next is asked for
			go a.st.Update(ctx, func(store.Handle) error {
				close(held)
				select {
				case <-release:
				case <-time.After(5 * time.Second):
					end()
				}
				return nil
			})
			<-held
		case 5:
			select {
			case <-release:
			default:
				aheadInTime.Store(true)
			}
			end()
		}
	}
	b.mu.Unlock()
	t.Cleanup(end)
	due(a)
	a.fed.PullDue(ctx)
	end()
	if !aheadInTime.Load() {
		t.Error("the second page was asked for only after the first was stored")
	}
	converge(t, a, b)
	if got := reads(t, a, doc.ID, b.me.PartyID); len(got) != 12 {
		t.Fatalf("alice reads %d of bob's 12", len(got))
	}
	if cur, _ := a.st.Federation().FeedCursor(ctx, doc.ID, b.me.PartyID); cur.After != 12 || cur.Pulled != 12 {
		t.Fatalf("A's cursor = %+v", cur)
	}
}

func TestFeedEndpoint(t *testing.T) {
	a, b, bob := twoNodes(t)
	doc := agreed(t, a, b, bob, 2)
	push(t, a, doc.ID, 1, 0, 7)
	body, _ := json.Marshal(FeedRequest{Agreement: doc.ID})
	post := func(sign func(*http.Request)) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, a.srv.URL+PathFeed, bytes.NewReader(body))
		sign(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb errorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb.Error
	}
	if s, c := post(func(*http.Request) {}); s != 401 || c != "unsigned" {
		t.Fatalf("unsigned: %d %s", s, c)
	}
	stranger := newFedNode(t, "mallory")
	if s, c := post(func(r *http.Request) { stranger.id.SignRequest(r, body, time.Now()) }); s != 401 || c != "unknown_key" {
		t.Fatalf("unpinned: %d %s", s, c)
	}
	if s, c := post(func(r *http.Request) {
		b.id.SignRequest(r, body, time.Now())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}); s != 401 || c != "party_token" {
		t.Fatalf("with a token: %d %s", s, c)
	}
	// A pinned peer whose party is not in the agreement learns nothing.
	carol := newFedNode(t, "carol")
	a.pin(t, "charlie", carol)
	carol.pin(t, "alpha", a)
	cc := carol.fed.client(mustPeer(t, carol, "alpha"))
	if _, err := cc.Feed(ctx, FeedRequest{Agreement: doc.ID}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("another peer's feed request: %v", err)
	}
	// B, whose bob gave nothing, gets the grace: 2 of 7, not more, even
	// when asking past it.
	bc := b.fed.client(mustPeer(t, b, "alpha"))
	p, err := bc.Feed(ctx, FeedRequest{Agreement: doc.ID, Limit: 100})
	if err != nil || p.Next != 2 || p.Released != 2 || p.More || len(p.Objects) != 2 {
		t.Fatalf("first page: next %d released %d more %v, %d objects, %v", p.Next, p.Released, p.More, len(p.Objects), err)
	}
	if p, err := bc.Feed(ctx, FeedRequest{Agreement: doc.ID, After: 2}); err != nil || p.Next != 2 || len(p.Objects) != 0 {
		t.Fatalf("past the released prefix: %+v, %v", p, err)
	}
	if _, err := bc.Feed(ctx, FeedRequest{Agreement: doc.ID, After: -1}); err == nil {
		t.Fatal("a negative cursor was served")
	}
}

// A hostile B serves invalid, out-of-scope and malformed pages: A refuses
// and records each object it cannot take, keeps the rest, and refuses a
// page that does not answer its request or is too large, without
// advancing its cursor.
func TestHostileFeed(t *testing.T) {
	a, b, bob := twoNodes(t)
	doc := agreed(t, a, b, bob, 2)
	var serve func(req FeedRequest) any
	h := NewHandler(b.id, NewPeers(b.st), "", nil)
	h.Route("POST "+PathFeed, func(_ context.Context, _ store.Peer, body []byte) (int, any) {
		var req FeedRequest
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
	cursor := func() store.FeedCursor {
		c, err := a.st.Federation().FeedCursor(ctx, doc.ID, b.me.PartyID)
		if err != nil {
			t.Fatal(err)
		}
		c.NextAttempt = time.Time{}
		a.st.Federation().SetFeedCursor(ctx, c)
		return c
	}
	malware := json.RawMessage(`{"type":"malware","spec_version":"2.1","id":"malware--00000000-0000-4000-8000-000000000001","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"x","is_family":false}`)
	broken := json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"indicator--nope"}`)
	serve = func(req FeedRequest) any {
		return exchange.FeedPage{Agreement: req.Agreement, After: req.After, Next: req.After + 3, Released: 3,
			Objects: []json.RawMessage{ind(2, 0), malware, broken}}
	}
	a.fed.PullDue(ctx)
	if c := cursor(); c.After != 3 || c.Pulled != 1 || c.Refused != 2 || !strings.Contains(c.LastError, "2 objects") {
		t.Fatalf("after a page with 2 bad objects: %+v", c)
	}
	if got := reads(t, a, doc.ID, b.me.PartyID); len(got) != 1 || got[0] != idOf(2, 0) {
		t.Fatalf("alice reads %v; want the one valid object", got)
	}
	// alice hears of it on her event stream, as of every refusal below.
	alerts := func() []string {
		evs, err := a.st.Events().After(ctx, a.me.PartyID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			if e.Kind == "node.feed_refused" && e.Subject == doc.ID {
				out = append(out, string(e.Data))
			}
		}
		return out
	}
	if got := alerts(); len(got) != 1 || !strings.Contains(got[0], `"what":"objects"`) || !strings.Contains(got[0], `"count":2`) {
		t.Fatalf("alerts after refused objects: %v", got)
	}
	bad := map[string]func(FeedRequest) any{
		"next beyond the limit": func(req FeedRequest) any {
			return exchange.FeedPage{Agreement: req.Agreement, After: req.After, Next: req.After + exchange.FeedPageMax + 1, Objects: []json.RawMessage{ind(2, 1)}}
		},
		"another agreement": func(req FeedRequest) any {
			return exchange.FeedPage{Agreement: "agreement--x", After: req.After, Next: req.After + 1, Objects: []json.RawMessage{ind(2, 1)}}
		},
		"progress without objects": func(req FeedRequest) any {
			return exchange.FeedPage{Agreement: req.Agreement, After: req.After, Next: req.After + 1}
		},
		"too large": func(req FeedRequest) any {
			big := fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-000000000009","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.9.9.9']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","description":"%s"}`, strings.Repeat("x", MaxAnswer))
			return exchange.FeedPage{Agreement: req.Agreement, After: req.After, Next: req.After + 1, Objects: []json.RawMessage{json.RawMessage(big)}}
		},
	}
	for name, fn := range bad {
		serve = fn
		// Each bad page starts a new run of failures (the cursor's
		// attempts back at 0), so each is alerted once.
		c := cursor()
		c.Attempts = 0
		a.st.Federation().SetFeedCursor(ctx, c)
		before := len(alerts())
		a.fed.PullDue(ctx)
		c = cursor()
		if c.After != 3 || c.Pulled != 1 || c.Attempts == 0 || c.LastError == "" {
			t.Fatalf("%s: cursor %+v", name, c)
		}
		if got := alerts(); len(got) != before+1 || !strings.Contains(got[len(got)-1], `"what":"page"`) {
			t.Fatalf("%s: alerts %v", name, got)
		}
		// A retry of the same failure is not alerted again.
		cursor()
		a.fed.PullDue(ctx)
		if got := alerts(); len(got) != before+1 {
			t.Fatalf("%s: a retry alerted again: %v", name, got)
		}
	}
	if got := reads(t, a, doc.ID, b.me.PartyID); len(got) != 1 {
		t.Fatalf("alice reads %d objects after the bad pages", len(got))
	}
}

// BenchmarkFeedPull measures one node pulling and ingesting 10,000 of the
// other's contributions (released at once by a grace that large), pages
// of exchange.FeedPageMax over loopback HTTP, both nodes in this process.
// Profile with -cpuprofile; docs/BENCHMARKS.md has the figures of
// `parley bench nodes`, two separate processes.
func BenchmarkFeedPull(b *testing.B) {
	const n = 10000
	for b.Loop() {
		b.StopTimer()
		na, nb, bob := twoNodes(b)
		doc := agreed(b, na, nb, bob, n)
		push(b, na, doc.ID, 1, 0, n)
		b.StartTimer()
		for nb.fed.PullDue(ctx) > 0 {
			due(nb)
		}
		b.StopTimer()
		if got := len(reads(b, nb, doc.ID, na.me.PartyID)); got != n {
			b.Fatalf("bob reads %d of alice's, want %d", got, n)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkFeedServe measures serving the peer the last page of
// exchange.FeedPageMax of a party's contributions, all released, in a
// collection of 5,000 and of 50,000: a page is read by credit ordinal, so
// it should cost the same whatever the collection holds.
func BenchmarkFeedServe(b *testing.B) {
	for _, n := range []int{5000, 50000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			na, nb, bob := twoNodes(b)
			doc := agreed(b, na, nb, bob, n)
			for i := 0; i < n; i += 5000 {
				push(b, na, doc.ID, 1, i, i+5000)
			}
			peer := mustPeer(b, na, "bravo")
			after := int64(n - exchange.FeedPageMax)
			for b.Loop() {
				p, err := na.ex.ServeFeed(ctx, peer, doc.ID, after, 0)
				if err != nil || len(p.Objects) != exchange.FeedPageMax || p.More {
					b.Fatalf("page after %d: %d objects, more %v, %v", after, len(p.Objects), p.More, err)
				}
			}
		})
	}
}

// When a node ingests the peer's party's contributions it releases more
// of its own party's, and nudges the peer to pull them at once: B, whose
// poll interval is an hour here, pulls alice's next objects as soon as A
// has ingested bob's. A nudge from a peer whose party is not in the
// agreement, or malformed, is refused with a code and pulls nothing.
func TestFeedNudge(t *testing.T) {
	a, b, bob := twoNodes(t)
	a.fed.FeedInterval, b.fed.FeedInterval = time.Hour, time.Hour
	doc := agreed(t, a, b, bob, 2)
	push(t, a, doc.ID, 1, 0, 6)
	due(b)
	if b.fed.PullDue(ctx) != 1 || len(reads(t, b, doc.ID, a.me.PartyID)) != 2 {
		t.Fatal("B did not pull the grace")
	}
	if b.fed.PullDue(ctx) != 0 {
		t.Fatal("B pulled again before it was due")
	}

	// carol's node, pinned by B, has no party in the agreement.
	carol := newFedNode(t, "carol")
	b.pin(t, "charlie", carol)
	carol.pin(t, "bravo", b)
	body, _ := json.Marshal(FeedNudge{Agreement: doc.ID})
	_, _, err := carol.fed.client(mustPeer(t, carol, "bravo")).Do(ctx, http.MethodPost, PathFeedNudge, body)
	var re *RefusedError
	if !errors.As(err, &re) || re.Status != http.StatusNotFound || re.Code != "not_party" || !re.Signed {
		t.Fatalf("a stranger's nudge: %v", err)
	}
	_, _, err = a.fed.client(mustPeer(t, a, "bravo")).Do(ctx, http.MethodPost, PathFeedNudge, []byte(`{"agreement":7}`))
	if !errors.As(err, &re) || re.Status != http.StatusBadRequest || re.Code != "bad_request" {
		t.Fatalf("a malformed nudge: %v", err)
	}
	if b.fed.PullDue(ctx) != 0 {
		t.Fatal("B pulled after refused nudges")
	}

	// bob gives 3; A pulls them (credits bob 3, releases 2+3 of alice's)
	// and nudges B, which pulls without waiting for its poll.
	push(t, b, doc.ID, 2, 0, 3)
	due(a)
	if a.fed.PullDue(ctx) != 1 {
		t.Fatal("A did not pull bob's 3")
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.fed.PullDue(ctx) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("B was not nudged to pull")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := len(reads(t, b, doc.ID, a.me.PartyID)); got != 5 {
		t.Fatalf("bob reads %d of alice's after the nudge, want 5", got)
	}
}

// distinctIDs counts a page's distinct contributions: ids ingest parsed,
// and for objects that did not parse, the id their JSON names, if any; at
// most the ordinals the page covers.
func TestDistinctIDs(t *testing.T) {
	raws := []json.RawMessage{
		json.RawMessage(`{"type":"indicator","id":"indicator--1"}`),
		json.RawMessage(`{"type":"indicator","id":"indicator--1"}`),
		json.RawMessage(`{"type":"indicator","id":"indicator--2","bad":true}`), // refused by ingest: decoded here
		json.RawMessage(`{"type":"indicator"}`),                                // no id at all
		json.RawMessage(`not json`),
		json.RawMessage(`{"type":"indicator","id":"indicator--3"}`),
	}
	ids := []string{"indicator--1", "indicator--1", "", "", "", "indicator--3"}
	if n := distinctIDs(raws, ids, 10); n != 3 {
		t.Fatalf("distinct = %d, want 3", n)
	}
	if n := distinctIDs(raws, ids, 2); n != 2 {
		t.Fatalf("distinct with 2 ordinals = %d, want 2", n)
	}
	// ids shorter than raws (a chunk not ingested): the rest are decoded.
	if n := distinctIDs(raws, ids[:1], 10); n != 3 {
		t.Fatalf("distinct from raws alone = %d, want 3", n)
	}
}

// A page's feed.received entry and the cursor past it are written in one
// transaction. With the cursor's write failing (a trigger here; a full
// disk or a lost database in life), nothing of the page is recorded; once
// it is written again the page is pulled again and recorded once. Written
// apart, the entry stayed while the cursor did not move, the page was
// recorded a second time, and a joint report counted it twice.
func TestFeedPageRecordedWithItsCursor(t *testing.T) {
	a, b, bob := twoNodes(t)
	doc := agreed(t, a, b, bob, 100)
	push(t, b, doc.ID, 2, 0, 3)
	raw, err := sql.Open("sqlite", a.st.(*sqlite.DB).Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `CREATE TRIGGER stuck BEFORE UPDATE ON node_feed_cursors WHEN NEW.after_ord > 0
		BEGIN SELECT RAISE(ABORT, 'the cursor cannot move'); END`); err != nil {
		t.Fatal(err)
	}
	due(a)
	if got := a.fed.PullDue(ctx); got != 0 {
		t.Fatalf("a page whose cursor could not be written counted as ingested (%d)", got)
	}
	subject := "received--" + doc.ID + "--" + bob.PartyID + "--3"
	if ks := kinds(t, a, subject); len(ks) != 0 {
		t.Fatalf("recorded without its cursor: %v", ks)
	}
	if c, err := a.st.Federation().FeedCursor(ctx, doc.ID, bob.PartyID); err != nil || c.After != 0 || c.Attempts != 1 ||
		!strings.Contains(c.LastError, "not recorded here") {
		t.Fatalf("cursor after the failed write: %+v, %v", c, err)
	}
	if _, err := raw.ExecContext(ctx, `DROP TRIGGER stuck`); err != nil {
		t.Fatal(err)
	}
	due(a)
	if got := a.fed.PullDue(ctx); got != 1 {
		t.Fatalf("pulled %d pages once the cursor could move, want 1", got)
	}
	if ks := kinds(t, a, subject); len(ks) != 1 || ks[0] != string(ledger.KindFeedReceived) {
		t.Fatalf("the page is recorded %d times: %v", len(ks), ks)
	}
	if c, err := a.st.Federation().FeedCursor(ctx, doc.ID, bob.PartyID); err != nil || c.After != 3 || c.Pulled != 3 || c.Attempts != 0 || c.LastError != "" {
		t.Fatalf("cursor after the page: %+v, %v", c, err)
	}
	if got := reads(t, a, doc.ID, bob.PartyID); len(got) != 3 {
		t.Fatalf("alice reads %d of bob's, want 3", len(got))
	}
	// A cursor that is not this pull's past this page is refused, and
	// nothing is recorded.
	c, _ := a.st.Federation().FeedCursor(ctx, doc.ID, bob.PartyID)
	peer, err := a.st.Nodes().Peer(ctx, "bravo")
	if err != nil {
		t.Fatal(err)
	}
	wrongParty, wrongPlace := c, c
	wrongParty.After, wrongParty.PartyID = 5, a.me.PartyID
	wrongPlace.After = 4
	for _, w := range []store.FeedCursor{wrongParty, wrongPlace} {
		if err := a.ex.RecordFeedReceived(ctx, peer, doc.ID, 3, 5, 2, w); !errors.Is(err, exchange.ErrInvalid) {
			t.Fatalf("a received page with the cursor %+v: %v", w, err)
		}
	}
	if ks := kinds(t, a, "received--"+doc.ID+"--"+bob.PartyID+"--5"); len(ks) != 0 {
		t.Fatalf("recorded with a wrong cursor: %v", ks)
	}
}
