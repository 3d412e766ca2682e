package crosswitness

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/store"
)

// Check is one named check of a peer's log.
type Check struct {
	Name   string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// PeerReport is what CheckPeers found of one peer.
type PeerReport struct {
	Peer       string     `json:"peer"`
	URL        string     `json:"url"`
	NodeKey    string     `json:"node_key"`
	LogKey     string     `json:"log_key,omitempty"`
	Size       int64      `json:"size"`
	Root       string     `json:"root,omitempty"`
	ViewSize   int64      `json:"view_size"` // the size this node last cosigned
	CosignedBy []string   `json:"cosigned_by,omitempty"`
	Checks     []Check    `json:"checks"`
	Incidents  []Incident `json:"incidents,omitempty"`
	witnesses  int        // known witnesses of the peer
}

// Settled reports whether every witness this node knows of the peer
// (itself, and each other peer whose witness key it learned) cosigned the
// checkpoint the peer serves. An empty log is settled once its checks
// pass: there is nothing to cosign, and no node submits size 0.
func (r *PeerReport) Settled() bool {
	return r.OK() && (r.Size == 0 || r.witnesses == len(r.CosignedBy))
}

// OK reports whether every check passed.
func (r *PeerReport) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

func (r *PeerReport) pass(name, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Name: name, OK: true, Detail: fmt.Sprintf(format, args...)})
}

func (r *PeerReport) fail(name string, err error) {
	r.Checks = append(r.Checks, Check{Name: name, Detail: err.Error()})
}

// caught records an incident, notes it in the report and fails check name.
func (s *Service) caught(ctx context.Context, r *PeerReport, name string, in Incident) {
	s.record(ctx, in)
	r.Incidents = append(r.Incidents, in)
	r.fail(name, in)
}

// MarshalJSON writes an incident with its evidence as text.
func (i Incident) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"peer": i.Peer, "peer_key": i.PeerKey, "incident": i.Kind, "detail": i.Detail,
		"ours": string(i.Ours), "theirs": string(i.Theirs)})
}

// call sends a signed request to p and decodes its answer into out.
func (s *Service) call(ctx context.Context, p store.Peer, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	_, raw, err := s.client(p).Do(ctx, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("peer %q: the answer to %s is not JSON: %w", p.Name, path, err)
	}
	return nil
}

func (s *Service) proof(ctx context.Context, p store.Peer, path string, req ProofRequest) ([]tlog.Hash, error) {
	var pr Proof
	if err := s.call(ctx, p, path, req, &pr); err != nil {
		return nil, err
	}
	return decodeHashes(pr.Hashes)
}

// CheckPeers checks the logs of the pinned peers named (all when none is):
// see the package comment. Incidents found are recorded; a peer that
// cannot be reached fails its check without one.
func (s *Service) CheckPeers(ctx context.Context, names ...string) ([]*PeerReport, error) {
	peers, err := s.st.Nodes().Peers(ctx)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for n := range want {
		if !slices.ContainsFunc(peers, func(p store.Peer) bool { return p.Name == n }) {
			return nil, fmt.Errorf("no such peer %q (see parley peer list): %w", n, store.ErrNotFound)
		}
	}
	// Fetch every peer's checkpoint first, learning the keys it names,
	// before checking any: the check of one peer counts the cosignatures
	// of the others, and a witness whose key this node has not learned yet
	// would go uncounted, so a report could look settled without it.
	curs := make([]Current, len(peers))
	errs := make([]error, len(peers))
	for i, p := range peers {
		if errs[i] = s.call(ctx, p, PathCheckpoint, struct{}{}, &curs[i]); errs[i] == nil && curs[i].LogKey != "" {
			// A key that fails to learn is reported by checkPeer.
			_, _ = s.learn(ctx, p, curs[i].LogKey, curs[i].WitnessKey)
		}
	}
	var out []*PeerReport
	for i, p := range peers {
		if len(want) == 0 || want[p.Name] {
			out = append(out, s.checkPeer(ctx, p, peers, curs[i], errs[i]))
		}
	}
	return out, nil
}

