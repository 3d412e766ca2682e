package audit

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/ledger"
)

// world is the test's own model of what the server lets happen under one
// agreement between A and B, written from the rules of packages agreement,
// escrow and request (not from the replay). It proposes the legal next
// entries in a state, and illegal ones, each with why it is illegal.
type world struct {
	r *rand.Rand
	// agreement
	proposed, everSigned, terminated bool
	latest                           int
	proposer                         map[int]string
	signed                           map[int]bool
	suspended                        map[string]bool
	contributed, released            map[string]int
	// handovers and requests
	hs []*mh
	qs []*mq
	n  int
}

type mh struct {
	id, proposer, counterpart, request string
	state                              string
	held                               map[string]bool
}

type mq struct {
	id, requester, responder, state string
	pending                         string // the open handover named as its answer
}

type move struct {
	why     string // for an illegal move: what makes it illegal
	entries []ledger.Entry
}

func newWorld(seed uint64) *world {
	return &world{r: rand.New(rand.NewPCG(seed, 15)), proposer: map[int]string{}, signed: map[int]bool{},
		suspended: map[string]bool{}, contributed: map[string]int{}, released: map[string]int{}}
}

var ab = []string{"A", "B"}

func other(p string) string {
	if p == "A" {
		return "B"
	}
	return "A"
}

func (w *world) id(prefix string) string { w.n++; return prefix + "--" + strconv.Itoa(w.n) }

func sig(action, actor string, version int) ledger.Entry {
	kind := map[string]ledger.Kind{"propose": ledger.KindAgreementProposed, "countersign": ledger.KindAgreementSigned, "amend": ledger.KindAgreementAmended,
		"suspend": ledger.KindAgreementSuspended, "resume": ledger.KindAgreementSigned, "terminate": ledger.KindAgreementTerminated}[action]
	return ledger.Entry{Kind: kind, Actor: actor, Agreement: "ag1", Subject: "ag1", Time: t0, Parties: ab,
		Attrs: map[string]string{"action": action, "version": strconv.Itoa(version)}}
}

func hEntry(h *mh, kind ledger.Kind, actor, step string) ledger.Entry {
	e := ledger.Entry{Kind: kind, Actor: actor, Agreement: "ag1", Subject: h.id, Time: t0, Parties: []string{h.proposer, h.counterpart}, Attrs: map[string]string{}}
	if step != "" {
		e.Attrs["step"] = step
	}
	if kind == ledger.KindHandoverProposed && step == "" && h.request != "" {
		e.Attrs["request"] = h.request
	}
	return e
}

func qEntry(q *mq, kind ledger.Kind, actor string, attrs map[string]string) ledger.Entry {
	return ledger.Entry{Kind: kind, Actor: actor, Agreement: "ag1", Subject: q.id, Time: t0, Parties: []string{q.requester, q.responder}, Attrs: attrs}
}

func reportSig(actor, from, to string) ledger.Entry {
	return ledger.Entry{Kind: ledger.KindReportSigned, Actor: actor, Agreement: "ag1", Subject: "report-signature--" + actor, Time: t0, Parties: ab,
		Attrs:   map[string]string{"from": from, "to": to, "key_id": "0123456789abcdef"},
		Digests: map[string]string{"report": "sha256:" + strings.Repeat("ab", 32), "statement": "sha256:" + strings.Repeat("cd", 32)}}
}

func (w *world) inForce() bool {
	return w.everSigned && !w.terminated && !w.suspended["A"] && !w.suspended["B"]
}

func (h *mh) open() bool { return h.state == "proposed" || h.state == "accepted" }
func (q *mq) open() bool { return q.state == "filed" || q.state == "acknowledged" }

// answerOf returns the request pending on h, if any.
func (w *world) answerOf(h *mh) *mq {
	for _, q := range w.qs {
		if q.open() && q.pending == h.id {
			return q
		}
	}
	return nil
}

