package matching_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange/exchangetest"
	"github.com/parley-cti/parley/internal/matching"
	"github.com/parley-cti/parley/internal/psi"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

var ctx = context.Background()

const matchCap = 100

type fixture struct {
	*exchangetest.Fixture
	s *matching.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{Fixture: exchangetest.New(t, db, func(m map[string]any) { m["match_cap"] = matchCap })}
	f.s = matching.New(db, f.Ex)
	f.s.SetClock(f.Clock())
	return f
}

// message frames a round-1 message as psi does (header, count elements,
// SHA-256 of all before it); the relay checks framing, not the points.
func message(round uint8, role psi.Role, binding [32]byte, count uint64) []byte {
	b := []byte{'P', 'P', 'S', 'I', psi.Version, round, byte(role), 0}
	b = append(b, binding[:]...)
	b = binary.BigEndian.AppendUint64(b, count)
	el := make([]byte, int(count)*32)
	rand.Read(el)
	b = append(b, el...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func TestStartRefuses(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		p    exchangetest.Member
		id   string
		want error
	}{
		{"no such agreement", f.A, "agreement--missing", matching.ErrNotFound},
		{"an outsider to the agreement", f.Outsider, f.AgreementID, matching.ErrNotFound},
	} {
		size := f.LedgerSize()
		if _, err := f.s.Start(ctx, tc.p.P, tc.id); !errors.Is(err, tc.want) || f.LedgerSize() != size {
			t.Errorf("%s: %v (ledger +%d), want %v and nothing recorded", tc.name, err, f.LedgerSize()-size, tc.want)
		}
	}
	f.Step(f.A, agreement.ActionSuspend)
	if _, err := f.s.Start(ctx, f.A.P, f.AgreementID); !errors.Is(err, matching.ErrForbidden) {
		t.Fatalf("under a suspended agreement: %v, want ErrForbidden", err)
	}
}

// TestRound1Hostile: the relay stores only a whole round-1 message of the
// uploader's own role, bound to this session, within the cap, once; and
// serves it only to the other side, once that side has committed its own.
func TestRound1Hostile(t *testing.T) {
	f := newFixture(t)
	st, err := f.s.Start(ctx, f.A.P, f.AgreementID)
	if err != nil {
		t.Fatal(err)
	}
	m := st.Session
	bind := psi.SessionBinding(m.SessionID, m.Initiator.PartyID, m.Responder.PartyID)
	other := psi.SessionBinding(bytes.Repeat([]byte{1}, 32), m.Initiator.PartyID, m.Responder.PartyID)
	good := message(1, psi.RoleInitiator, bind, 3)
	corrupt := bytes.Clone(good)
	corrupt[60] ^= 1
	for _, tc := range []struct {
		name string
		p    exchangetest.Member
		id   string
		body []byte
		want error
	}{
		{"an outsider uploads", f.Outsider, m.ID, good, matching.ErrNotFound},
		{"no such session", f.A, "match--missing", good, matching.ErrNotFound},
		{"the other side's role", f.A, m.ID, message(1, psi.RoleResponder, bind, 3), matching.ErrInvalid},
		{"replayed from another session", f.A, m.ID, message(1, psi.RoleInitiator, other, 3), psi.ErrWrongSession},
		{"round 2 in place of round 1", f.A, m.ID, message(2, psi.RoleInitiator, bind, 3), matching.ErrInvalid},
		{"over the agreement's cap", f.A, m.ID, message(1, psi.RoleInitiator, bind, matchCap+1), matching.ErrOverCap},
		{"truncated", f.A, m.ID, good[:len(good)-5], matching.ErrInvalid},
		{"corrupted", f.A, m.ID, corrupt, matching.ErrInvalid},
		{"trailing bytes", f.A, m.ID, append(bytes.Clone(good), 0), matching.ErrInvalid},
		{"not a message", f.A, m.ID, []byte("hello"), matching.ErrInvalid},
		{"empty", f.A, m.ID, nil, matching.ErrInvalid},
	} {
		size := f.LedgerSize()
		if _, err := f.s.PutRound1(ctx, tc.p.P, tc.id, bytes.NewReader(tc.body)); !errors.Is(err, tc.want) || f.LedgerSize() != size {
			t.Errorf("%s: %v (ledger +%d), want %v and nothing recorded", tc.name, err, f.LedgerSize()-size, tc.want)
		}
	}
	if _, err := f.s.OpenPeerRound1(ctx, f.A.P, m.ID); !errors.Is(err, matching.ErrNotReady) {
		t.Fatalf("peer's round 1 before sending one's own: %v, want ErrNotReady", err)
	}
	if _, err := f.s.PutRound1(ctx, f.A.P, m.ID, bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.PutRound1(ctx, f.A.P, m.ID, bytes.NewReader(good)); !errors.Is(err, matching.ErrConflict) {
		t.Fatalf("round 1 twice: %v, want ErrConflict", err)
	}
	if _, err := f.s.OpenPeerRound1(ctx, f.A.P, m.ID); !errors.Is(err, matching.ErrNotReady) {
		t.Fatalf("peer's round 1 before the peer sent it: %v, want ErrNotReady", err)
	}
	if _, err := f.s.OpenPeerRound1(ctx, f.B.P, m.ID); !errors.Is(err, matching.ErrNotReady) {
		t.Fatalf("the responder reads before committing its own: %v, want ErrNotReady", err)
	}
	if _, err := f.s.OpenPeerRound1(ctx, f.Outsider.P, m.ID); !errors.Is(err, matching.ErrNotFound) {
		t.Fatalf("an outsider reads: %v, want ErrNotFound", err)
	}
	theirs := message(1, psi.RoleResponder, bind, 5)
	if _, err := f.s.PutRound1(ctx, f.B.P, m.ID, bytes.NewReader(theirs)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		who  exchangetest.Member
		want []byte
	}{{f.A, theirs}, {f.B, good}} {
		r, err := f.s.OpenPeerRound1(ctx, c.who.P, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, c.want) || r.Size != int64(len(c.want)) {
			t.Fatalf("%s reads %d bytes (size %d), %v; want the other side's %d", c.who.P.PartyID, len(got), r.Size, err, len(c.want))
		}
	}
}

// TestRound1AfterTheSessionEnds: a suspended agreement or a passed deadline
// refuses round 1.
func TestRound1AfterTheSessionEnds(t *testing.T) {
	f := newFixture(t)
	st, err := f.s.Start(ctx, f.A.P, f.AgreementID)
	if err != nil {
		t.Fatal(err)
	}
	m := st.Session
	bind := psi.SessionBinding(m.SessionID, m.Initiator.PartyID, m.Responder.PartyID)
	f.Advance(matching.SessionWindow)
	if _, err := f.s.PutRound1(ctx, f.B.P, m.ID, bytes.NewReader(message(1, psi.RoleResponder, bind, 1))); !errors.Is(err, matching.ErrConflict) {
		t.Fatalf("round 1 past the session's deadline: %v, want ErrConflict", err)
	}
	f2 := newFixture(t)
	st, err = f2.s.Start(ctx, f2.A.P, f2.AgreementID)
	if err != nil {
		t.Fatal(err)
	}
	m = st.Session
	bind = psi.SessionBinding(m.SessionID, m.Initiator.PartyID, m.Responder.PartyID)
	f2.Step(f2.B, agreement.ActionSuspend)
	if _, err := f2.s.PutRound1(ctx, f2.A.P, m.ID, bytes.NewReader(message(1, psi.RoleInitiator, bind, 1))); !errors.Is(err, matching.ErrForbidden) {
		t.Fatalf("round 1 under a suspended agreement: %v, want ErrForbidden", err)
	}
	v, err := f2.s.Get(ctx, f2.A.P, m.ID)
	if err != nil || v.Session.Initiator.Done() || v.Handover.State != store.HandoverAccepted {
		t.Fatalf("after the refusal: %+v, %v", v, err)
	}
}