func (s *Service) checkPeer(ctx context.Context, p store.Peer, all []store.Peer, cur Current, fetchErr error) *PeerReport {
	r := &PeerReport{Peer: p.Name, URL: p.URL, NodeKey: p.Key}
	if fetchErr != nil {
		r.fail("checkpoint", fmt.Errorf("fetching its checkpoint: %w", fetchErr))
		return r
	}
	v, err := s.learn(ctx, p, cur.LogKey, cur.WitnessKey)
	var in Incident
	if errors.As(err, &in) {
		r.Incidents = append(r.Incidents, in)
		r.fail("keys", in)
		return r
	} else if err != nil {
		r.fail("keys", err)
		return r
	}
	r.LogKey, r.ViewSize = v.LogKey, v.Size
	theirs := []byte(cur.Checkpoint)
	c, err := ledger.VerifyCheckpoint(theirs, v.LogKey)
	if err != nil {
		s.caught(ctx, r, "checkpoint", Incident{Peer: p.Name, PeerKey: p.Key, KeyID: p.KeyID, Kind: KindForged, Theirs: theirs,
			Detail: "the checkpoint it serves is not signed by its ledger key " + v.LogKey})
		return r
	}
	r.Size, r.Root = c.Size, c.Hash.String()
	r.pass("checkpoint", "size %d root %s signed by %s", c.Size, c.Hash, v.LogKey)

	// This node's own view: the last checkpoint it cosigned.
	if v.Size > 0 {
		if !s.joins(ctx, r, p, "consistency", "this node cosigned", v.Checkpoint, theirs, c) {
			return r
		}
		r.pass("consistency", "size %d extends size %d this node cosigned", c.Size, v.Size)
	} else {
		r.pass("consistency", "this node has not cosigned a checkpoint of its log yet")
	}

	// Every other peer's view, and the cosignatures that must go with it.
	witnesses := []witnessView{{name: "this node", vkey: s.wvkey, view: v.Checkpoint}}
	for _, q := range all {
		if q.KeyID == p.KeyID {
			continue
		}
		var qv View
		if err := s.call(ctx, q, PathView, ViewRequest{PeerKeyID: p.KeyID}, &qv); err != nil {
			r.fail("views", fmt.Errorf("asking peer %q for its view of %q's log: %w", q.Name, p.Name, err))
			continue
		}
		qlog, _ := s.st.PeerLogs().PeerLog(ctx, q.KeyID)
		if qv.Size == 0 || qv.Checkpoint == "" {
			witnesses = append(witnesses, witnessView{name: q.Name, vkey: qlog.WitnessKey})
			continue
		}
		qnote := []byte(qv.Checkpoint)
		if _, err := ledger.VerifyCheckpoint(qnote, v.LogKey); err != nil {
			s.caught(ctx, r, "views", Incident{Peer: q.Name, PeerKey: q.Key, KeyID: q.KeyID, Kind: KindForged, Theirs: qnote,
				Detail: fmt.Sprintf("it says it cosigned a checkpoint of %q's log that %q's ledger key did not sign", p.Name, p.Name)})
			continue
		}
		if !s.joins(ctx, r, p, "views", "peer "+q.Name+" cosigned", qnote, theirs, c) {
			continue
		}
		r.pass("views", "the checkpoint of size %d peer %q cosigned is consistent with it", qv.Size, q.Name)
		witnesses = append(witnesses, witnessView{name: q.Name, vkey: qlog.WitnessKey, view: qnote})
	}
	s.checkCosignatures(ctx, r, p, v.LogKey, theirs, c, witnesses)

	// Receipts: every entry the peer said its log held, it still holds.
	receipts, err := s.st.PeerLogs().PeerReceipts(ctx, p.KeyID)
	if err != nil {
		r.fail("receipts", err)
		return r
	}
	for _, rc := range receipts {
		s.checkReceipt(ctx, r, p, rc, theirs, c)
	}
	if len(receipts) > 0 && r.OK() {
		r.pass("receipts", "its checkpoint of size %d includes the %d entries it gave receipts for", c.Size, len(receipts))
	}
	return r
}

type witnessView struct {
	name string
	vkey string // "" when not known
	view []byte // the checkpoint it cosigned last, nil if none
}

// joins checks that the earlier checkpoint (held by someone) and the one
// the peer serves belong to one history, asking the peer for the proof;
// it records the peer as forked when they do not.
func (s *Service) joins(ctx context.Context, r *PeerReport, p store.Peer, check, who string, held, theirs []byte, c ledger.Checkpoint) bool {
	hc, err := ledger.ParseCheckpoint(noteText(held))
	if err != nil {
		r.fail(check, fmt.Errorf("a stored checkpoint does not parse: %w", err))
		return false
	}
	lo, hi := hc, c
	if hc.Size > c.Size {
		lo, hi = c, hc
	}
	var perr error
	switch {
	case lo.Size == hi.Size:
		if lo.Hash != hi.Hash {
			perr = fmt.Errorf("two roots at size %d: %w", c.Size, ledger.ErrFork)
		}
	case lo.Size > 0:
		proof, err := s.proof(ctx, p, PathConsistency, ProofRequest{From: lo.Size, To: hi.Size})
		if err != nil {
			perr = fmt.Errorf("it gave no consistency proof from %d to %d: %w", lo.Size, hi.Size, err)
		} else {
			perr = ledger.CheckConsistency(proof, lo.Size, lo.Hash, hi.Size, hi.Hash)
		}
	}
	if perr == nil {
		return true
	}
	s.caught(ctx, r, check, Incident{Peer: p.Name, PeerKey: p.Key, KeyID: p.KeyID, Kind: KindFork, Ours: held, Theirs: theirs,
		Detail: fmt.Sprintf("it shows a history (size %d, root %s) that does not extend the checkpoint %s (size %d, root %s): %v", c.Size, c.Hash, who, hc.Size, hc.Hash, perr)})
	return false
}