// reopen is what the server appends when h, the pending answer of a
// request, fails (package request, HandoverFailed).
func (w *world) reopen(h *mh, cause, by string) []ledger.Entry {
	q := w.answerOf(h)
	if q == nil || (cause == "withdrawn" && by != q.responder) {
		return nil
	}
	q.pending = ""
	return []ledger.Entry{qEntry(q, ledger.KindRequestReopened, by, map[string]string{"handover": h.id, "cause": cause})}
}

// legal returns the moves the server could make next, each as a function
// that applies it to the model and returns its entries.
func (w *world) legal() []func() move {
	var ms []func() move
	add := func(f func() []ledger.Entry) { ms = append(ms, func() move { return move{entries: f()} }) }
	p := ab[w.r.IntN(2)]
	if !w.proposed {
		add(func() []ledger.Entry {
			w.proposed, w.latest, w.proposer[1] = true, 1, "A"
			return []ledger.Entry{sig("propose", "A", 1)}
		})
		return ms
	}
	if !w.terminated {
		if !w.signed[w.latest] {
			add(func() []ledger.Entry {
				signer := other(w.proposer[w.latest])
				w.signed[w.latest], w.everSigned = true, true
				return []ledger.Entry{sig("countersign", signer, w.latest)}
			})
		}
		add(func() []ledger.Entry {
			w.latest++
			w.proposer[w.latest] = p
			return []ledger.Entry{sig("amend", p, w.latest)}
		})
		if w.r.IntN(8) == 0 {
			add(func() []ledger.Entry { w.terminated = true; return []ledger.Entry{sig("terminate", p, w.latest)} })
		}
	}
	if w.everSigned && !w.suspended[p] && w.r.IntN(3) == 0 {
		add(func() []ledger.Entry { w.suspended[p] = true; return []ledger.Entry{sig("suspend", p, w.latest)} })
	}
	if w.suspended[p] {
		add(func() []ledger.Entry { delete(w.suspended, p); return []ledger.Entry{sig("resume", p, w.latest)} })
	}
	if w.everSigned && w.r.IntN(4) == 0 { // a joint report, signed by either side, even after termination
		add(func() []ledger.Entry {
			return []ledger.Entry{reportSig(p, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")}
		})
	}
	if w.inForce() {
		add(func() []ledger.Entry {
			n := w.r.IntN(4)
			w.contributed[p] += n
			out := []ledger.Entry{batch(p, n)}
			if to := w.released[other(p)] + w.r.IntN(n+1); to > w.released[other(p)] && to <= w.contributed[p] {
				out = append(out, release(other(p), p, w.released[other(p)]+1, to))
				w.released[other(p)] = to
			}
			return out
		})
		add(func() []ledger.Entry {
			h := &mh{id: w.id("handover"), proposer: p, counterpart: other(p), state: "proposed", held: map[string]bool{}}
			w.hs = append(w.hs, h)
			return []ledger.Entry{hEntry(h, ledger.KindHandoverProposed, p, "")}
		})
		add(func() []ledger.Entry {
			q := &mq{id: w.id("request"), requester: p, responder: other(p), state: "filed"}
			w.qs = append(w.qs, q)
			return []ledger.Entry{qEntry(q, ledger.KindRequestFiled, p, nil)}
		})
		for _, q := range w.qs {
			if q.open() {
				add(func() []ledger.Entry {
					h := &mh{id: w.id("handover"), proposer: q.responder, counterpart: q.requester, request: q.id, state: "proposed", held: map[string]bool{}}
					w.hs = append(w.hs, h)
					return []ledger.Entry{hEntry(h, ledger.KindHandoverProposed, q.responder, "")}
				})
			}
		}
	}
	for _, h := range w.hs {
		switch h.state {
		case "proposed":
			add(func() []ledger.Entry {
				h.state = "accepted"
				return []ledger.Entry{hEntry(h, ledger.KindHandoverProposed, h.counterpart, "accepted")}
			})
			add(func() []ledger.Entry {
				h.state = "declined"
				return append([]ledger.Entry{hEntry(h, ledger.KindHandoverWithdrawn, h.counterpart, "declined")}, w.reopen(h, "declined", h.counterpart)...)
			})
		case "accepted":
			for _, s := range []string{h.proposer, h.counterpart} {
				if h.held[s] {
					add(func() []ledger.Entry {
						delete(h.held, s)
						return append([]ledger.Entry{hEntry(h, ledger.KindHandoverWithdrawn, s, "deposit_withdrawn")}, w.reopen(h, "withdrawn", s)...)
					})
					continue
				}
				add(func() []ledger.Entry {
					h.held[s] = true
					out := []ledger.Entry{hEntry(h, ledger.KindHandoverDepositCommitted, s, "")}
					if len(h.held) == 2 { // the second deposit releases both in its transaction
						h.state = "released"
						out = append(out, hEntry(h, ledger.KindHandoverReleased, "", ""))
						if q := w.answerOf(h); q != nil { // and fulfils the request it answers
							q.state, q.pending = "fulfilled", ""
							out = append(out, qEntry(q, ledger.KindRequestFulfilled, q.responder, map[string]string{"handover": h.id, "step": "released"}))
						}
					}
					return out
				})
			}
		case "released":
			add(func() []ledger.Entry { return []ledger.Entry{hEntry(h, ledger.KindHandoverDisputed, h.proposer, "")} })
		}
		if h.open() && w.r.IntN(4) == 0 {
			add(func() []ledger.Entry {
				h.state, h.held = "expired", nil
				return append([]ledger.Entry{hEntry(h, ledger.KindHandoverExpired, "", "")}, w.reopen(h, "expired", "")...)
			})
		}
	}
	for _, q := range w.qs {
		if !q.open() {
			continue
		}
		if q.state == "filed" {
			add(func() []ledger.Entry {
				q.state = "acknowledged"
				return []ledger.Entry{qEntry(q, ledger.KindRequestAcknowledged, q.responder, map[string]string{"in_time": "true"})}
			})
		}
		if q.state == "filed" && q.pending == "" && w.r.IntN(4) == 0 {
			// Between nodes: the responder's node refused the filing.
			add(func() []ledger.Entry {
				q.state = "undelivered"
				return []ledger.Entry{qEntry(q, ledger.KindRequestUndelivered, "", map[string]string{"peer": "bravo", "code": "not_in_force"})}
			})
		}
		add(func() []ledger.Entry {
			q.state, q.pending = "refused", ""
			return []ledger.Entry{qEntry(q, ledger.KindRequestRefused, q.responder, map[string]string{"ground": "other"})}
		})
		add(func() []ledger.Entry {
			return []ledger.Entry{qEntry(q, ledger.KindRequestOverdue, "", map[string]string{"stage": "answer"})}
		})
		for _, h := range w.hs {
			switch {
			case h.request != q.id || q.pending != "":
			case h.state == "released": // naming a released handover fulfils at once
				add(func() []ledger.Entry {
					q.state = "fulfilled"
					return []ledger.Entry{qEntry(q, ledger.KindRequestFulfilled, q.responder, map[string]string{"handover": h.id})}
				})
			case h.open(): // naming an open one leaves the answer pending
				add(func() []ledger.Entry {
					q.pending = h.id
					return []ledger.Entry{qEntry(q, ledger.KindRequestAnswerPending, q.responder, map[string]string{"handover": h.id})}
				})
			}
		}
	}
	return ms
}

// illegal returns entries the server would never write in this state, each
// saying why.
func (w *world) illegal() []move {
	var ms []move
	add := func(why string, es ...ledger.Entry) { ms = append(ms, move{why: why, entries: es}) }
	if !w.everSigned {
		add("contribution before countersigning", batch("A", 1))
		if w.proposed {
			add("a report signed before countersigning", reportSig("A", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"))
		}
	} else {
		add("a report signed by an outsider", reportSig("C", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"))
		add("a report over an empty period", reportSig("B", "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"))
	}
	if w.proposed {
		add("a second proposal", sig("propose", "A", 1))
		if !w.terminated && !w.signed[w.latest] {
			add("countersigned by its proposer", sig("countersign", w.proposer[w.latest], w.latest))
		}
		if w.signed[w.latest] && !w.terminated {
			add("countersigned twice", sig("countersign", other(w.proposer[w.latest]), w.latest))
		}
		add("signed by an outsider", sig("suspend", "C", w.latest))
	}
	if w.terminated {
		add("amended after termination", sig("amend", "A", w.latest+1))
	}
	for _, p := range ab {
		if !w.suspended[p] && w.proposed {
			add("resumed without a suspension", sig("resume", p, w.latest))
		}
		if w.suspended[p] {
			add("suspended twice", sig("suspend", p, w.latest))
		}
	}
	for _, p := range ab {
		if w.everSigned {
			add("release beyond contributions", release(other(p), p, w.released[other(p)]+1, w.contributed[p]+1))
		}
	}
	for _, h := range w.hs {
		switch h.state {
		case "proposed":
			add("accepted by its proposer", hEntry(h, ledger.KindHandoverProposed, h.proposer, "accepted"))
			add("deposit before acceptance", hEntry(h, ledger.KindHandoverDepositCommitted, h.proposer, ""))
		case "accepted":
			add("declined after acceptance", hEntry(h, ledger.KindHandoverWithdrawn, h.counterpart, "declined"))
			add("deposit by an outsider", hEntry(h, ledger.KindHandoverDepositCommitted, "C", ""))
			if len(h.held) < 2 {
				add("released without both deposits", hEntry(h, ledger.KindHandoverReleased, "", ""))
			}
			for _, s := range []string{h.proposer, h.counterpart} {
				if h.held[s] {
					add("a second deposit without withdrawing the first", hEntry(h, ledger.KindHandoverDepositCommitted, s, ""))
				} else {
					add("a withdrawal without a deposit", hEntry(h, ledger.KindHandoverWithdrawn, s, "deposit_withdrawn"))
				}
			}
		default:
			add("a deposit into a closed case", hEntry(h, ledger.KindHandoverDepositCommitted, h.proposer, ""))
			add("a closed case released", hEntry(h, ledger.KindHandoverReleased, "", ""))
		}
		if h.state != "released" {
			add("a dispute of a case not released", hEntry(h, ledger.KindHandoverDisputed, h.proposer, ""))
		}
	}
	for _, q := range w.qs {
		add("answered by its requester", qEntry(q, ledger.KindRequestRefused, q.requester, nil))
		if !q.open() {
			add("answered twice", qEntry(q, ledger.KindRequestRefused, q.responder, nil))
			add("acknowledged after its answer", qEntry(q, ledger.KindRequestAcknowledged, q.responder, nil))
		}
		if q.state == "acknowledged" {
			add("acknowledged twice", qEntry(q, ledger.KindRequestAcknowledged, q.responder, nil))
		}
		undelivered := qEntry(q, ledger.KindRequestUndelivered, "", map[string]string{"peer": "bravo", "code": "not_in_force"})
		switch {
		case q.state != "filed":
			add("undelivered after the responder's node took a step on it", undelivered)
		case q.pending != "":
			add("undelivered with an answer pending", undelivered)
		default:
			add("undelivered in a party's name", qEntry(q, ledger.KindRequestUndelivered, q.requester, map[string]string{"peer": "bravo", "code": "not_in_force"}))
		}
		if q.open() {
			for _, h := range w.hs {
				if h.request != q.id {
					add("fulfilled by a handover that does not answer it", qEntry(q, ledger.KindRequestFulfilled, q.responder, map[string]string{"handover": h.id}))
					break
				}
			}
			for _, h := range w.hs {
				if h.request == q.id && h.state != "released" {
					add("fulfilled by a handover not released", qEntry(q, ledger.KindRequestFulfilled, q.responder, map[string]string{"handover": h.id}))
					break
				}
			}
			for _, h := range w.hs {
				if h.request == q.id && q.pending != h.id {
					add("reopened on a handover that is not its pending answer", qEntry(q, ledger.KindRequestReopened, q.responder, map[string]string{"handover": h.id, "cause": "withdrawn"}))
					break
				}
			}
			if q.pending != "" {
				add("reopened while its answer is still open", qEntry(q, ledger.KindRequestReopened, q.requester, map[string]string{"handover": q.pending, "cause": "declined"}))
			}
		}
	}
	return ms
}

// history generates a random legal history of n steps and, when bad is
// set, puts one illegal entry at a random point of it; it returns the
// entries and the index of the illegal one (-1 for none).
func (w *world) history(n int, bad bool) ([]ledger.Entry, int, string) {
	var out []ledger.Entry
	at := -1
	if bad {
		at = w.r.IntN(n)
	}
	for i := range n {
		if i == at {
			if ill := w.illegal(); len(ill) > 0 {
				m := ill[w.r.IntN(len(ill))]
				return append(out, m.entries...), len(out), m.why
			}
			at++ // nothing illegal to do yet; try at the next step
		}
		ms := w.legal()
		if len(ms) == 0 {
			continue // a random choice closed every path this time; draw again
		}
		out = append(out, ms[w.r.IntN(len(ms))]().entries...)
	}
	return out, -1, ""
}

func replayAll(es []ledger.Entry) error {
	r := NewReplay()
	for i, e := range es {
		if err := r.Apply(int64(i), nil, e); err != nil {
			return err
		}
	}
	return nil
}

// TestReplayRandomHistories: verify's replay accepts every history the
// server can write (random walks through every workflow: agreement
// lifecycle with amendments, suspensions and termination; feeds and
// releases; handovers with acceptance, decline, deposits withdrawn and made
// again, release, expiry and disputes; requests acknowledged, answered
// through handovers, refused and flagged overdue), and refuses each history
// with one step the server would refuse, naming that step's entry.
func TestReplayRandomHistories(t *testing.T) {
	kinds := map[string]int{}
	withdrawals := 0
	for seed := range uint64(400) {
		es, _, _ := newWorld(seed).history(60, false)
		if err := replayAll(es); err != nil {
			t.Fatalf("seed %d: a legal history refused: %v\n%s", seed, err, dump(es))
		}
		for i, e := range es {
			if e.Attrs["step"] == "deposit_withdrawn" && slices.ContainsFunc(es[i:], func(x ledger.Entry) bool {
				return x.Subject == e.Subject && x.Kind == ledger.KindHandoverReleased
			}) {
				withdrawals++
			}
		}
		es, at, why := newWorld(seed).history(60, true)
		if at < 0 {
			continue
		}
		kinds[why]++
		err := replayAll(es)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("entry %d:", at)) {
			t.Fatalf("seed %d: %s at entry %d: replay said %v\n%s", seed, why, at, err, dump(es))
		}
	}
	// The generator must reach what the issue found broken, and many
	// kinds of illegal step.
	t.Logf("%d released cases had a deposit withdrawn first; illegal steps: %v", withdrawals, kinds)
	if withdrawals == 0 {
		t.Error("no generated history withdrew a deposit and was then released")
	}
	if len(kinds) < 15 {
		t.Errorf("only %d kinds of illegal step generated: %v", len(kinds), kinds)
	}
}

func dump(es []ledger.Entry) string {
	var b strings.Builder
	for i, e := range es {
		fmt.Fprintf(&b, "%3d %-28s actor=%-2s subject=%-14s %v\n", i, e.Kind, e.Actor, e.Subject, e.Attrs)
	}
	return b.String()
}
