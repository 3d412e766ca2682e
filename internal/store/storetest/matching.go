package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// matchFixture makes two parties, an agreement, its round-2 handover and a
// matching session between them.
func matchFixture(t *testing.T, st store.Store) (store.MatchSession, store.Party, store.Party) {
	t.Helper()
	e, a, b, ag := escrowFixture(t, st)
	h := store.Handover{ID: "handover--m1", AgreementID: ag, Proposer: a.ID, Counterpart: b.ID, ProposerDelivers: "round 2",
		CounterpartDelivers: "round 2", Deadline: t0.Add(time.Hour), State: store.HandoverAccepted, CreatedAt: t0, DecidedAt: t0}
	if err := e.Handovers().Create(ctx, h); err != nil {
		t.Fatal(err)
	}
	m := store.MatchSession{ID: "match--1", AgreementID: ag, SessionID: bytes.Repeat([]byte{7}, 32), Cap: 1000,
		Initiator: store.MatchSide{PartyID: a.ID}, Responder: store.MatchSide{PartyID: b.ID},
		HandoverID: h.ID, CreatedAt: t0, LedgerIndex: 3}
	if err := st.Matches().Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	return m, a, b
}

func testMatches(t *testing.T, st store.Store) {
	m, a, b := matchFixture(t, st)
	ms := st.Matches()
	if err := ms.Create(ctx, m); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate session: %v", err)
	}
	for _, bad := range []func(*store.MatchSession){
		func(x *store.MatchSession) { x.AgreementID = "agreement--ghost" },
		func(x *store.MatchSession) { x.HandoverID = "handover--ghost" },
		func(x *store.MatchSession) { x.Responder.PartyID = "party--ghost" },
	} {
		x := m
		x.ID = "match--bad"
		bad(&x)
		if err := ms.Create(ctx, x); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session referring to a missing record %+v: %v", x, err)
		}
	}
	got, err := ms.Get(ctx, m.ID)
	if err != nil || !equalMatch(got, m) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, m)
	}
	if _, err := ms.Get(ctx, "match--nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get unknown: %v", err)
	}
	for _, p := range []string{a.ID, b.ID} {
		if list, err := ms.ListByParty(ctx, p, ""); err != nil || len(list) != 1 || list[0].ID != m.ID {
			t.Fatalf("ListByParty(%s) = %+v, %v", p, list, err)
		}
		if list, err := ms.ListByParty(ctx, p, "agreement--other"); err != nil || len(list) != 0 {
			t.Fatalf("ListByParty of another agreement = %+v, %v", list, err)
		}
	}
	if list, err := ms.ListByParty(ctx, "party--stranger", ""); err != nil || len(list) != 0 {
		t.Fatalf("ListByParty of a stranger = %+v, %v", list, err)
	}

	// Two upload attempts of A's round 1; the second one wins.
	chunks := map[string][][]byte{
		"up-1": {bytes.Repeat([]byte{1}, store.MatchChunkSize), []byte("tail-1")},
		"up-2": {bytes.Repeat([]byte{2}, store.MatchChunkSize), bytes.Repeat([]byte{3}, 100)},
	}
	for up, cs := range chunks {
		for i, c := range cs {
			if err := ms.PutChunk(ctx, m.ID, a.ID, up, i, c); err != nil {
				t.Fatalf("PutChunk %s %d: %v", up, i, err)
			}
		}
	}
	if err := ms.PutChunk(ctx, m.ID, a.ID, "up-1", 0, []byte("again")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("chunk written twice: %v", err)
	}
	if err := ms.PutChunk(ctx, "match--nope", a.ID, "up-1", 0, []byte("x")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("chunk of an unknown session: %v", err)
	}
	for up, cs := range chunks {
		for i, c := range cs {
			if got, err := ms.Chunk(ctx, m.ID, a.ID, up, i); err != nil || !bytes.Equal(got, c) {
				t.Fatalf("Chunk %s %d: %d bytes, %v", up, i, len(got), err)
			}
		}
	}
	if _, err := ms.Chunk(ctx, m.ID, a.ID, "up-2", 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Chunk beyond the end: %v", err)
	}
	if _, err := ms.Chunk(ctx, m.ID, b.ID, "up-2", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Chunk of the other party: %v", err)
	}
	if ups, err := ms.Uploads(ctx, m.ID, a.ID); err != nil || len(ups) != 2 || ups[0] != "up-1" || ups[1] != "up-2" {
		t.Fatalf("Uploads of A = %v, %v; want [up-1 up-2]", ups, err)
	}
	if ups, err := ms.Uploads(ctx, m.ID, b.ID); err != nil || len(ups) != 0 {
		t.Fatalf("Uploads of B = %v, %v; want none", ups, err)
	}

	if err := ms.PutChunk(ctx, m.ID, a.ID, "up-3", 0, []byte("failed")); err != nil {
		t.Fatal(err)
	}
	if n, err := ms.DeleteUpload(ctx, m.ID, a.ID, "up-3"); err != nil || n != 1 {
		t.Fatalf("DeleteUpload: %d, %v", n, err)
	}
	if _, err := ms.Chunk(ctx, m.ID, a.ID, "up-3", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted upload is still there: %v", err)
	}
	side := store.MatchSide{PartyID: a.ID, Upload: "up-2", Count: 42, Size: store.MatchChunkSize + 100, At: t0.Add(time.Second), LedgerIndex: 4}
	err = st.Update(ctx, func(tx store.Handle) error { return tx.Matches().CompleteRound1(ctx, m.ID, side) })
	if err != nil {
		t.Fatal(err)
	}
	again := side
	again.Upload = "up-1"
	if err := ms.CompleteRound1(ctx, m.ID, again); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("round 1 completed twice: %v", err)
	}
	if err := ms.CompleteRound1(ctx, m.ID, store.MatchSide{PartyID: "party--stranger", Upload: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("round 1 of a stranger: %v", err)
	}
	if err := ms.CompleteRound1(ctx, "match--nope", side); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("round 1 of an unknown session: %v", err)
	}
	if n, err := ms.DeleteChunks(ctx, m.ID, a.ID, "up-2"); err != nil || n != 2 {
		t.Fatalf("DeleteChunks kept up-2: removed %d, %v; want 2", n, err)
	}
	if _, err := ms.Chunk(ctx, m.ID, a.ID, "up-1", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted chunk is still there: %v", err)
	}
	if got, err := ms.Chunk(ctx, m.ID, a.ID, "up-2", 1); err != nil || len(got) != 100 {
		t.Fatalf("the kept upload lost a chunk: %d bytes, %v", len(got), err)
	}
	m.Initiator = side
	if got, err := ms.Get(ctx, m.ID); err != nil || !equalMatch(got, m) || !got.Initiator.Done() || got.Responder.Done() {
		t.Fatalf("after CompleteRound1: %+v, %v; want %+v", got, err, m)
	}
	if s, ok := m.Side(b.ID); !ok || s.PartyID != b.ID {
		t.Fatalf("Side(%s) = %+v, %v", b.ID, s, ok)
	}
	if _, ok := m.Side("party--stranger"); ok {
		t.Fatal("a stranger has a side")
	}

	// A completion rolled back with its transaction leaves the side open.
	bside := store.MatchSide{PartyID: b.ID, Upload: "up-b", Count: 1, Size: 1, At: t0}
	boom := errors.New("boom")
	err = st.Update(ctx, func(tx store.Handle) error {
		if err := tx.Matches().CompleteRound1(ctx, m.ID, bside); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update: %v", err)
	}
	if got, _ := ms.Get(ctx, m.ID); got.Responder.Done() {
		t.Fatal("a rolled-back completion was kept")
	}
	if n, err := ms.DeleteChunks(ctx, m.ID, a.ID, ""); err != nil || n != 2 {
		t.Fatalf("DeleteChunks of everything: %d, %v", n, err)
	}
}

func equalMatch(a, b store.MatchSession) bool {
	return a.ID == b.ID && a.AgreementID == b.AgreementID && bytes.Equal(a.SessionID, b.SessionID) && a.Cap == b.Cap &&
		a.Initiator == b.Initiator && a.Responder == b.Responder && a.HandoverID == b.HandoverID &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LedgerIndex == b.LedgerIndex
}
