package crash

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/wire"
)

const mediaTAXII = wire.MediaTAXII

// partyState is one party of the run and what its writers remember across
// lives (only its own goroutines touch the slices, one life at a time).
type partyState struct {
	name, id, token string
	keys            *agreement.PrivateKeys
	own             string // its contribution collection under the agreement
	// opObjects are the operator-collection objects it created, with the
	// highest version it sent; agObjects the agreement objects it had
	// acknowledged, for duplicates.
	opObjects []opObject
	agAcked   []sent
}

type opObject struct {
	n       int64
	sent    int   // highest version sent
	acked   []int // versions acknowledged
	counter int
}

// life is one run of the server between a start and a kill.
type life struct {
	h   *harness
	s   *server
	hc  *http.Client
	mu  sync.Mutex
	err []error
	// suspendEpoch is odd while a suspension may hold; an agreement write
	// refused with 403 is expected only if the epoch was odd when it was
	// sent or changed while it was in flight.
	suspendEpoch atomic.Int32
}

func (h *harness) newLife(s *server) *life {
	return &life{h: h, s: s, hc: &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, DisableCompression: true},
		Timeout:   60 * time.Second,
	}}
}

func (l *life) close() { l.hc.CloseIdleConnections() }

// fail records a violation seen while the server was supposed to be up.
func (l *life) fail(err error) {
	l.mu.Lock()
	l.err = append(l.err, err)
	l.mu.Unlock()
}

// unexpected reports whether an error during the workload is a finding:
// anything before the kill is.
func (l *life) unexpected(what string, err error) bool {
	if l.s.killed.Load() {
		return false
	}
	l.fail(fmt.Errorf("%w: %s failed while the server was up: %v", ErrInvariant, what, err))
	return true
}

func (l *life) client(p *partyState) *client.Client {
	c, err := client.New(l.s.base+"/taxii2/", client.WithToken(p.token), client.WithHTTPClient(l.hc))
	if err != nil {
		panic(err) // the base URL is ours
	}
	return c
}

// send makes one HTTP request as p and returns status, headers and body.
func (l *life) send(ctx context.Context, p *partyState, method, path, ctype string, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, l.s.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Accept", ctype)
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}

// ledgerIndex reads the X-Parley-Ledger-Index receipt.
func ledgerIndex(hd http.Header) (int64, error) {
	v := hd.Get(wire.LedgerIndexHeader)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q is not a ledger index", wire.LedgerIndexHeader, v)
	}
	return n, nil
}

// errRefused marks a write the server answered with 403.
var errRefused = errors.New("refused")

// post sends one TAXII envelope and, when the server acknowledges it
// (202 + status), checks the status names exactly the objects it must
// have kept and refused, and records it in the model. Unanswered posts go
// to the model as in flight.
func (l *life) post(ctx context.Context, p *partyState, root, coll string, objs []sent) error {
	var body bytes.Buffer
	body.WriteString(`{"objects":[`)
	for i, o := range objs {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(o.raw)
	}
	body.WriteString(`]}`)
	t0 := time.Now()
	code, hd, b, err := l.send(ctx, p, http.MethodPost, "/taxii2/"+root+"/collections/"+coll+"/objects/", mediaTAXII, body.Bytes())
	m := l.h.m
	if err != nil {
		m.inflight(coll, objs)
		return err
	}
	if code == http.StatusForbidden {
		return fmt.Errorf("POST %s: %w: %.300s", coll, errRefused, b)
	}
	if code != http.StatusAccepted {
		return fmt.Errorf("POST %s: HTTP %d: %.300s", coll, code, b)
	}
	var st client.Status
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("POST %s: status resource: %v", coll, err)
	}
	idx, err := ledgerIndex(hd)
	if err != nil {
		return fmt.Errorf("POST %s: %v", coll, err)
	}
	// The status must keep every valid object and refuse every other one.
	want := map[string]int{}
	refused := 0
	for _, o := range objs {
		if o.valid {
			want[o.id+" "+o.version]++
		} else {
			refused++
		}
	}
	for _, s := range st.Successes {
		want[s.ID+" "+s.Version]--
	}
	for k, n := range want {
		if n != 0 {
			return fmt.Errorf("%w: POST to %s: status %s lists %s %d times too few (successes %+v)", ErrInvariant, coll, st.ID, k, n, st.Successes)
		}
	}
	if st.FailureCount != refused || len(st.Failures) != refused || st.TotalCount != len(objs) || st.Status != "complete" {
		return fmt.Errorf("%w: POST to %s: status %s is %s with %d of %d failures, total %d of %d: %+v",
			ErrInvariant, coll, st.ID, st.Status, st.FailureCount, refused, st.TotalCount, len(objs), st.Failures)
	}
	m.ack(coll, objs, ackedStatus{party: p, root: root, id: st.ID, total: st.TotalCount, successes: st.SuccessCount},
		receipt{index: idx, kind: ledger.KindFeedBatch, subject: "status--" + st.ID}, time.Since(t0))
	return nil
}

