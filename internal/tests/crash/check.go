package crash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
)

// ledgerState is the harness's own copy of the log: every entry's head
// and leaf hash, the tlog stored hashes to recompute any root, and every
// checkpoint handed out.
type ledgerState struct {
	size     int64
	stored   []tlog.Hash
	leaves   []tlog.Hash
	heads    []entryHead
	handed   []ledger.Checkpoint // distinct sizes, ascending
	subjects map[string]int64    // feed.batch subject → index
	released map[string]int64    // recipient → "to" of its last feed.released
	// receipts and feed.batch entries checked so far
	receiptsChecked int
	batchesChecked  int64
}

type entryHead struct {
	kind                 ledger.Kind
	subject, actor, root string
	recipient            string
	to                   int64
}

func (s *ledgerState) init() {
	s.subjects, s.released = map[string]int64{}, map[string]int64{}
}

func (s *ledgerState) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(s.stored)) {
				return nil, fmt.Errorf("stored hash %d not held", x)
			}
			out[i] = s.stored[x]
		}
		return out, nil
	})
}

// add appends one entry to the local copy.
func (s *ledgerState) add(raw []byte) error {
	e, err := ledger.DecodeEntry(raw)
	if err != nil {
		return fmt.Errorf("%w: ledger entry %d: %v", ErrInvariant, s.size, err)
	}
	hs, err := tlog.StoredHashes(s.size, raw, s.hashReader())
	if err != nil {
		return err
	}
	s.stored = append(s.stored, hs...)
	s.leaves = append(s.leaves, tlog.RecordHash(raw))
	head := entryHead{kind: e.Kind, subject: e.Subject, actor: e.Actor, root: e.Attrs["api_root"]}
	switch e.Kind {
	case ledger.KindFeedBatch:
		if prev, ok := s.subjects[e.Subject]; ok {
			return fmt.Errorf("%w: feed.batch %s recorded twice (entries %d and %d)", ErrInvariant, e.Subject, prev, s.size)
		}
		s.subjects[e.Subject] = s.size
	case ledger.KindFeedReleased:
		head.recipient = e.Attrs["recipient"]
		if head.to, err = strconv.ParseInt(e.Attrs["to"], 10, 64); err != nil {
			return fmt.Errorf("%w: feed.released entry %d: to=%q", ErrInvariant, s.size, e.Attrs["to"])
		}
		from, _ := strconv.ParseInt(e.Attrs["from"], 10, 64)
		if last := s.released[head.recipient]; from != last+1 || head.to <= last {
			return fmt.Errorf("%w: feed.released entry %d releases %d..%d to %s after %d", ErrInvariant, s.size, from, head.to, head.recipient, last)
		}
		s.released[head.recipient] = head.to
	}
	s.heads = append(s.heads, head)
	s.size++
	return nil
}

// keepCheckpoint verifies a signed checkpoint handed out by the server and
// keeps it. A checkpoint smaller than one handed out before is a rollback;
// one of the same size with another root is a fork.
func (h *harness) keepCheckpoint(signed []byte) error {
	c, err := ledger.OpenCheckpoint(signed, h.nv)
	if err != nil {
		return fmt.Errorf("%w: the server handed out a checkpoint that does not verify: %v", ErrInvariant, err)
	}
	return h.keep(c)
}

func (h *harness) keep(c ledger.Checkpoint) error {
	h.cpMu.Lock()
	defer h.cpMu.Unlock()
	hd := h.led.handed
	i, found := slices.BinarySearchFunc(hd, c.Size, func(x ledger.Checkpoint, size int64) int { return int(x.Size - size) })
	if found {
		if hd[i].Hash != c.Hash {
			return fmt.Errorf("%w: two checkpoints of size %d with roots %s and %s (fork)", ErrInvariant, c.Size, hd[i].Hash, c.Hash)
		}
		return nil
	}
	h.led.handed = slices.Insert(hd, i, c)
	return nil
}

