package crash

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/wire"
)

// handover is a case the harness drives: alpha proposes, bravo accepts,
// both deposit a plain bundle of fresh indicators; the second deposit
// releases both. In about half the cases alpha first withdraws its deposit
// and deposits again (issue 15: the path after which verify failed). acked* record what the server acknowledged; the check
// after each restart syncs state from the server before the next life
// continues the case.
type handover struct {
	id                    string
	bundles               map[string][]byte   // depositor → bundle sent
	objects               map[string][]string // depositor → indicator ids in it
	ackedAccept           bool
	ackedDeposit          map[string]bool
	ackedRelease          bool
	ackedAbsent           map[string]bool // the last step acknowledged for this depositor withdrew its deposit
	withdrew              bool            // alpha's one withdrawal was sent
	state                 string          // as last read from the server
	deposited             map[string]bool // as last read from the server
	releaseChecked, ended bool
}

// handoverView is the API's handover resource, as the server and client
// spell it.
type handoverView = wire.Handover

// api sends a management API request as p and decodes a 2xx answer into
// out; it returns the receipt (-1 if none).
func (l *life) api(ctx context.Context, p *partyState, method, path, ctype string, body []byte, out any) (int64, error) {
	code, hd, b, err := l.send(ctx, p, method, path, ctype, body)
	if err != nil {
		return -1, err
	}
	if code < 200 || code > 299 {
		return -1, fmt.Errorf("%s %s: HTTP %d: %.300s", method, path, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return -1, fmt.Errorf("%s %s: %v", method, path, err)
		}
	}
	if hd.Get(wire.LedgerIndexHeader) == "" {
		return -1, nil
	}
	return ledgerIndex(hd)
}

// bundle builds a plain deposit of n fresh indicators.
func (h *harness) bundle(n int) ([]byte, []string) {
	var objs []json.RawMessage
	var ids []string
	for range n {
		o := indicator(h.next.Add(1), 0, "")
		objs = append(objs, o.raw)
		ids = append(ids, o.id)
	}
	b, _ := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--" + uuid(h.next.Add(1)), "objects": objs})
	return b, ids
}

// handoverWorker continues the open cases, then opens new ones, one step
// at a time, until the kill.
func (l *life) handoverWorker(ctx context.Context, rng *rand.Rand) {
	h := l.h
	for ctx.Err() == nil {
		var hv *handover
		for _, c := range h.handovers {
			if !c.ended {
				hv = c
				break
			}
		}
		if hv == nil {
			hv = &handover{bundles: map[string][]byte{}, objects: map[string][]string{}, ackedDeposit: map[string]bool{}, deposited: map[string]bool{},
				ackedAbsent: map[string]bool{}, withdrew: rng.IntN(2) == 0}
			for _, p := range []*partyState{h.alpha, h.bravo} {
				hv.bundles[p.id], hv.objects[p.id] = h.bundle(1 + rng.IntN(4))
			}
			body, _ := json.Marshal(map[string]any{"agreement": h.ag.id, "delivers": "crash dossier", "expects": "crash dossier"})
			var v handoverView
			rc, err := l.api(ctx, h.alpha, http.MethodPost, "/api/v1/handovers", "application/json", body, &v)
			if err != nil {
				l.unexpected("proposing a handover", err)
				return
			}
			hv.id, hv.state = v.ID, v.State
			h.handovers = append(h.handovers, hv)
			h.m.ackReceipt(receipt{index: rc, kind: ledger.KindHandoverProposed, subject: v.ID})
			continue
		}
		path := "/api/v1/handovers/" + url.PathEscape(hv.id)
		var err error
		var rc int64
		var kind ledger.Kind
		switch {
		case hv.state == "proposed":
			kind = ledger.KindHandoverProposed // an acceptance is recorded as the bilateral proposal
			if rc, err = l.api(ctx, h.bravo, http.MethodPost, path+"/accept", "application/json", []byte("{}"), nil); err == nil {
				hv.ackedAccept, hv.state = true, "accepted"
			}
		case hv.state == "accepted" && hv.deposited[h.alpha.id] && !hv.deposited[h.bravo.id] && !hv.withdrew:
			hv.withdrew = true
			kind = ledger.KindHandoverWithdrawn
			hv.ackedDeposit[h.alpha.id] = false // sent: from here it may be there or not until acknowledged
			if rc, err = l.api(ctx, h.alpha, http.MethodDelete, path+"/deposit", "", nil, nil); err == nil {
				hv.ackedDeposit[h.alpha.id], hv.deposited[h.alpha.id], hv.ackedAbsent[h.alpha.id] = false, false, true
			}
		case hv.state == "accepted":
			p := h.alpha
			if hv.deposited[p.id] {
				p = h.bravo
			}
			var out struct {
				Released bool `json:"released"`
			}
			kind = ledger.KindHandoverDepositCommitted
			hv.ackedAbsent[p.id] = false // sent: from here it may be there or not until acknowledged
			if rc, err = l.api(ctx, p, http.MethodPut, path+"/deposit", "application/json", hv.bundles[p.id], &out); err == nil {
				hv.ackedDeposit[p.id], hv.deposited[p.id] = true, true
				if out.Released {
					hv.ackedRelease, hv.state = true, "released"
				}
			}
		default:
			hv.ended = true
			continue
		}
		if err != nil {
			l.unexpected("a handover step of "+hv.id, err)
			return
		}
		if rc >= 0 && kind != "" {
			h.m.ackReceipt(receipt{index: rc, kind: kind, subject: hv.id})
		}
	}
}