// checkCosignatures checks every cosignature line on the peer's
// checkpoint by a witness this node knows, and that each witness whose
// view is that very checkpoint has its cosignature on it.
func (s *Service) checkCosignatures(ctx context.Context, r *PeerReport, p store.Peer, logKey string, theirs []byte, c ledger.Checkpoint, ws []witnessView) {
	lv, err := note.NewVerifier(logKey)
	if err != nil {
		r.fail("cosignatures", err)
		return
	}
	ok := true
	for _, w := range ws {
		if w.vkey == "" {
			continue
		}
		r.witnesses++
		cv, err := ledger.NewCosignatureVerifier(w.vkey)
		if err != nil {
			continue
		}
		n, err := note.Open(theirs, note.VerifierList(lv, cv))
		var invalid *note.InvalidSignatureError
		if errors.As(err, &invalid) {
			ok = false
			s.caught(ctx, r, "cosignatures", Incident{Peer: p.Name, PeerKey: p.Key, KeyID: p.KeyID, Kind: KindForged, Theirs: theirs,
				Detail: fmt.Sprintf("its checkpoint carries a cosignature in the name of %s (%s) that does not verify", w.name, cv.Name())})
			continue
		}
		if err != nil {
			continue
		}
		has := false
		for _, sig := range n.Sigs {
			if sig.Name == cv.Name() && sig.Hash == cv.KeyHash() {
				has = true
			}
		}
		if has {
			r.CosignedBy = append(r.CosignedBy, w.name)
			continue
		}
		if w.view != nil {
			if wc, err := ledger.ParseCheckpoint(noteText(w.view)); err == nil && wc.Size == c.Size && wc.Hash == c.Hash {
				ok = false
				r.fail("cosignatures", fmt.Errorf("its checkpoint of size %d lacks the cosignature of %s, which cosigned that very checkpoint", c.Size, w.name))
			}
		}
	}
	if ok {
		r.pass("cosignatures", "checkpoint %d cosigned by %v", c.Size, r.CosignedBy)
	}
}

func (s *Service) checkReceipt(ctx context.Context, r *PeerReport, p store.Peer, rc store.PeerReceipt, theirs []byte, c ledger.Checkpoint) {
	raw, err := base64.StdEncoding.DecodeString(rc.LeafHash)
	if err != nil || len(raw) != tlog.HashSize {
		r.fail("receipts", fmt.Errorf("stored receipt %d has a malformed hash", rc.Index))
		return
	}
	var leaf tlog.Hash
	copy(leaf[:], raw)
	if rc.Index >= c.Size {
		r.fail("receipts", fmt.Errorf("its checkpoint of size %d does not cover entry %d it gave a receipt for (yet)", c.Size, rc.Index))
		return
	}
	hs, err := s.proof(ctx, p, PathInclusion, ProofRequest{Index: rc.Index, To: c.Size})
	if err == nil {
		err = ledger.CheckInclusion(tlog.RecordProof(hs), c.Size, c.Hash, rc.Index, leaf)
	}
	if err != nil {
		s.caught(ctx, r, "receipts", Incident{Peer: p.Name, PeerKey: p.Key, KeyID: p.KeyID, Kind: KindReceipt, Theirs: theirs,
			Detail: fmt.Sprintf("its log of size %d (root %s) does not hold entry %d with leaf hash %s it gave a receipt for: %v", c.Size, c.Hash, rc.Index, rc.LeafHash, err)})
	}
}

// AddReceipt records that peer name's log holds leafHash (base64) at
// index, as the peer said; CheckPeers holds it to that.
func (s *Service) AddReceipt(ctx context.Context, name string, index int64, leafHash string) error {
	p, err := s.st.Nodes().Peer(ctx, name)
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(leafHash)
	if err != nil || len(raw) != tlog.HashSize || index < 0 {
		return fmt.Errorf("a receipt is an entry index and its base64 SHA-256 leaf hash: %w", ledger.ErrMalformed)
	}
	return s.st.PeerLogs().AddPeerReceipt(ctx, store.PeerReceipt{KeyID: p.KeyID, Index: index, LeafHash: leafHash, AddedAt: s.now().UTC()})
}

// Incidents returns up to limit recorded incidents, newest first.
func (s *Service) Incidents(ctx context.Context, limit int) ([]store.PeerIncident, error) {
	return s.st.PeerLogs().PeerIncidents(ctx, limit)
}

// noteText returns the checkpoint body of a signed note.
func noteText(signed []byte) []byte {
	text, _, _ := bytes.Cut(signed, []byte("\n\n"))
	return append(bytes.Clone(text), '\n')
}