// sign posts an agreement signature by p and records it when acknowledged.
func (l *life) sign(ctx context.Context, p *partyState, action agreement.Action) error {
	ag := l.h.ag
	st := agreement.StatementFor(ag.doc, action, p.id, p.keys.KeyID(), time.Now())
	st.EffectiveAt, st.Reason = st.SignedAt, "crash harness"
	sig, err := agreement.Sign(p.keys, st)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"signature": sig})
	code, hd, b, err := l.send(ctx, p, http.MethodPost, "/api/v1/agreements/"+url.PathEscape(ag.id)+"/signatures", "application/json", body)
	if err != nil {
		l.h.m.mu.Lock()
		l.h.m.unacked++
		l.h.m.mu.Unlock()
		return err
	}
	if code < 200 || code > 299 {
		return fmt.Errorf("%s: HTTP %d: %.300s", action, code, b)
	}
	idx, err := ledgerIndex(hd)
	if err != nil {
		return fmt.Errorf("%s: %v", action, err)
	}
	kind := ledger.KindAgreementSigned
	if action == agreement.ActionSuspend {
		kind = ledger.KindAgreementSuspended
	}
	l.h.m.ackSig(ackedSig{party: p.id, action: action, signedAt: sig.SignedAt}, receipt{index: idx, kind: kind, subject: ag.id})
	return nil
}

// run drives the workload until ctx ends (the kill).
func (l *life) run(ctx context.Context, seed uint64, suspend bool) {
	h := l.h
	var wg sync.WaitGroup
	for i, p := range []*partyState{h.alpha, h.bravo} {
		rng := rand.New(rand.NewPCG(seed, uint64(10+i)))
		wg.Go(func() { l.agreementWriter(ctx, rng, p) })
		rng2 := rand.New(rand.NewPCG(seed, uint64(20+i)))
		wg.Go(func() { l.operatorWriter(ctx, rng2, p) })
	}
	rng := rand.New(rand.NewPCG(seed, 30))
	wg.Go(func() { l.reader(ctx, rng) })
	if suspend {
		rng := rand.New(rand.NewPCG(seed, 40))
		wg.Go(func() { l.suspender(ctx, rng) })
	} else {
		// Handovers need the agreement in force at every step, so they
		// run in the lives without a suspension.
		rng := rand.New(rand.NewPCG(seed, 50))
		wg.Go(func() { l.handoverWorker(ctx, rng) })
	}
	wg.Wait()
}

// agreementWriter contributes under the agreement: new indicators mostly,
// with duplicates, out-of-scope objects (a tool, a TLP:RED indicator) and
// invalid objects mixed in.
func (l *life) agreementWriter(ctx context.Context, rng *rand.Rand, p *partyState) {
	h := l.h
	for ctx.Err() == nil {
		var objs []sent
		for range 1 + rng.IntN(8) {
			switch r := rng.IntN(100); {
			case r < 15 && len(p.agAcked) > 0:
				objs = append(objs, p.agAcked[rng.IntN(len(p.agAcked))])
			case r < 20:
				o := tool(h.next.Add(1))
				o.valid = false
				objs = append(objs, o)
			case r < 25:
				o := indicator(h.next.Add(1), 0, agreement.MarkingID(agreement.TLPRed))
				o.valid = false
				objs = append(objs, o)
			case r < 30:
				objs = append(objs, invalid(h.next.Add(1), rng.IntN(3)))
			default:
				objs = append(objs, indicator(h.next.Add(1), 0, ""))
			}
		}
		epoch := l.suspendEpoch.Load()
		err := l.post(ctx, p, h.ag.id, p.own, objs)
		switch {
		case err == nil:
			for _, o := range objs {
				if o.valid {
					p.agAcked = append(p.agAcked, o)
				}
			}
		case errors.Is(err, errRefused) && (epoch%2 == 1 || l.suspendEpoch.Load() != epoch):
			// Suspended: nothing may be contributed; try again shortly.
			sleep(ctx, time.Duration(rng.IntN(20))*time.Millisecond)
		case errors.Is(err, ErrInvariant):
			l.fail(err)
			return
		default:
			l.unexpected("POST to "+p.name+"'s agreement collection", err)
			return
		}
	}
}

