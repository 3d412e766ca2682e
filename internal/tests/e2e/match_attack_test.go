package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"

	"filippo.io/edwards25519/field"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/psi"
)

// frame builds a protocol message by hand, as a hostile client would:
// any round, role, binding and elements, with a correct digest.
func frame(round uint8, role psi.Role, binding [32]byte, count uint64, elems ...[]byte) []byte {
	b := []byte("PPSI")
	b = append(b, psi.Version, round, byte(role), 0)
	b = append(b, binding[:]...)
	b = binary.BigEndian.AppendUint64(b, count)
	for _, e := range elems {
		b = append(b, e...)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func bindingOf(t testing.TB, m *client.Match) [32]byte {
	t.Helper()
	sid, err := hex.DecodeString(m.SessionID)
	if err != nil || len(sid) != 32 {
		t.Fatalf("session id %q: %v", m.SessionID, err)
	}
	return psi.SessionBinding(sid, m.Initiator, m.Responder)
}

// honestRound1 makes p's genuine round-1 message for session m.
func honestRound1(t testing.TB, p *Party, m *client.Match, maxElements int, items []psi.Item) []byte {
	t.Helper()
	sid, _ := hex.DecodeString(m.SessionID)
	cfg := psi.Config{SessionID: sid, Self: p.ID, Peer: m.Responder, Role: psi.RoleInitiator, MaxElements: maxElements}
	if p.ID == m.Responder {
		cfg.Peer, cfg.Role = m.Initiator, psi.RoleResponder
	}
	s, err := psi.NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.Round1(ctx, slices.Values(items), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// validPoints returns n distinct canonical group elements.
func validPoints(t testing.TB, n int) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	s, err := psi.NewSession(psi.Config{SessionID: bytes.Repeat([]byte{9}, 32), Self: "x", Peer: "y", Role: psi.RoleInitiator, MaxElements: n})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Round1(ctx, slices.Values(emails("p", 0, n)), &buf); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()[psi.HeaderSize : psi.HeaderSize+32*n]
	var out [][]byte
	for i := range n {
		out = append(out, raw[32*i:32*(i+1)])
	}
	return out
}

// TestMatchRefusesBadRound1 sends the server every kind of bad round-1
// upload; each is refused with a specific error and leaves the session
// open for the honest message.
func TestMatchRefusesBadRound1(t *testing.T) {
	w := newMatchWorld(t, 10)
	charlie := w.s.NewParty(t, "charlie")
	m, err := w.a.C.StartMatch(ctx, w.agreement)
	if err != nil {
		t.Fatal(err)
	}
	other, err := w.a.C.StartMatch(ctx, w.agreement)
	if err != nil {
		t.Fatal(err)
	}
	bind := bindingOf(t, m)
	pts := validPoints(t, 11)
	replayed := honestRound1(t, w.a, other, 10, emails("a", 0, 3)) // alpha's message of the other session

	tests := []struct {
		name          string
		by            *Party
		body          []byte
		status        int
		code, mention string
	}{
		{"over the cap", w.a, frame(1, psi.RoleInitiator, bind, 11, pts...), http.StatusRequestEntityTooLarge, "over_cap", "11 elements, cap 10"},
		{"over the cap, header only", w.a, frame(1, psi.RoleInitiator, bind, 1<<40)[:psi.HeaderSize], http.StatusRequestEntityTooLarge, "over_cap", "cap 10"},
		{"replayed from another session", w.a, replayed, http.StatusBadRequest, "invalid", "another session"},
		{"bound to other parties", w.a, frame(1, psi.RoleInitiator, psi.SessionBinding(must(hex.DecodeString(m.SessionID)), w.a.ID, charlie.ID), 1, pts[0]), http.StatusBadRequest, "invalid", "another session"},
		{"the other side's role", w.a, frame(1, psi.RoleResponder, bind, 1, pts[0]), http.StatusBadRequest, "invalid", "round 1 from role 2, want round 1 from role 1"},
		{"round 2 as round 1", w.a, frame(2, psi.RoleInitiator, bind, 1, make([]byte, 16)), http.StatusBadRequest, "invalid", "got round 2"},
		{"bad magic", w.a, append([]byte("XXXX"), frame(1, psi.RoleInitiator, bind, 1, pts[0])[4:]...), http.StatusBadRequest, "invalid", "bad magic"},
		{"truncated", w.a, frame(1, psi.RoleInitiator, bind, 2, pts[:2]...)[:psi.HeaderSize+40], http.StatusBadRequest, "invalid", "truncated"},
		{"corrupted", w.a, flip(frame(1, psi.RoleInitiator, bind, 2, pts[:2]...), psi.HeaderSize+3), http.StatusBadRequest, "invalid", "digest mismatch"},
		{"trailing data", w.a, append(frame(1, psi.RoleInitiator, bind, 1, pts[0]), 0), http.StatusBadRequest, "invalid", "trailing data"},
		{"count larger than the body", w.a, frame(1, psi.RoleInitiator, bind, 3, pts[:2]...), http.StatusBadRequest, "invalid", "truncated"},
		{"a stranger", charlie, frame(1, psi.RoleInitiator, bind, 1, pts[0]), http.StatusNotFound, "not_found", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.by.C.PutRound1(ctx, m.ID, bytes.NewReader(tc.body))
			wantAPIError(t, tc.name, err, tc.status, tc.code, tc.mention)
			got, err := w.a.C.Match(ctx, m.ID)
			if err != nil || got.InitiatorRound1 != nil || got.State != "round1" {
				t.Fatalf("after a refused upload: %+v, %v", got, err)
			}
		})
	}

	// Strangers see nothing of the session.
	if _, err := charlie.C.Match(ctx, m.ID); err == nil {
		t.Fatal("charlie sees the session")
	}
	if ms, err := charlie.C.Matches(ctx, ""); err != nil || len(ms) != 0 {
		t.Fatalf("charlie's sessions: %+v, %v", ms, err)
	}
	err = charlie.C.PeerRound1(ctx, m.ID, func(io.Reader) error { return nil })
	wantAPIError(t, "a stranger reading round 1", err, http.StatusNotFound, "not_found", "")

	// A side reads the other's round 1 only after sending its own.
	good := honestRound1(t, w.b, m, 10, emails("b", 0, 4))
	if _, err := w.b.C.PutRound1(ctx, m.ID, bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	err = w.a.C.PeerRound1(ctx, m.ID, func(io.Reader) error { return nil })
	wantAPIError(t, "reading before sending", err, http.StatusConflict, "not_ready", "send your own round 1")
	err = w.b.C.PeerRound1(ctx, m.ID, func(io.Reader) error { return nil })
	wantAPIError(t, "reading before the other side sent", err, http.StatusConflict, "not_ready", "has not sent round 1")

	// One party cannot run both sides: bravo sending again, or as alpha.
	_, err = w.b.C.PutRound1(ctx, m.ID, bytes.NewReader(good))
	wantAPIError(t, "round 1 twice", err, http.StatusConflict, "conflict", "already sent round 1")
	_, err = w.b.C.PutRound1(ctx, m.ID, bytes.NewReader(frame(1, psi.RoleInitiator, bind, 1, pts[0])))
	wantAPIError(t, "bravo sending alpha's round", err, http.StatusConflict, "conflict", "already sent round 1")

	// The honest message still goes through, and comes back byte for byte.
	mine := honestRound1(t, w.a, m, 10, emails("a", 0, 3))
	if _, err := w.a.C.PutRound1(ctx, m.ID, bytes.NewReader(mine)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := w.a.C.PeerRound1(ctx, m.ID, func(r io.Reader) (err error) { got, err = io.ReadAll(r); return err }); err != nil || !bytes.Equal(got, good) {
		t.Fatalf("alpha read %d bytes of bravo's %d, %v", len(got), len(good), err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 1
	return b
}

// TestMatchPeerRefusesBadElements: messages whose framing is right but
// whose elements are not (not canonical, the high bit set, of low order,
// zero, one element sent twice or under two u-coordinates; any other
// u-coordinate is a point of curve25519 or its twist, and X25519 is safe on
// both) pass the relay, which cannot tell, and are refused by the receiving
// party's client before it deposits anything.
func TestMatchPeerRefusesBadElements(t *testing.T) {
	w := newMatchWorld(t, 10)
	pts := validPoints(t, 3)
	// 2^255 - 19, the field prime: a non-canonical encoding.
	prime := append([]byte{0xed}, bytes.Repeat([]byte{0xff}, 30)...)
	prime = append(prime, 0x7f)
	// P plus the point of order 2 has u-coordinate 1/u(P): another
	// encoding of the same element once multiplied by a clamped scalar.
	u, err := new(field.Element).SetBytes(pts[2])
	if err != nil {
		t.Fatal(err)
	}
	sameAsPts2 := new(field.Element).Invert(u).Bytes()
	topBit := bytes.Clone(pts[0])
	topBit[31] |= 0x80
	lowOrder := make([]byte, 32)
	lowOrder[0] = 1 // u = 1, a point of order 4
	tests := []struct {
		name  string
		elems [][]byte
		want  error
	}{
		{"non-canonical", [][]byte{pts[0], prime}, psi.ErrMalformedElement},
		{"top bit set", [][]byte{topBit}, psi.ErrMalformedElement},
		{"low order", [][]byte{pts[1], lowOrder}, psi.ErrMalformedElement},
		{"identity", [][]byte{make([]byte, 32)}, psi.ErrMalformedElement},
		{"element sent twice", [][]byte{pts[1], pts[2], pts[1]}, psi.ErrDuplicateElement},
		{"one element under two u-coordinates", [][]byte{pts[2], pts[0], sameAsPts2}, psi.ErrDuplicateElement},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := w.a.C.StartMatch(ctx, w.agreement)
			if err != nil {
				t.Fatal(err)
			}
			bad := frame(1, psi.RoleInitiator, bindingOf(t, m), uint64(len(tc.elems)), tc.elems...)
			if _, err := w.a.C.PutRound1(ctx, m.ID, bytes.NewReader(bad)); err != nil {
				t.Fatalf("the relay refused a well-framed message: %v", err)
			}
			c, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err = w.b.C.RunMatch(c, client.MatchOptions{Session: m.ID, Items: itemsOf(emails("b", 0, 3)), Identity: w.b.Keys.Sealing})
			if !errors.Is(err, tc.want) {
				t.Fatalf("bravo's run: %v, want %v", err, tc.want)
			}
			h, err := w.b.C.Handover(ctx, m.Handover)
			if err != nil || len(h.Deposits) != 0 {
				t.Fatalf("bravo deposited round 2 after a bad round 1: %+v, %v", h, err)
			}
		})
	}
}

// TestMatchWithOneself: no agreement with oneself can exist, so there is
// nothing to start a session under.
func TestMatchWithOneself(t *testing.T) {
	s := Start(t)
	a := s.NewParty(t, "alpha")
	b := s.NewParty(t, "bravo")
	d := Document(t, a, b, nil)
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	self := bytes.ReplaceAll(raw, []byte(b.ID), []byte(a.ID))
	self = bytes.ReplaceAll(self, []byte(b.Keys.KeyID()), []byte(a.Keys.KeyID()))
	if _, err := agreement.ParseDocument(self); !errors.Is(err, agreement.ErrSelfAgreement) {
		t.Fatalf("a document with oneself on both sides: %v", err)
	}
	_, err = a.C.StartMatch(ctx, d.ID)
	wantAPIError(t, "a session under an agreement never made", err, http.StatusNotFound, "not_found", "")
}

// TestMatchNeedsAgreementInForce: a proposed (not countersigned) agreement
// allows no session, and the list over the cap never leaves the client.
func TestMatchNeedsAgreementInForce(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	d := Document(t, a, b, func(m map[string]any) { m["match_cap"] = 5 })
	if _, err := a.C.Propose(ctx, d, Sign(t, a, d, agreement.ActionPropose)); err != nil {
		t.Fatal(err)
	}
	_, err := a.C.StartMatch(ctx, d.ID)
	wantAPIError(t, "before countersigning", err, http.StatusForbidden, "forbidden", "not in force")
	if _, err := b.C.Sign(ctx, Sign(t, b, d, agreement.ActionCountersign)); err != nil {
		t.Fatal(err)
	}
	_, err = a.C.RunMatch(ctx, client.MatchOptions{Agreement: d.ID, Items: itemsOf(emails("a", 0, 6)), Identity: a.Keys.Sealing})
	if !errors.Is(err, psi.ErrOverCap) {
		t.Fatalf("a list of 6 under a cap of 5: %v", err)
	}
}
