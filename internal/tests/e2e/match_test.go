package e2e

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/psi"
)

// matchWorld is two parties under an agreement in force with a match cap.
type matchWorld struct {
	s         *Server
	a, b      *Party
	agreement string
}

func newMatchWorld(t testing.TB, matchCap int) *matchWorld {
	t.Helper()
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	d := Document(t, a, b, func(m map[string]any) { m["match_cap"] = matchCap })
	Activate(t, a, b, d)
	return &matchWorld{s: s, a: a, b: b, agreement: d.ID}
}

func itemsOf(list []psi.Item) func() iter.Seq[psi.Item] {
	return func() iter.Seq[psi.Item] { return slices.Values(list) }
}

// emails returns n e-mail addresses prefix0@... prefix(n-1)@..., written
// with varying case and spacing so that normalization has to agree.
func emails(prefix string, lo, hi int) []psi.Item {
	var out []psi.Item
	for i := lo; i < hi; i++ {
		v := fmt.Sprintf("%s%d@example.org", prefix, i)
		if i%3 == 0 {
			v = fmt.Sprintf("  %s%d@EXAMPLE.org ", prefix, i)
		}
		out = append(out, psi.Item{Kind: psi.KindEmail, Value: v})
	}
	return out
}

// runBoth runs the protocol for both sides at once: a starts, b joins.
func (w *matchWorld) runBoth(t testing.TB, xs, ys []psi.Item) (ra, rb *client.MatchOutcome) {
	t.Helper()
	ra, rb, errA, errB := w.runBothWith(xs, ys, w.b.C, nil)
	if errA != nil || errB != nil {
		t.Fatalf("alpha: %v; bravo: %v", errA, errB)
	}
	return ra, rb
}

// runBothWith is runBoth with bravo's client and options (bopt, when set,
// adjusts them) given, and the errors returned.
func (w *matchWorld) runBothWith(xs, ys []psi.Item, bc *client.Client, bopt func(*client.MatchOptions)) (ra, rb *client.MatchOutcome, errA, errB error) {
	// Either side failing cancels the other, which would otherwise wait
	// for it until the deadline.
	c, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	started := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		ra, errA = w.a.C.RunMatch(c, client.MatchOptions{Agreement: w.agreement, Items: itemsOf(xs), Identity: w.a.Keys.Sealing,
			Poll: 20 * time.Millisecond, OnSession: func(m client.Match) { started <- m.ID }})
		if errA != nil {
			cancel()
		}
	})
	wg.Go(func() {
		select {
		case id := <-started:
			opt := client.MatchOptions{Session: id, Items: itemsOf(ys), Identity: w.b.Keys.Sealing, Poll: 20 * time.Millisecond}
			if bopt != nil {
				bopt(&opt)
			}
			rb, errB = bc.RunMatch(c, opt)
		case <-c.Done():
			errB = c.Err()
		}
		if errB != nil {
			cancel()
		}
	})
	wg.Wait()
	return ra, rb, errA, errB
}

// serverDown is a transport that, once bravo's round-2 deposit is
// accepted, refuses every connection (as a server killed and not yet
// started again does) for a while, or for good when back is zero.
type serverDown struct {
	back    time.Duration
	down    atomic.Bool
	refused atomic.Int64
}

func (d *serverDown) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.down.Load() {
		d.refused.Add(1)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/deposit") && resp.StatusCode < 300 {
		d.down.Store(true)
		if d.back > 0 {
			time.AfterFunc(d.back, func() { d.down.Store(false) })
		}
	}
	return resp, err
}

// Bravo's server stops answering right after bravo deposits its round 2:
// RunMatch waits through an outage shorter than MatchOptions.Outage (its
// session's secret is only in memory; giving up would lose the session)
// and both sides learn their matches; through a longer one it gives up
// with the refused connection.
func TestMatchWaitsThroughServerOutage(t *testing.T) {
	w := newMatchWorld(t, 1000)
	xs, ys := emails("x", 0, 30), slices.Concat(emails("x", 20, 40), emails("y", 0, 5))
	for _, tc := range []struct {
		name   string
		back   time.Duration
		outage time.Duration
	}{
		{"back within the outage", 1500 * time.Millisecond, time.Minute},
		{"down for longer", 0, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &serverDown{back: tc.back}
			bc, err := client.New(w.s.URL+"/taxii2/", client.WithToken(w.b.Token), client.WithHTTPClient(&http.Client{Transport: d}))
			if err != nil {
				t.Fatal(err)
			}
			var steps []string
			var mu sync.Mutex
			ra, rb, errA, errB := w.runBothWith(xs, ys, bc, func(o *client.MatchOptions) {
				o.Outage = tc.outage
				o.Progress = func(s string) { mu.Lock(); steps = append(steps, s); mu.Unlock() }
			})
			if d.refused.Load() == 0 || !slices.Contains(steps, "the server does not answer; waiting for it to come back") {
				t.Fatalf("bravo's client met no outage (%d refused; steps %q)", d.refused.Load(), steps)
			}
			if errA != nil {
				t.Fatalf("alpha: %v", errA)
			}
			if got, want := values(ra.Matched), values(emails("x", 20, 30)); !slices.Equal(got, want) {
				t.Errorf("alpha learned %q, want %q", got, want)
			}
			if tc.back == 0 {
				if !errors.Is(errB, syscall.ECONNREFUSED) {
					t.Fatalf("bravo, its server gone for good: %v, want the refused connection", errB)
				}
				return
			}
			if errB != nil {
				t.Fatalf("bravo: %v", errB)
			}
			if got, want := values(rb.Matched), values(emails("x", 20, 30)); !slices.Equal(got, want) {
				t.Errorf("bravo learned %q, want %q", got, want)
			}
		})
	}
}