// operatorWriter writes to the shared operator collection: new objects,
// new versions of acknowledged ones, exact duplicates and invalid objects.
func (l *life) operatorWriter(ctx context.Context, rng *rand.Rand, p *partyState) {
	h := l.h
	for ctx.Err() == nil {
		var objs []sent
		type pick struct{ i, v int }
		var picks []pick
		used := map[int]bool{}
		for range 1 + rng.IntN(10) {
			r := rng.IntN(100)
			switch {
			case r < 25 && len(p.opObjects) > 0:
				i := rng.IntN(len(p.opObjects))
				if used[i] {
					continue
				}
				used[i] = true
				o := &p.opObjects[i]
				o.sent++
				objs = append(objs, indicator(o.n, o.sent, ""))
				picks = append(picks, pick{i, o.sent})
			case r < 40 && len(p.opObjects) > 0:
				i := rng.IntN(len(p.opObjects))
				if o := p.opObjects[i]; len(o.acked) > 0 && !used[i] {
					used[i] = true
					v := o.acked[rng.IntN(len(o.acked))]
					objs = append(objs, indicator(o.n, v, ""))
					picks = append(picks, pick{i, v})
				}
			case r < 45:
				objs = append(objs, tool(h.next.Add(1))) // valid here: no agreement scope
			case r < 52:
				objs = append(objs, invalid(h.next.Add(1), rng.IntN(3)))
			default:
				n := h.next.Add(1)
				p.opObjects = append(p.opObjects, opObject{n: n})
				i := len(p.opObjects) - 1
				used[i] = true
				objs = append(objs, indicator(n, 0, ""))
				picks = append(picks, pick{i, 0})
			}
		}
		if len(objs) == 0 {
			continue
		}
		err := l.post(ctx, p, operatorRoot, h.opColl, objs)
		switch {
		case err == nil:
			for _, pk := range picks {
				p.opObjects[pk.i].acked = append(p.opObjects[pk.i].acked, pk.v)
			}
		case errors.Is(err, ErrInvariant):
			l.fail(err)
			return
		default:
			l.unexpected("POST to the operator collection as "+p.name, err)
			return
		}
	}
}

const operatorRoot = "shared"

// reader pages through collections with cursors, reads balances and
// fetches checkpoints, keeping every checkpoint it is handed.
func (l *life) reader(ctx context.Context, rng *rand.Rand) {
	h := l.h
	parties := []*partyState{h.alpha, h.bravo}
	remote := audit.NewRemote(l.s.base, h.alpha.token, l.hc.Transport)
	for ctx.Err() == nil {
		p := parties[rng.IntN(2)]
		c := l.client(p)
		var err error
		what := ""
		switch r := rng.IntN(100); {
		case r < 30:
			what = "paging the operator collection"
			err = l.page(ctx, c, operatorRoot, h.opColl, 1+rng.IntN(40), 1+rng.IntN(4))
		case r < 55:
			other := h.bravo
			if p == h.bravo {
				other = h.alpha
			}
			what = "paging " + other.name + "'s released objects as " + p.name
			err = l.page(ctx, c, h.ag.id, other.own, 1+rng.IntN(20), 1+rng.IntN(4))
		case r < 75:
			what = "reading " + p.name + "'s balance"
			var b *client.Balance
			if b, err = c.Balance(ctx, h.ag.id); err == nil {
				err = h.checkBalanceShape(b)
			}
		default:
			what = "fetching the checkpoint"
			var signed []byte
			if signed, err = remote.Checkpoint(ctx); err == nil {
				err = h.keepCheckpoint(signed)
			}
		}
		if err != nil {
			if errors.Is(err, ErrInvariant) {
				l.fail(err)
				return
			}
			l.unexpected(what, err)
			return
		}
		h.m.read()
		sleep(ctx, time.Duration(rng.IntN(5))*time.Millisecond)
	}
}

// page reads up to pages pages of limit objects, following next, and
// checks no object version comes twice.
func (l *life) page(ctx context.Context, c *client.Client, root, coll string, limit, pages int) error {
	seen := map[string]bool{}
	f := client.Filter{Limit: limit}
	for range pages {
		env, err := c.GetObjects(ctx, root, coll, f)
		if err != nil {
			return err
		}
		if len(env.Objects) > limit {
			return fmt.Errorf("%w: a page of limit %d held %d objects", ErrInvariant, limit, len(env.Objects))
		}
		for _, o := range env.Objects {
			id, v, err := objectHead(o)
			if err != nil {
				return err
			}
			if seen[id+" "+v] {
				return fmt.Errorf("%w: paging %s with limit %d returned %s %s twice", ErrInvariant, coll, limit, id, v)
			}
			seen[id+" "+v] = true
		}
		if !env.More || env.Next == "" {
			return nil
		}
		f.Next = env.Next
	}
	return nil
}

// suspender has alpha suspend the agreement and lift the suspension a
// little later.
func (l *life) suspender(ctx context.Context, rng *rand.Rand) {
	sleep(ctx, time.Duration(rng.IntN(300))*time.Millisecond)
	if ctx.Err() != nil {
		return
	}
	l.suspendEpoch.Add(1)
	if err := l.sign(ctx, l.h.alpha, agreement.ActionSuspend); err != nil {
		l.unexpected("suspending the agreement", err)
		return
	}
	sleep(ctx, time.Duration(rng.IntN(300))*time.Millisecond)
	if ctx.Err() != nil {
		return
	}
	if err := l.sign(ctx, l.h.alpha, agreement.ActionResume); err != nil {
		l.unexpected("resuming the agreement", err)
		return
	}
	l.suspendEpoch.Add(1)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
