package crosswitness_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/crosswitness"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/node"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/server"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// testNode is a whole parley node served on a loopback port.
type testNode struct {
	st     store.Store
	srv    *server.Server
	url    string
	signer *ledger.Signer // its ledger key, to forge with as the node itself
}

func startNode(t *testing.T) *testNode { return startNodeF(t) }

func startNodeF(t testing.TB) *testNode {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := server.New(ctx, server.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	skey, err := db.Settings().Get(ctx, "ledger.note-skey")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{st: db, srv: srv, url: hs.URL, signer: signer}
}

func pin(t *testing.T, on, other *testNode, name string) store.Peer {
	t.Helper()
	p, err := node.NewPeers(on.st).Add(context.Background(), on.srv.Node, name, other.url, other.srv.Node.Public.VKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// grow appends n entries to the node's log and signs a checkpoint of it.
func (n *testNode) grow(t *testing.T, count int) (int64, []byte) {
	t.Helper()
	ctx := context.Background()
	err := n.st.Update(ctx, func(tx store.Handle) error {
		for i := range count {
			if _, err := ledger.Append(ctx, tx.Ledger(), ledger.Entry{Kind: ledger.KindFeedBatch, Subject: "batch-" + string(rune('a'+i)), Time: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, signed, err := n.srv.Checkpointer.SignNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c.Size, signed
}

// submit sends a raw submission to peer p signed with id's node key.
func submit(t *testing.T, id *node.Identity, p store.Peer, sub crosswitness.Submission) (*node.RefusedError, crosswitness.Refusal, []byte) {
	t.Helper()
	body, _ := json.Marshal(sub)
	_, out, err := (&node.Client{Self: id, Peer: p}).Do(context.Background(), http.MethodPost, crosswitness.PathAddCheckpoint, body)
	var re *node.RefusedError
	var r crosswitness.Refusal
	if errors.As(err, &re) {
		json.Unmarshal(out, &r)
		return re, r, out
	}
	if err != nil {
		t.Fatal(err)
	}
	return nil, r, out
}

func hashes(hs []tlog.Hash) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, encode(h))
	}
	return out
}

// TestHostilePeer drives B's witness endpoint as a hostile A would, with
// A's own node key and ledger key: each lie is refused with its code and
// recorded (incident, ledger entry, an event for B's party), and B goes on
// cosigning A's honest checkpoints.
func TestHostilePeer(t *testing.T) {
	ctx := context.Background()
	a, b := startNode(t), startNode(t)
	bOnA := pin(t, a, b, "bravo")
	aOnB := pin(t, b, a, "alpha")
	if _, _, err := party.New(b.st).Create(ctx, "analyst"); err != nil {
		t.Fatal(err)
	}

	// Honest: B cosigns A's checkpoint; A stores the cosignature.
	size, signed := a.grow(t, 3)
	if err := a.srv.Witnessing.Submit(ctx, bOnA, size, signed); err != nil {
		t.Fatalf("honest submission: %v", err)
	}
	lines, err := a.st.Ledger().Cosignatures(ctx, size)
	if err != nil || len(lines) != 1 || !strings.Contains(string(lines[0]), "-witness ") {
		t.Fatalf("A's checkpoint %d carries %q, %v; want B's cosignature", size, lines, err)
	}
	view, err := b.st.PeerLogs().PeerLog(ctx, aOnB.KeyID)
	if err != nil || view.Size != size || view.LogKey != a.signer.VerifierKey() {
		t.Fatalf("B's view of A = %+v, %v", view, err)
	}

	// A hostile A: every lie below is signed with A's real node key.
	forger, _, _ := ledger.GenerateSignerKey(a.signer.Origin())
	fs, _ := ledger.NewSigner(forger)
	forged, _ := fs.Sign(ledger.Checkpoint{Origin: a.signer.Origin(), Size: size + 1, Hash: tlog.Hash{1}})
	var otherRoot tlog.Hash
	otherRoot[0] = 7
	fork, _ := a.signer.Sign(ledger.Checkpoint{Origin: a.signer.Origin(), Size: size, Hash: otherRoot})
	smaller, _ := a.signer.Sign(ledger.Checkpoint{Origin: a.signer.Origin(), Size: size - 1, Hash: otherRoot})
	bigger, _ := a.signer.Sign(ledger.Checkpoint{Origin: a.signer.Origin(), Size: size + 2, Hash: otherRoot})
	otherKey, _, _ := ledger.GenerateSignerKey("parley-other")
	os, _ := ledger.NewSigner(otherKey)
	for _, c := range []struct {
		name   string
		sub    crosswitness.Submission
		status int
		code   string
		kind   string // the incident recorded, "" for none
	}{
		{"forged signature", crosswitness.Submission{LogKey: a.signer.VerifierKey(), OldSize: size, Checkpoint: string(forged)}, 403, "forged", crosswitness.KindForged},
		{"fork: same size, another root", crosswitness.Submission{LogKey: a.signer.VerifierKey(), OldSize: size, Checkpoint: string(fork)}, 409, "fork", crosswitness.KindFork},
		{"rollback: smaller than cosigned", crosswitness.Submission{LogKey: a.signer.VerifierKey(), OldSize: size, Checkpoint: string(smaller)}, 409, "rollback", crosswitness.KindRollback},
		{"inconsistent proof", crosswitness.Submission{LogKey: a.signer.VerifierKey(), OldSize: size, Proof: hashes([]tlog.Hash{{1}, {2}}), Checkpoint: string(bigger)}, 422, "inconsistent", crosswitness.KindInconsistent},
		{"another ledger key", crosswitness.Submission{LogKey: os.VerifierKey(), OldSize: size, Checkpoint: string(signed)}, 403, "key_changed", crosswitness.KindKeyChanged},
		{"stale old size", crosswitness.Submission{LogKey: a.signer.VerifierKey(), OldSize: 1, Checkpoint: string(fork)}, 409, "size_conflict", ""},
		{"no ledger key", crosswitness.Submission{}, 400, "bad_request", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := b.st.PeerLogs().PeerIncidents(ctx, 100)
			re, r, _ := submit(t, a.srv.Node, bOnA, c.sub)
			if re == nil || re.Status != c.status || re.Code != c.code || !re.Signed || r.Message == "" {
				t.Fatalf("refusal = %+v, want %d %s signed by B", re, c.status, c.code)
			}
			after, _ := b.st.PeerLogs().PeerIncidents(ctx, 100)
			if c.kind == "" {
				if len(after) != len(before) {
					t.Fatalf("%s recorded an incident: %+v", c.code, after[0])
				}
				return
			}
			if len(after) != len(before)+1 || after[0].Kind != c.kind || after[0].Peer != "alpha" || after[0].KeyID != aOnB.KeyID || c.kind != crosswitness.KindKeyChanged && len(after[0].Theirs) == 0 {
				t.Fatalf("incidents after %s: %d, newest %+v", c.name, len(after), after[0])
			}
		})
	}
	// The view did not move.
	if v, _ := b.st.PeerLogs().PeerLog(ctx, aOnB.KeyID); v.Size != size || string(v.Checkpoint) != string(signed) {
		t.Fatalf("B's view moved to %d after refusals", v.Size)
	}
	// Recorded in B's ledger and shown to B's party.
	n, _ := b.st.Ledger().Size(ctx)
	es, err := b.st.Ledger().ReadEntries(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, raw := range es {
		e, err := ledger.DecodeEntry(raw)
		if err == nil && e.Kind == ledger.KindNodePeerIncident && e.Attrs["peer"] == "alpha" && e.Subject == aOnB.KeyID {
			kinds[e.Attrs["incident"]]++
		}
	}
	if kinds["fork"] != 1 || kinds["forged"] != 1 || kinds["rollback"] != 1 || kinds["inconsistent"] != 1 || kinds["key_changed"] != 1 {
		t.Fatalf("node.peer_incident entries in B's ledger by kind: %v", kinds)
	}
	ps, _ := b.st.Parties().List(ctx)
	evs, err := b.st.Events().After(ctx, ps[0].ID, 0, 100)
	if err != nil || len(evs) != 5 || evs[0].Kind != crosswitness.EventKind || evs[0].Subject != "alpha" || !strings.Contains(string(evs[1].Data), `"incident":"fork"`) {
		t.Fatalf("B's party's events = %+v, %v", evs, err)
	}
	// The same lie again is refused again, but recorded once.
	if re, _, _ := submit(t, a.srv.Node, bOnA, crosswitness.Submission{LogKey: a.signer.VerifierKey(), OldSize: size, Checkpoint: string(fork)}); re == nil || re.Code != "fork" {
		t.Fatalf("the fork again: %+v", re)
	}
	if is, _ := b.st.PeerLogs().PeerIncidents(ctx, 100); len(is) != 5 {
		t.Fatalf("%d incidents after a repeated fork, want 5", len(is))
	}

	// An unpinned node key and a replayed request never reach the witness.
	stranger, _ := node.GenerateKey()
	sid, _ := node.NewIdentity(stranger)
	if re, _, _ := submit(t, sid, bOnA, crosswitness.Submission{LogKey: a.signer.VerifierKey(), OldSize: size, Checkpoint: string(signed)}); re == nil || re.Code != "unknown_key" || re.Status != 401 {
		t.Fatalf("unpinned key: %+v", re)
	}
	body, _ := json.Marshal(crosswitness.Submission{LogKey: a.signer.VerifierKey(), OldSize: size, Checkpoint: string(signed)})
	req, _ := http.NewRequest(http.MethodPost, b.url+crosswitness.PathAddCheckpoint, strings.NewReader(string(body)))
	if err := a.srv.Node.SignRequest(req, body, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 401} {
		again := req.Clone(ctx)
		again.Body = io.NopCloser(strings.NewReader(string(body)))
		resp, err := http.DefaultClient.Do(again)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || i == 1 && !strings.Contains(string(out), `"replayed"`) {
			t.Fatalf("send %d of one signed request: %d %s, want %d", i+1, resp.StatusCode, out, want)
		}
	}

	// B keeps witnessing A honestly.
	size2, signed2 := a.grow(t, 2)
	if err := a.srv.Witnessing.Submit(ctx, bOnA, size2, signed2); err != nil {
		t.Fatalf("honest submission after the lies: %v", err)
	}
	if v, _ := b.st.PeerLogs().PeerLog(ctx, aOnB.KeyID); v.Size != size2 {
		t.Fatalf("B's view = %d, want %d", v.Size, size2)
	}
}

// TestSubmitRetriesWithBackoff: a peer that is down is asked again after
// a wait, and once it answers, its cosignature covers everything.
func TestSubmitRetriesWithBackoff(t *testing.T) {
	ctx := context.Background()
	a, b := startNode(t), startNode(t)
	// B is pinned at an address where nothing answers yet.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	if _, err := node.NewPeers(a.st).Add(ctx, a.srv.Node, "bravo", deadURL, b.srv.Node.Public.VKey); err != nil {
		t.Fatal(err)
	}
	pin(t, b, a, "alpha")
	w := a.srv.Witnessing
	w.MinBackoff = 300 * time.Millisecond
	a.grow(t, 2)
	w.SubmitAll(ctx)
	// Re-pin B where it answers; within the backoff it is not asked.
	if err := node.NewPeers(a.st).Remove(ctx, "bravo"); err != nil {
		t.Fatal(err)
	}
	pin(t, a, b, "bravo")
	size, _ := a.grow(t, 1)
	w.SubmitAll(ctx)
	if lines, _ := a.st.Ledger().Cosignatures(ctx, size); len(lines) != 0 {
		t.Fatalf("submitted during the backoff: %q", lines)
	}
	time.Sleep(400 * time.Millisecond)
	w.SubmitAll(ctx)
	if lines, _ := a.st.Ledger().Cosignatures(ctx, size); len(lines) != 1 {
		t.Fatalf("after the backoff checkpoint %d carries %q, want B's cosignature", size, lines)
	}
}

func encode(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

// TestCheckPeers: three nodes witness each other; alpha's check of bravo
// passes with both witnesses' cosignatures, and a receipt bravo's log does
// not hold is caught and named.
func TestCheckPeers(t *testing.T) {
	ctx := context.Background()
	a, b, c := startNode(t), startNode(t), startNode(t)
	nodes := map[string]*testNode{"alpha": a, "bravo": b, "charlie": c}
	peers := map[string]map[string]store.Peer{}
	for on, n := range nodes {
		peers[on] = map[string]store.Peer{}
		for name, o := range nodes {
			if name != on {
				peers[on][name] = pin(t, n, o, name)
			}
		}
	}
	for name, n := range nodes {
		size, signed := n.grow(t, 2)
		for other, p := range peers[name] {
			if err := n.srv.Witnessing.Submit(ctx, p, size, signed); err != nil {
				t.Fatalf("%s submits to %s: %v", name, other, err)
			}
		}
	}
	reps, err := a.srv.Witnessing.CheckPeers(ctx, "bravo")
	if err != nil || len(reps) != 1 {
		t.Fatal(reps, err)
	}
	r := reps[0]
	if !r.OK() || !r.Settled() || len(r.CosignedBy) != 2 || r.Size != 2 {
		t.Fatalf("check of bravo: %+v", r)
	}
	// bravo's entry 1 is real; a receipt for entry 0 with another hash is not.
	es, _ := b.st.Ledger().ReadEntries(ctx, 0, 2)
	if err := a.srv.Witnessing.AddReceipt(ctx, "bravo", 1, encode(tlog.RecordHash(es[1]))); err != nil {
		t.Fatal(err)
	}
	if reps, _ := a.srv.Witnessing.CheckPeers(ctx, "bravo"); !reps[0].OK() {
		t.Fatalf("a true receipt fails: %+v", reps[0].Checks)
	}
	if err := a.srv.Witnessing.AddReceipt(ctx, "bravo", 0, encode(tlog.Hash{9})); err != nil {
		t.Fatal(err)
	}
	reps, _ = a.srv.Witnessing.CheckPeers(ctx, "bravo")
	if r := reps[0]; r.OK() || len(r.Incidents) != 1 || r.Incidents[0].Kind != crosswitness.KindReceipt || r.Incidents[0].Peer != "bravo" {
		t.Fatalf("a receipt bravo's log does not hold: %+v", r)
	}
	if _, err := a.srv.Witnessing.CheckPeers(ctx, "delta"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unknown peer: %v", err)
	}
}

// TestCheckPeersLearnsWitnessesFirst: a check must not call a peer's
// checkpoint settled while a witness of it goes uncounted because this
// node has not yet learned that witness's key. bravo has never heard from
// charlie when it checks alpha, whose checkpoint only bravo has cosigned:
// the report is not settled until charlie has cosigned too. (Checked in
// the order the peers are listed, alpha came before charlie and was
// called settled with one cosignature of two: crosswitness.txtar failed.)
func TestCheckPeersLearnsWitnessesFirst(t *testing.T) {
	ctx := context.Background()
	a, b, c := startNode(t), startNode(t), startNode(t)
	bravoOnA := pin(t, a, b, "bravo")
	charlieOnA := pin(t, a, c, "charlie")
	pin(t, b, a, "alpha")
	pin(t, b, c, "charlie")
	pin(t, c, a, "alpha")
	pin(t, c, b, "bravo")
	c.grow(t, 1) // charlie has a log, but has submitted nothing to bravo
	size, signed := a.grow(t, 2)
	if err := a.srv.Witnessing.Submit(ctx, bravoOnA, size, signed); err != nil {
		t.Fatal(err)
	}
	reps, err := b.srv.Witnessing.CheckPeers(ctx, "alpha")
	if err != nil || len(reps) != 1 {
		t.Fatal(reps, err)
	}
	if r := reps[0]; !r.OK() || r.Settled() || !slices.Equal(r.CosignedBy, []string{"this node"}) {
		t.Fatalf("alpha's checkpoint lacks charlie's cosignature, yet the report is %+v (settled %v)", r, r.Settled())
	}
	if err := a.srv.Witnessing.Submit(ctx, charlieOnA, size, signed); err != nil {
		t.Fatal(err)
	}
	reps, _ = b.srv.Witnessing.CheckPeers(ctx, "alpha")
	if r := reps[0]; !r.OK() || !r.Settled() || !slices.Equal(r.CosignedBy, []string{"this node", "charlie"}) {
		t.Fatalf("with both cosignatures: %+v", r)
	}
}

// TestCheckPeersEmptyLogSettled: a peer whose log is still empty (an
// escrow node that holds nothing yet) is settled once its checks pass, so
// verify --peers --settle does not wait out its whole time for
// cosignatures no node will ever ask for.
func TestCheckPeersEmptyLogSettled(t *testing.T) {
	ctx := context.Background()
	a, c := startNode(t), startNode(t)
	pin(t, a, c, "charlie")
	pin(t, c, a, "alpha")
	c.grow(t, 0) // charlie signs its empty log, as its checkpointer does at start
	reps, err := a.srv.Witnessing.CheckPeers(ctx, "charlie")
	if err != nil || len(reps) != 1 {
		t.Fatal(reps, err)
	}
	if r := reps[0]; !r.OK() || r.Size != 0 || !r.Settled() {
		t.Fatalf("charlie's empty log: %+v (settled %v)", r, r.Settled())
	}
	c.grow(t, 1)
	reps, _ = a.srv.Witnessing.CheckPeers(ctx, "charlie")
	if r := reps[0]; !r.OK() || r.Size != 1 || r.Settled() {
		t.Fatalf("charlie's log of one entry that alpha has not cosigned: %+v (settled %v)", r, r.Settled())
	}
}

// FuzzAddCheckpoint: whatever body a pinned peer sends, the witness
// answers with a refusal code of its own (never a 500), and cosigns only a
// checkpoint signed by the ledger key it keeps for that peer.
func FuzzAddCheckpoint(f *testing.F) {
	ctx := context.Background()
	a, b := startNodeF(f), startNodeF(f)
	aOnB, err := node.NewPeers(b.st).Add(ctx, b.srv.Node, "alpha", a.url, a.srv.Node.Public.VKey)
	if err != nil {
		f.Fatal(err)
	}
	honest, _ := a.signer.Sign(ledger.Checkpoint{Origin: a.signer.Origin(), Size: 0, Hash: tlog.Hash{}})
	for _, sub := range []crosswitness.Submission{
		{LogKey: a.signer.VerifierKey(), Checkpoint: string(honest)},
		{LogKey: a.signer.VerifierKey(), OldSize: 3, Proof: []string{"AAAA"}, Checkpoint: "x\n1\n\n"},
		{LogKey: "not a key", Checkpoint: string(honest)},
	} {
		body, _ := json.Marshal(sub)
		f.Add(body)
	}
	f.Add([]byte(`{"log_key":1}`))
	f.Add([]byte(`{}{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		status, answer := b.srv.Witnessing.AddCheckpoint(ctx, aOnB, body)
		switch v := answer.(type) {
		case crosswitness.Refusal:
			if status < 400 || status >= 500 || v.Error == "" || v.Error == "internal" {
				t.Fatalf("refusal %d %+v for %q", status, v, body)
			}
		case crosswitness.Cosigned:
			var sub crosswitness.Submission
			if json.Unmarshal(body, &sub) != nil {
				t.Fatalf("cosigned a body that is not a submission: %q", body)
			}
			// The first ledger key a pinned peer names is kept (its node key
			// vouches for it); every cosigned checkpoint is signed by it.
			view, err := b.st.PeerLogs().PeerLog(ctx, aOnB.KeyID)
			if err != nil || view.LogKey != sub.LogKey || v.Size != view.Size {
				t.Fatalf("cosigned %q, view %+v, %v", body, view, err)
			}
			if _, err := ledger.VerifyCheckpoint([]byte(sub.Checkpoint), view.LogKey); err != nil || status != 200 {
				t.Fatalf("cosigned a checkpoint the kept ledger key did not sign: %q", body)
			}
		default:
			t.Fatalf("answer %T", answer)
		}
	})
}