// check runs every invariant check on a freshly restarted, idle server;
// final rechecks everything ever acknowledged, not only what is new.
func (h *harness) check(ctx context.Context, s *server, final bool) error {
	l := h.newLife(s)
	defer l.close()
	for _, step := range []func() error{
		func() error { return h.checkLedger(ctx, l, final) },
		func() error { return h.checkObjects(ctx, l, final) },
		func() error { return h.checkStatuses(ctx, l, final) },
		func() error { return h.untilLedgerCovers(ctx, l, h.checkAllowances) },
		func() error { return h.untilLedgerCovers(ctx, l, h.checkHandovers) },
		func() error { return h.checkAgreement(ctx, l) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// untilLedgerCovers runs check until it no longer finds a release beyond
// the ledger read so far. The checkpoint read first may predate this
// life's first one, so the releases of writes in flight at the kill (feed
// releases and handover releases alike, acknowledged to nobody) may be
// beyond it; a newer checkpoint follows within moments.
func (h *harness) untilLedgerCovers(ctx context.Context, l *life, check func(context.Context, *life) error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check(ctx, l)
		if !errors.Is(err, errLedgerBehind) || time.Now().After(deadline) {
			return err
		}
		sleep(ctx, 20*time.Millisecond)
		if err := h.checkLedger(ctx, l, false); err != nil {
			return err
		}
	}
}

func (h *harness) remote(l *life) *audit.LedgerClient {
	return audit.NewRemote(l.s.base, h.alpha.token, l.hc.Transport)
}

// checkLedger fetches the latest checkpoint (waiting until it covers every
// receipt and every checkpoint handed out), extends the local copy of the
// log, recomputes every root, and checks receipts, consistency with every
// earlier checkpoint, and feed.batch entries against status resources.
func (h *harness) checkLedger(ctx context.Context, l *life, final bool) error {
	r := h.remote(l)
	h.m.mu.Lock()
	receipts := slices.Clone(h.m.receipts)
	h.m.mu.Unlock()
	need := int64(0)
	for _, rc := range receipts {
		need = max(need, rc.index+1)
	}
	h.cpMu.Lock()
	handed := slices.Clone(h.led.handed)
	h.cpMu.Unlock()
	if n := len(handed); n > 0 {
		need = max(need, handed[n-1].Size)
	}
	var c ledger.Checkpoint
	for deadline := time.Now().Add(20 * time.Second); ; {
		signed, err := r.Checkpoint(ctx)
		if err != nil {
			return fmt.Errorf("%w: fetching the checkpoint after a restart: %v", ErrInvariant, err)
		}
		if c, err = ledger.OpenCheckpoint(signed, h.nv); err != nil {
			return fmt.Errorf("%w: checkpoint after a restart: %v", ErrInvariant, err)
		}
		if c.Size >= need {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: 20 s after restart the checkpoint has size %d, below %d (an acknowledged receipt or a checkpoint handed out before)", ErrInvariant, c.Size, need)
		}
		sleep(ctx, 20*time.Millisecond)
	}
	// Extend the local copy of the log and recompute the new root.
	for h.led.size < c.Size {
		es, err := r.Entries(ctx, h.led.size, c.Size)
		if err != nil {
			return fmt.Errorf("%w: ledger entries from %d: %v", ErrInvariant, h.led.size, err)
		}
		for _, e := range es {
			if err := h.led.add(e); err != nil {
				return err
			}
		}
	}
	root, err := tlog.TreeHash(c.Size, h.led.hashReader())
	if err != nil {
		return err
	}
	if root != c.Hash {
		return fmt.Errorf("%w: the entries up to %d hash to %s, the checkpoint says %s", ErrInvariant, c.Size, root, c.Hash)
	}
	h.sum.Checks++
	// Every checkpoint handed out before: never larger, same root at the
	// same size, and consistent by the server's proof and by recomputation.
	for _, old := range handed {
		switch {
		case old.Size > c.Size:
			return fmt.Errorf("%w: checkpoint size %d after size %d was handed out (rollback)", ErrInvariant, c.Size, old.Size)
		case old.Size == c.Size:
			if old.Hash != c.Hash {
				return fmt.Errorf("%w: size %d has root %s, %s was handed out (fork)", ErrInvariant, c.Size, c.Hash, old.Hash)
			}
		default:
			p, err := r.ConsistencyProof(ctx, old.Size, c.Size)
			if err != nil {
				return fmt.Errorf("%w: consistency proof %d→%d: %v", ErrInvariant, old.Size, c.Size, err)
			}
			if err := ledger.CheckConsistency(p, old.Size, old.Hash, c.Size, c.Hash); err != nil {
				return fmt.Errorf("%w: checkpoint %d is not consistent with checkpoint %d handed out before: %v", ErrInvariant, c.Size, old.Size, err)
			}
		}
		if old.Size > 0 {
			was, err := tlog.TreeHash(old.Size, h.led.hashReader())
			if err != nil {
				return err
			}
			if was != old.Hash {
				return fmt.Errorf("%w: the log's first %d entries hash to %s, checkpoint handed out said %s", ErrInvariant, old.Size, was, old.Hash)
			}
		}
		h.sum.Checks++
	}
	if err := h.keep(c); err != nil {
		return err
	}
	// Receipts: the entry each acknowledged write was given is the right
	// one and is included in the checkpoint.
	from := h.led.receiptsChecked
	if final {
		from = 0
	}
	var g errgroup.Group
	g.SetLimit(4)
	for _, rc := range receipts[from:] {
		if rc.index >= c.Size {
			return fmt.Errorf("%w: receipt %d beyond checkpoint %d", ErrInvariant, rc.index, c.Size)
		}
		if e := h.led.heads[rc.index]; e.kind != rc.kind || e.subject != rc.subject {
			return fmt.Errorf("%w: receipt %d for %s %s names entry %s %s", ErrInvariant, rc.index, rc.kind, rc.subject, e.kind, e.subject)
		}
		leaf := h.led.leaves[rc.index]
		g.Go(func() error {
			p, err := r.InclusionProof(ctx, rc.index, c.Size)
			if err != nil {
				return fmt.Errorf("%w: inclusion proof of %d in %d: %v", ErrInvariant, rc.index, c.Size, err)
			}
			if err := ledger.CheckInclusion(p, c.Size, c.Hash, rc.index, leaf); err != nil {
				return fmt.Errorf("%w: receipt %d (%s %s): %v", ErrInvariant, rc.index, rc.kind, rc.subject, err)
			}
			return nil
		})
		h.sum.Checks++
	}
	if err := g.Wait(); err != nil {
		return err
	}
	h.led.receiptsChecked = len(receipts)
	// Every feed.batch entry has its status resource.
	start := h.led.batchesChecked
	if final {
		start = 0
	}
	for i := start; i < c.Size; i++ {
		e := h.led.heads[i]
		if e.kind != ledger.KindFeedBatch {
			continue
		}
		p := h.partyByID(e.actor)
		if p == nil {
			return fmt.Errorf("%w: feed.batch entry %d by unknown party %q", ErrInvariant, i, e.actor)
		}
		id, _ := strings.CutPrefix(e.subject, "status--")
		g.Go(func() error {
			if _, err := l.client(p).Status(ctx, e.root, id); err != nil {
				return fmt.Errorf("%w: feed.batch entry %d records %s in %s, whose status resource is gone: %v", ErrInvariant, i, e.subject, e.root, err)
			}
			return nil
		})
		h.sum.Checks++
	}
	if err := g.Wait(); err != nil {
		return err
	}
	h.led.batchesChecked = c.Size
	return nil
}

func (h *harness) partyByID(id string) *partyState {
	for _, p := range []*partyState{h.alpha, h.bravo} {
		if p.id == id {
			return p
		}
	}
	return nil
}

// collections lists what the harness writes to: root, collection and the
// party that reads it whole.
func (h *harness) collections() []struct {
	root, coll string
	reader     *partyState
} {
	return []struct {
		root, coll string
		reader     *partyState
	}{{operatorRoot, h.opColl, h.alpha}, {h.ag.id, h.alpha.own, h.alpha}, {h.ag.id, h.bravo.own, h.bravo}}
}

// checkObjects proves every acknowledged version is present and unchanged:
// those new since the last check (all of them when final) by GETs naming
// them in match[id] with match[version]=all, a sample of them also by GET
// of the object itself, and every collection by a sweep of its manifest,
// which also proves nothing is stored that was never sent as a valid
// object.
func (h *harness) checkObjects(ctx context.Context, l *life, final bool) error {
	h.m.mu.Lock()
	order := slices.Clone(h.m.order)
	h.m.mu.Unlock()
	from := h.versionsChecked
	if final {
		from = 0
	}
	type collID struct{ coll, id string }
	byID := map[collID][]objKey{}
	var ids []collID
	for _, k := range order[from:] {
		ci := collID{k.coll, k.id}
		if _, ok := byID[ci]; !ok {
			ids = append(ids, ci)
		}
		byID[ci] = append(byID[ci], k)
	}
	for _, cs := range h.collections() {
		c := l.client(cs.reader)
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			got, err := h.getByID(ctx, c, cs.root, cs.coll, batch, true)
			if err != nil {
				return err
			}
			for _, id := range batch {
				for _, k := range byID[collID{cs.coll, id}] {
					if err := h.same(k, got[k]); err != nil {
						return err
					}
				}
			}
			batch = batch[:0]
			return nil
		}
		var mine []string
		for _, ci := range ids {
			if ci.coll != cs.coll {
				continue
			}
			mine = append(mine, ci.id)
			batch = append(batch, ci.id)
			if len(batch) == 50 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		// A sample through the single-object endpoint: every request there
		// costs the server as much as a listing, so all of them would
		// dominate the run.
		h.rng.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
		mine = mine[:min(len(mine), singleGets)]
		got, err := h.getByID(ctx, c, cs.root, cs.coll, mine, false)
		if err != nil {
			return err
		}
		for _, id := range mine {
			for _, k := range byID[collID{cs.coll, id}] {
				if err := h.same(k, got[k]); err != nil {
					return err
				}
			}
		}
		if err := h.sweep(ctx, c, cs.root, cs.coll, order, final || (h.cfg.VerifyEvery > 0 && h.sum.Restarts%h.cfg.VerifyEvery == 0)); err != nil {
			return err
		}
	}
	h.versionsChecked = len(order)
	return nil
}

// singleGets is how many of the ids acknowledged in a life are also read
// one by one per collection after the restart.
const singleGets = 16

// getByID fetches every version of each id: one GET of the object with
// match[version]=all per id (four at a time), or, batched, one paged GET
// of the collection with match[id] listing them all.
func (h *harness) getByID(ctx context.Context, c *client.Client, root, coll string, ids []string, batched bool) (map[objKey][]byte, error) {
	got := map[objKey][]byte{}
	var mu sync.Mutex
	add := func(want string, o []byte) error {
		id, v, err := objectHead(o)
		if err != nil || (want != "" && id != want) || !slices.Contains(ids, id) {
			return fmt.Errorf("%w: GET by id %s in %s returned %.200s", ErrInvariant, want, coll, o)
		}
		mu.Lock()
		got[objKey{coll, id, v}] = o
		mu.Unlock()
		return nil
	}
	if batched {
		for o, err := range c.AllObjects(ctx, root, coll, client.Filter{IDs: ids, Versions: []string{"all"}, Limit: 1000}) {
			if err != nil {
				return nil, fmt.Errorf("%w: GET %s with match[id] of %d ids and match[version]=all: %v", ErrInvariant, coll, len(ids), err)
			}
			if err := add("", o); err != nil {
				return nil, err
			}
		}
		return got, nil
	}
	var g errgroup.Group
	g.SetLimit(4)
	for _, id := range ids {
		g.Go(func() error {
			f := client.Filter{Versions: []string{"all"}}
			for {
				env, err := c.GetObject(ctx, root, coll, id, f)
				if err != nil {
					return fmt.Errorf("%w: GET %s in %s with match[version]=all: %v", ErrInvariant, id, coll, err)
				}
				for _, o := range env.Objects {
					if err := add(id, o); err != nil {
						return err
					}
				}
				if !env.More || env.Next == "" {
					return nil
				}
				f.Next = env.Next
			}
		})
	}
	return got, g.Wait()
}

// sweep reads a whole collection with match[version]=all and checks
// that every acknowledged version is there and that nothing is there that
// was never sent as a valid object. It reads the manifest (ids and
// versions); with contents it reads the objects and compares each
// acknowledged one with what was sent.
func (h *harness) sweep(ctx context.Context, c *client.Client, root, coll string, order []objKey, contents bool) error {
	got := map[objKey][]byte{}
	add := func(id, v string, raw []byte) error {
		k := objKey{coll, id, v}
		if _, dup := got[k]; dup {
			return fmt.Errorf("%w: reading all of %s returned %s %s twice", ErrInvariant, coll, id, v)
		}
		got[k] = raw
		h.m.mu.Lock()
		_, acked := h.m.acked[k]
		maybe := h.m.maybe[k]
		h.m.mu.Unlock()
		if !acked && !maybe {
			return fmt.Errorf("%w: %s holds %s version %s, which was never sent as a valid object", ErrInvariant, coll, id, v)
		}
		return nil
	}
	f := client.Filter{Versions: []string{"all"}, Limit: 1000}
	if contents {
		for o, err := range c.AllObjects(ctx, root, coll, f) {
			if err != nil {
				return fmt.Errorf("%w: reading all of %s: %v", ErrInvariant, coll, err)
			}
			id, v, err := objectHead(o)
			if err != nil {
				return fmt.Errorf("%w: %s holds %.200s", ErrInvariant, coll, o)
			}
			if err := add(id, v, o); err != nil {
				return err
			}
		}
	} else {
		for {
			m, err := c.Manifest(ctx, root, coll, f)
			if err != nil {
				return fmt.Errorf("%w: reading the manifest of %s: %v", ErrInvariant, coll, err)
			}
			for _, r := range m.Objects {
				if err := add(r.ID, r.Version, []byte{}); err != nil {
					return err
				}
			}
			if !m.More || m.Next == "" {
				break
			}
			f.Next = m.Next
		}
	}
	for _, k := range order {
		if k.coll != coll {
			continue
		}
		raw, ok := got[k]
		if !ok {
			return fmt.Errorf("%w: acknowledged %s version %s in collection %s is lost", ErrInvariant, k.id, k.version, k.coll)
		}
		if contents {
			if err := h.same(k, raw); err != nil {
				return err
			}
		}
	}
	h.sum.Checks++
	return nil
}

// same checks an acknowledged version came back, meaning what was sent.
func (h *harness) same(k objKey, got []byte) error {
	h.m.mu.Lock()
	want := h.m.acked[k]
	h.m.mu.Unlock()
	if got == nil {
		return fmt.Errorf("%w: acknowledged %s version %s in collection %s is lost", ErrInvariant, k.id, k.version, k.coll)
	}
	if !bytes.Equal(want, got) && !sameJSON(want, got) {
		return fmt.Errorf("%w: %s version %s in %s changed:\nsent %s\ngot  %s", ErrInvariant, k.id, k.version, k.coll, want, got)
	}
	h.sum.Checks++
	return nil
}

// checkStatuses proves acknowledged status resources survive unchanged.
func (h *harness) checkStatuses(ctx context.Context, l *life, final bool) error {
	h.m.mu.Lock()
	sts := slices.Clone(h.m.statuses)
	h.m.mu.Unlock()
	from := h.statusesChecked
	if final {
		from = 0
	}
	for _, st := range sts[from:] {
		got, err := l.client(st.party).Status(ctx, st.root, st.id)
		if err != nil {
			return fmt.Errorf("%w: acknowledged status %s (%s): %v", ErrInvariant, st.id, st.party.name, err)
		}
		if got.TotalCount != st.total || got.SuccessCount != st.successes {
			return fmt.Errorf("%w: status %s now says %d of %d succeeded, acknowledged %d of %d", ErrInvariant, st.id, got.SuccessCount, got.TotalCount, st.successes, st.total)
		}
		h.sum.Checks++
	}
	h.statusesChecked = len(sts)
	return nil
}

// checkAllowances proves the give-to-get accounting is exact for both
// parties: released = min(grace + get/give × credits, contributed by the
// counterpart); the counterpart's collection shows exactly that prefix of
// the contributor's; the ledger's releases add up to it.
func (h *harness) checkAllowances(ctx context.Context, l *life) error {
	parties := []*partyState{h.alpha, h.bravo}
	own := map[string][]string{}
	for _, p := range parties {
		ids, err := h.readIDs(ctx, l.client(p), p.own)
		if err != nil {
			return err
		}
		own[p.id] = ids
	}
	for i, p := range parties {
		other := parties[1-i]
		b, err := l.client(p).Balance(ctx, h.ag.id)
		if err != nil {
			return fmt.Errorf("%w: %s's balance: %v", ErrInvariant, p.name, err)
		}
		allow := agreement.Allowance(h.ag.terms, b.Credits)
		switch {
		case b.Contributed != int64(len(own[p.id])):
			return fmt.Errorf("%w: %s contributed %d per its balance, its collection holds %d objects", ErrInvariant, p.name, b.Contributed, len(own[p.id]))
		case b.Credits != float64(b.Contributed):
			return fmt.Errorf("%w: %s has %g credits for %d indicators of weight 1", ErrInvariant, p.name, b.Credits, b.Contributed)
		case b.Available != int64(len(own[other.id])):
			return fmt.Errorf("%w: %s sees %d available, %s's collection holds %d", ErrInvariant, p.name, b.Available, other.name, len(own[other.id]))
		case b.Allowance != allow:
			return fmt.Errorf("%w: %s's allowance is %d, the terms give %d for %g credits", ErrInvariant, p.name, b.Allowance, allow, b.Credits)
		case b.Released != min(allow, b.Available):
			return fmt.Errorf("%w: %s has %d released, want min(allowance %d, available %d)", ErrInvariant, p.name, b.Released, allow, b.Available)
		}
		theirs, err := h.readIDs(ctx, l.client(p), other.own)
		if err != nil {
			return err
		}
		if !slices.Equal(theirs, own[other.id][:b.Released]) {
			return fmt.Errorf("%w: %s reads %d objects of %s's, not the first %d it contributed", ErrInvariant, p.name, len(theirs), other.name, b.Released)
		}
		if got := h.led.released[p.id]; got != b.Released {
			return fmt.Errorf("%w: %w: the ledger (size %d) released %d objects to %s, its balance says %d", ErrInvariant, errLedgerBehind, h.led.size, got, p.name, b.Released)
		}
		h.sum.Checks++
	}
	return nil
}

// errLedgerBehind marks a release the checkpoint read so far does not
// cover yet.
var errLedgerBehind = errors.New("the ledger's releases differ from the balance")

// readIDs reads a collection's object ids in the server's order, from
// its manifest.
func (h *harness) readIDs(ctx context.Context, c *client.Client, coll string) ([]string, error) {
	var ids []string
	f := client.Filter{Limit: 1000}
	for {
		m, err := c.Manifest(ctx, h.ag.id, coll, f)
		if err != nil {
			return nil, fmt.Errorf("%w: reading the manifest of %s: %v", ErrInvariant, coll, err)
		}
		for _, r := range m.Objects {
			ids = append(ids, r.ID)
		}
		if !m.More || m.Next == "" {
			return ids, nil
		}
		f.Next = m.Next
	}
}

// checkAgreement proves acknowledged signatures survive, lifts a
// suspension left by a kill, and checks the agreement is in force again.
func (h *harness) checkAgreement(ctx context.Context, l *life) error {
	c := l.client(h.alpha)
	ag, err := c.Agreement(ctx, h.ag.id)
	if err != nil {
		return fmt.Errorf("%w: reading the agreement: %v", ErrInvariant, err)
	}
	h.m.mu.Lock()
	sigs := slices.Clone(h.m.sigs)
	h.m.mu.Unlock()
	for _, s := range sigs[h.sigsChecked:] {
		if !slices.ContainsFunc(ag.Signatures, func(g agreement.Signature) bool {
			return g.PartyID == s.party && g.Action == s.action && g.SignedAt.Equal(s.signedAt)
		}) {
			return fmt.Errorf("%w: the acknowledged %s signature of %s is lost", ErrInvariant, s.action, s.signedAt.Format(time.RFC3339Nano))
		}
		h.sum.Checks++
	}
	h.sigsChecked = len(sigs)
	if slices.Contains(ag.SuspendedBy, h.alpha.id) {
		if err := l.sign(ctx, h.alpha, agreement.ActionResume); err != nil {
			return fmt.Errorf("%w: lifting a suspension left by a kill: %v", ErrInvariant, err)
		}
		if ag, err = c.Agreement(ctx, h.ag.id); err != nil {
			return fmt.Errorf("%w: reading the agreement: %v", ErrInvariant, err)
		}
	}
	if !ag.InForce {
		return fmt.Errorf("%w: the agreement is %s (suspended by %v) after a restart", ErrInvariant, ag.Phase, ag.SuspendedBy)
	}
	return nil
}

// checkBalanceShape checks what one balance answer must satisfy even while
// writes run: the allowance follows from the credits by the terms, and
// nothing beyond it or beyond what exists is released.
func (h *harness) checkBalanceShape(b *client.Balance) error {
	allow := agreement.Allowance(h.ag.terms, b.Credits)
	if b.Allowance != allow || b.Released > allow || b.Released > b.Available || b.Released < 0 {
		return fmt.Errorf("%w: balance %+v: allowance for %g credits is %d; released must be ≤ allowance and ≤ available", ErrInvariant, *b, b.Credits, allow)
	}
	return nil
}
