package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// TestDemoNodes runs `parley demo --nodes` through the CLI's entry point:
// three `parley serve` child processes of this binary (the test binary
// runs the parley command when called as "parley", see TestMain), the
// exchange across them, and the nodes stopped at the end. It checks what
// the walkthrough printed, including the exact allowances and the gradual
// release's turns, and then each node's database as the demo left it.
func TestDemoNodes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"demo", "--nodes", "--data", dir}, &out, &errb); code != 0 {
		t.Fatalf("parley demo --nodes: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	text := out.String()
	t.Log(text)
	for _, want := range []string{
		"1. Three sovereign nodes",
		"2. Each node's operator pinned the two others",
		"proposed an agreement naming charlie as escrow node",
		"is active on alpha and active on bravo",
		"the request is acknowledged on both nodes",
		"charlie released both in one transaction",
		"Police-Suedmark decrypted 30 objects, CERT-Nordland 20; charlie never held a key to either. The request is fulfilled.",
		"round-2 messages went through charlie, which released both at once",
		"CERT-Nordland learned that Police-Suedmark holds 3 of them: ",
		"Police-Suedmark learned 3 of its own.",
		"10. Gradual release, with no escrow node at all.",
		"under it alpha refused a handover in one step (409 not_across_nodes)",
		"Each split its bundle into 3 STIX bundles (CERT-Nordland 12 objects, Police-Suedmark 9),",
		"very objects deposited: CERT-Nordland opened 9 of Police-Suedmark's, Police-Suedmark 12 of CERT-Nordland's.\n",
		"The three nodes stopped.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the walkthrough lacks %q", want)
		}
	}

	// Allowances, each party on its own node after each step: what it
	// gave, its allowance (grace 20 + 1 × credits), what it reads and what
	// its node holds of the other party's.
	re := regexp.MustCompile(`on (alpha|bravo), (\S+) gave (\d+) new, allowance 20 \+ 1 × (\d+) = (\d+), reads (\d+) of the (\d+) `)
	type standing struct{ gave, credits, allow, reads, held int }
	var steps []map[string]standing
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
		if m[1] == "bravo" {
			steps = append(steps, map[string]standing{})
		}
		if len(steps) == 0 {
			t.Fatalf("alpha's line came before bravo's: %s", m[0])
		}
		steps[len(steps)-1][m[1]] = standing{n(3), n(4), n(5), n(6), n(7)}
	}
	if len(steps) != 3 {
		t.Fatalf("want the allowances after 3 steps, got %d:\n%s", len(steps), text)
	}
	for i, st := range steps {
		a, b := st["alpha"], st["bravo"]
		if a.allow != 20+a.credits || b.allow != 20+b.credits || a.credits != a.gave || b.credits != b.gave {
			t.Errorf("step %d: allowance is not grace + credits: alpha %+v, bravo %+v", i, a, b)
		}
		// B reads on bravo what alpha released by its own count of B's
		// credits; A reads on alpha all B gave (alpha's count of bravo's
		// release), as far as bravo's count of A's credits allows.
		if b.reads != min(a.gave, 20+b.gave) || b.held != b.reads {
			t.Errorf("step %d: bravo: %+v; want reads = held = min(%d, 20 + %d)", i, b, a.gave, b.gave)
		}
		if a.reads != min(b.gave, 20+b.reads) || a.held != a.reads {
			t.Errorf("step %d: alpha: %+v; want reads = held = min(%d, 20 + %d)", i, a, b.gave, b.reads)
		}
	}
	if b := steps[0]["bravo"]; b.gave != 0 || b.reads != 20 {
		t.Errorf("before giving, B should read exactly the grace of 20: %+v", b)
	}
	if a := steps[0]["alpha"]; a.reads != 0 {
		t.Errorf("before B gave, A should read nothing: %+v", a)
	}
	if !(steps[1]["bravo"].gave > 0 && steps[2]["bravo"].gave > steps[1]["bravo"].gave) {
		t.Errorf("B's contributions did not grow: %+v", steps)
	}
	if n := strings.Count(text, ": all checks passed"); n != 3 {
		t.Errorf("verify --peers passed on %d nodes, want 3", n)
	}
	if n := len(regexp.MustCompile(`(?m)^    \S+ on (alpha|bravo): checkpoint of \d+ entries, \d+ of them its own; all \d+ checks passed$`).FindAllString(text, -1)); n != 2 {
		t.Errorf("%d parties verified their node's ledger, want 2", n)
	}

	// The nodes stopped: nothing answers at their addresses any more.
	urls := regexp.MustCompile(`(?m)^   (?:alpha|bravo|charlie) +http://(\S+) `).FindAllStringSubmatch(text, -1)
	if len(urls) != 3 {
		t.Fatalf("want three node URLs in the walkthrough, got %v", urls)
	}
	for _, u := range urls {
		if c, err := net.DialTimeout("tcp", u[1], time.Second); err == nil {
			c.Close()
			t.Errorf("a node still listens on %s after the demo", u[1])
		}
	}

	// Each node's own database, as the demo left it.
	agID := regexp.MustCompile(`Agreement (agreement--\S+) is active`).FindStringSubmatch(text)
	if agID == nil {
		t.Fatal("no agreement id in the walkthrough")
	}
	if !regexp.MustCompile(`(?m)^8\. Police-Suedmark filed a request on bravo`).MatchString(text) {
		t.Error("the walkthrough does not say Police-Suedmark filed a request on bravo")
	}
	ctx := context.Background()
	open := func(name string) store.Store {
		st, err := sqlite.Open(ctx, filepath.Join(dir, name), sqlite.Options{})
		if err != nil {
			t.Fatalf("%s's data directory: %v", name, err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	nodes := map[string]store.Store{"alpha": open("alpha"), "bravo": open("bravo"), "charlie": open("charlie")}
	var docs [][]byte
	var handover string // the request's answer, as alpha and bravo hold it
	for _, name := range []string{"alpha", "bravo", "charlie"} {
		st := nodes[name]
		peers, err := st.Nodes().Peers(ctx)
		if err != nil || len(peers) != 2 {
			t.Errorf("%s pins %d peers (%v), want the two others", name, len(peers), err)
		}
		for _, p := range peers {
			if p.Name == name {
				t.Errorf("%s pinned itself", name)
			}
		}
		reqs, err := st.Requests().ListByAgreement(ctx, agID[1])
		if name == "charlie" && len(reqs) != 0 || name != "charlie" && (err != nil || len(reqs) != 1 || reqs[0].State != "fulfilled" || reqs[0].HandoverID == "") {
			t.Errorf("%s holds requests %+v (%v); want the one request fulfilled by the handover on alpha and bravo, none on charlie", name, reqs, err)
			continue
		}
		if name != "charlie" {
			handover = reqs[0].HandoverID
		} else if hc, err := st.HeldCases().Get(ctx, handover); err != nil || hc.State != "released" {
			t.Errorf("the escrow node holds case %s as %+v (%v), want it released", handover, hc, err)
		}
		_, err = st.Agreements().Get(ctx, agID[1])
		if name == "charlie" {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the escrow node holds the agreement (%v); it holds no party's data yet", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s does not hold the agreement: %v", name, err)
			continue
		}
		vs, err := st.Agreements().Versions(ctx, agID[1])
		if err != nil || len(vs) != 1 {
			t.Fatalf("%s: versions %v %v", name, vs, err)
		}
		docs = append(docs, vs[0].Document)
		sigs, err := st.Agreements().Signatures(ctx, agID[1])
		if err != nil || len(sigs) != 2 {
			t.Errorf("%s holds %d signatures (%v), want the proposal and the countersignature", name, len(sigs), err)
		}
		size, _, err := st.Ledger().LatestCheckpoint(ctx)
		if err != nil || size == 0 {
			t.Errorf("%s's ledger: checkpoint size %d, %v", name, size, err)
		}
		// This node cosigned both other nodes' logs: the other party's
		// node's, and the escrow node's, which records the case.
		views, err := st.PeerLogs().PeerLogs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cosigned := 0
		for _, v := range views {
			if v.Size > 0 {
				cosigned++
			}
		}
		if cosigned != 2 {
			t.Errorf("%s cosigned %d peers' logs, want both: %+v", name, cosigned, views)
		}
	}
	if len(docs) == 2 && !bytes.Equal(docs[0], docs[1]) {
		t.Errorf("alpha and bravo hold different document bytes:\n%s\n%s", docs[0], docs[1])
	}
	checkGradualAct(t, text, nodes)
}

// checkGradualAct checks the demo's gradual release between alpha and
// bravo: the verdicts alternated, each taken when neither side held more
// than one chunk more than the other, and, in each node's own database,
// the case is released with every chunk of both sides handed over and
// confirmed, each side's chunks held by the other's node with the hashes
// its depositor's node committed, and nothing of it on the escrow node.
func checkGradualAct(t *testing.T, text string, nodes map[string]store.Store) {
	t.Helper()
	steps := regexp.MustCompile(`(?m)^    (\S+)'s chunk (\d) of 3 reached (alpha|bravo): (\S+) holds (\d) of the other's, \S+ (\d)\.`).FindAllStringSubmatch(text, -1)
	if len(steps) != 6 {
		t.Fatalf("want 6 verdicts in the gradual act, got %d", len(steps))
	}
	for i, m := range steps {
		k, held, back := int(m[2][0]-'0'), int(m[5][0]-'0'), int(m[6][0]-'0')
		recipient, node := "Police-Suedmark", "bravo"
		wantBack := k - 1 // B judges A's chunk k before its own chunk k left
		if i%2 == 1 {
			recipient, node, wantBack = "CERT-Nordland", "alpha", k
		}
		if k != i/2+1 || m[4] != recipient || m[3] != node || held != k || back != wantBack {
			t.Errorf("verdict %d: %q; want %s on %s judging chunk %d, holding %d against %d", i+1, m[0], recipient, node, i/2+1, i/2+1, wantBack)
		}
		if held-back > 1 || back-held > 1 {
			t.Errorf("verdict %d: more than one chunk apart: %q", i+1, m[0])
		}
	}
	id := regexp.MustCompile(`gradual case\s+(handover--\S+) on alpha`).FindStringSubmatch(text)
	if id == nil {
		t.Fatal("no gradual case id in the walkthrough")
	}
	ctx := context.Background()
	if _, err := nodes["charlie"].HeldCases().Get(ctx, id[1]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the escrow node holds the gradual case (%v); no third node is told", err)
	}
	sums := map[string][32]byte{} // depositor/index → hash, as its own node holds it
	partyOf := map[string]string{}
	for _, name := range []string{"alpha", "bravo"} {
		h, err := nodes[name].Handovers().Get(ctx, id[1])
		if err != nil || h.State != store.HandoverReleased {
			t.Fatalf("on %s the gradual case is %+v (%v), want released", name, h, err)
		}
		// The proposer is alpha's party.
		partyOf[name] = h.Proposer
		if name == "bravo" {
			partyOf[name] = h.Counterpart
		}
	}
	for _, name := range []string{"alpha", "bravo"} {
		cs, err := nodes[name].Handovers().Chunks(ctx, id[1])
		if err != nil || len(cs) != 6 {
			t.Fatalf("on %s: %d chunks (%v), want 3 a side", name, len(cs), err)
		}
		for _, c := range cs {
			if c.MovedAt.IsZero() || c.ConfirmedAt.IsZero() {
				t.Errorf("on %s chunk %d of %s is not handed over and confirmed: moved %v, confirmed %v", name, c.Index, c.Depositor, c.MovedAt, c.ConfirmedAt)
			}
			if c.Depositor != partyOf[name] {
				if !c.Held {
					t.Errorf("%s does not hold chunk %d of the other side's", name, c.Index)
				}
				continue
			}
			sums[fmt.Sprint(c.Depositor, "/", c.Index)] = c.SHA256
		}
	}
	for _, name := range []string{"alpha", "bravo"} {
		cs, _ := nodes[name].Handovers().Chunks(ctx, id[1])
		for _, c := range cs {
			if c.Depositor != partyOf[name] && sums[fmt.Sprint(c.Depositor, "/", c.Index)] != c.SHA256 {
				t.Errorf("%s holds chunk %d of the other side's with another hash than its depositor's node", name, c.Index)
			}
		}
	}
	if len(sums) != 6 {
		t.Errorf("the depositors' nodes hold %d of their own chunks' hashes, want 6", len(sums))
	}
}