func it(k psi.Kind, v string) psi.Item { return psi.Item{Kind: k, Value: v} }

func values(items []psi.Item) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.Value)
	}
	return out
}

// TestMatchKnownIntersections runs whole sessions through the real server
// and checks each side learns exactly its own items the other holds.
func TestMatchKnownIntersections(t *testing.T) {
	w := newMatchWorld(t, 1000)
	tests := []struct {
		name       string
		xs, ys     []psi.Item
		wantA      []psi.Item // alpha's items bravo holds
		wantB      []psi.Item
		sizeA      int64 // distinct elements alpha sends
		sizeB      int64
		duplicates bool
	}{
		{name: "empty", xs: emails("a", 0, 20), ys: emails("b", 0, 30), sizeA: 20, sizeB: 30},
		{name: "full", xs: emails("x", 0, 25), ys: emails("x", 0, 25), wantA: emails("x", 0, 25), wantB: emails("x", 0, 25), sizeA: 25, sizeB: 25},
		{name: "partial", xs: emails("x", 0, 40), ys: slices.Concat(emails("x", 30, 50), emails("y", 0, 10)),
			wantA: emails("x", 30, 40), wantB: emails("x", 30, 40), sizeA: 40, sizeB: 30},
		{name: "different sizes", xs: emails("x", 0, 5), ys: slices.Concat(emails("y", 0, 200), emails("x", 3, 4)),
			wantA: emails("x", 3, 4), wantB: emails("x", 3, 4), sizeA: 5, sizeB: 201},
		{name: "one side empty", xs: nil, ys: emails("x", 0, 10), sizeA: 0, sizeB: 10},
		{name: "mixed kinds", xs: []psi.Item{it(psi.KindIPv6, "2001:DB8::1"), it(psi.KindDomain, "Evil.Example"), it(psi.KindAlias, "Dread Pirate"), it(psi.KindSHA256, "AB"+fmt.Sprintf("%062x", 7))},
			ys:    []psi.Item{it(psi.KindIPv6, "2001:db8:0:0::1"), it(psi.KindAlias, "evil.example"), it(psi.KindSHA256, "ab"+fmt.Sprintf("%062x", 7))},
			wantA: []psi.Item{it(psi.KindIPv6, "2001:DB8::1"), it(psi.KindSHA256, "AB"+fmt.Sprintf("%062x", 7))},
			wantB: []psi.Item{it(psi.KindIPv6, "2001:db8:0:0::1"), it(psi.KindSHA256, "ab"+fmt.Sprintf("%062x", 7))}, sizeA: 4, sizeB: 3},
		{name: "duplicates in a list", xs: slices.Concat(emails("x", 0, 3), emails("x", 0, 3)), ys: emails("x", 2, 5),
			wantA: []psi.Item{emails("x", 2, 3)[0], emails("x", 2, 3)[0]}, wantB: emails("x", 2, 3), sizeA: 3, sizeB: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ra, rb := w.runBoth(t, tc.xs, tc.ys)
			if got, want := values(ra.Matched), values(tc.wantA); !slices.Equal(got, want) {
				t.Errorf("alpha learned %q, want %q", got, want)
			}
			if got, want := values(rb.Matched), values(tc.wantB); !slices.Equal(got, want) {
				t.Errorf("bravo learned %q, want %q", got, want)
			}
			// What the server learned: the two sizes, in the session and
			// the ledger receipts.
			m := ra.Session
			if m.State != "released" || m.InitiatorRound1 == nil || m.ResponderRound1 == nil ||
				m.InitiatorRound1.Count != tc.sizeA || m.ResponderRound1.Count != tc.sizeB {
				t.Errorf("session after the run: %+v (round 1: %+v / %+v)", m, m.InitiatorRound1, m.ResponderRound1)
			}
			if ra.OwnCount != tc.sizeA || ra.PeerCount != tc.sizeB || rb.OwnCount != tc.sizeB || rb.PeerCount != tc.sizeA {
				t.Errorf("counts: alpha %d/%d, bravo %d/%d", ra.OwnCount, ra.PeerCount, rb.OwnCount, rb.PeerCount)
			}
		})
	}
}