// checkHandovers proves no handover is half-released: a released case has
// both deposits, each side can fetch the other's exactly as deposited, both
// bundles' objects are in the recipients' handover collections and the
// ledger holds its one handover.released entry; an unreleased case shows
// neither side the other's deposit, holds none of its objects in a
// handover collection and has no release entry. Acknowledged steps are
// never undone. It also syncs each case's state for the next life.
func (h *harness) checkHandovers(ctx context.Context, l *life) error {
	var list struct {
		Handovers []handoverView `json:"handovers"`
	}
	if _, err := l.api(ctx, h.alpha, http.MethodGet, "/api/v1/handovers?agreement="+url.QueryEscape(h.ag.id), "", nil, &list); err != nil {
		return fmt.Errorf("%w: listing handovers: %v", ErrInvariant, err)
	}
	released := map[string]int{}
	for i, e := range h.led.heads {
		if e.kind == ledger.KindHandoverReleased {
			released[e.subject]++
			if released[e.subject] > 1 {
				return fmt.Errorf("%w: handover %s released twice (entry %d)", ErrInvariant, e.subject, i)
			}
		}
	}
	known := map[string]*handover{}
	for _, c := range h.handovers {
		known[c.id] = c
	}
	for _, lv := range list.Handovers {
		c := known[lv.ID]
		var v handoverView
		if _, err := l.api(ctx, h.alpha, http.MethodGet, "/api/v1/handovers/"+url.PathEscape(lv.ID), "", nil, &v); err != nil {
			return fmt.Errorf("%w: reading handover %s: %v", ErrInvariant, lv.ID, err)
		}
		if c == nil {
			// Proposed by a request whose answer was lost to a kill: nobody
			// knows its id, so nothing else may have happened to it.
			if v.State != "proposed" || len(v.Deposits) > 0 {
				return fmt.Errorf("%w: handover %s that no one was told of is %s with %d deposits", ErrInvariant, v.ID, v.State, len(v.Deposits))
			}
			continue
		}
		c.state, c.deposited = v.State, map[string]bool{}
		for _, d := range v.Deposits {
			c.deposited[d.Party] = true
			sum := sha256.Sum256(c.bundles[d.Party])
			if want := hex.EncodeToString(sum[:]); !strings.HasSuffix(d.SHA256, want) {
				return fmt.Errorf("%w: handover %s: %s's deposit has SHA-256 %s, it deposited %s", ErrInvariant, c.id, d.Party, d.SHA256, want)
			}
		}
		switch {
		case c.ackedRelease && v.State != "released":
			return fmt.Errorf("%w: handover %s was acknowledged released and is now %s", ErrInvariant, c.id, v.State)
		case c.ackedAccept && v.State == "proposed":
			return fmt.Errorf("%w: handover %s was acknowledged accepted and is now proposed", ErrInvariant, c.id)
		}
		for p, ok := range c.ackedDeposit {
			if ok && !c.deposited[p] {
				return fmt.Errorf("%w: handover %s: the acknowledged deposit of %s is lost", ErrInvariant, c.id, p)
			}
		}
		for p, gone := range c.ackedAbsent {
			if gone && c.deposited[p] {
				return fmt.Errorf("%w: handover %s: %s's deposit is back after its withdrawal was acknowledged", ErrInvariant, c.id, p)
			}
		}
		rel := v.State == "released"
		if rel && released[c.id] == 0 && v.ReleaseLedgerIndex >= int64(len(h.led.heads)) {
			// Released by a deposit in flight at the kill: its entry is
			// beyond the checkpoint read so far (see check).
			return fmt.Errorf("%w: %w: handover %s released at entry %d, beyond the ledger read so far (size %d)", ErrInvariant, errLedgerBehind, c.id, v.ReleaseLedgerIndex, len(h.led.heads))
		}
		if rel != (released[c.id] == 1) {
			return fmt.Errorf("%w: handover %s is %s but the ledger has %d release entries for it", ErrInvariant, c.id, v.State, released[c.id])
		}
		if rel && (len(v.Deposits) != 2 || v.ReleaseLedgerIndex <= 0 || h.led.heads[v.ReleaseLedgerIndex].subject != c.id) {
			return fmt.Errorf("%w: handover %s released with %d deposits, release entry %d", ErrInvariant, c.id, len(v.Deposits), v.ReleaseLedgerIndex)
		}
		if c.releaseChecked {
			continue
		}
		// Each side: the other's deposit, and its objects in its handover
		// collection, both or neither.
		for _, pair := range [][2]*partyState{{h.alpha, h.bravo}, {h.bravo, h.alpha}} {
			me, them := pair[0], pair[1]
			code, _, body, err := l.send(ctx, me, http.MethodGet, "/api/v1/handovers/"+url.PathEscape(c.id)+"/deposit", "", nil)
			if err != nil {
				return fmt.Errorf("%w: fetching %s's deposit as %s: %v", ErrInvariant, them.name, me.name, err)
			}
			got, err := h.handedOver(ctx, l, me, c.objects[them.id])
			if err != nil {
				return err
			}
			switch {
			case rel && (code != http.StatusOK || !slices.Equal(body, c.bundles[them.id])):
				return fmt.Errorf("%w: handover %s is released but %s fetches %s's deposit as HTTP %d, %d bytes", ErrInvariant, c.id, me.name, them.name, code, len(body))
			case rel && got != len(c.objects[them.id]):
				return fmt.Errorf("%w: handover %s is released but %s's handover collection holds %d of the %d objects %s deposited", ErrInvariant, c.id, me.name, got, len(c.objects[them.id]), them.name)
			case !rel && code == http.StatusOK:
				return fmt.Errorf("%w: handover %s is %s but %s can fetch %s's deposit", ErrInvariant, c.id, v.State, me.name, them.name)
			case !rel && got != 0:
				return fmt.Errorf("%w: handover %s is %s but %s already holds %d of %s's objects", ErrInvariant, c.id, v.State, me.name, got, them.name)
			}
		}
		c.releaseChecked = rel
		h.sum.Checks++
	}
	return nil
}

// handedOver counts how many of ids p reads in its handover collections
// under the agreement.
func (h *harness) handedOver(ctx context.Context, l *life, p *partyState, ids []string) (int, error) {
	c := l.client(p)
	cs, err := c.Collections(ctx, h.ag.id)
	if err != nil {
		return 0, fmt.Errorf("%w: %s's collections: %v", ErrInvariant, p.name, err)
	}
	n := 0
	for _, coll := range cs {
		if coll.ID == h.alpha.own || coll.ID == h.bravo.own {
			continue
		}
		env, err := c.GetObjects(ctx, h.ag.id, coll.ID, client.Filter{IDs: ids, Limit: 1000})
		if err != nil {
			return 0, fmt.Errorf("%w: reading %s's handover collection: %v", ErrInvariant, p.name, err)
		}
		n += len(env.Objects)
	}
	return n, nil
}
