package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// testFederation covers migrations 23, 27 and 28: remote parties (one row per party
// id), the outbox, whose heads are each peer's oldest pending entry and
// whose entries close once, and feed cursors.
func testFederation(t *testing.T, st store.Store) {
	f := st.Federation()
	if _, err := f.RemoteParty(ctx, "party--bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RemoteParty of none: %v, want ErrNotFound", err)
	}
	mustParty(t, st, "bob@nodeb")
	rp := store.RemoteParty{PartyID: "party--bob@nodeb", NodeKey: "node-b+00000001+AAA", NodeKeyID: "kid-b", Name: "bob", LearnedAt: t0}
	if err := f.AddRemoteParty(ctx, rp); err != nil {
		t.Fatal(err)
	}
	if got, err := f.RemoteParty(ctx, rp.PartyID); err != nil || got != rp {
		t.Fatalf("RemoteParty = %+v, %v; want %+v", got, err, rp)
	}
	if err := f.AddRemoteParty(ctx, rp); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("AddRemoteParty twice: %v, want ErrConflict", err)
	}

	add := func(peer, agr string, at time.Time) int64 {
		t.Helper()
		seq, err := f.Enqueue(ctx, store.OutboxEntry{PeerKeyID: peer, AgreementID: agr, PartyID: "party--alice", Kind: "agreement.step",
			Body: []byte(`{"n":"` + agr + `"}`), CreatedAt: at, NextAttempt: at})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	b1 := add("kid-b", "agr-1", t0)
	c1 := add("kid-c", "agr-2", t0)
	b2 := add("kid-b", "agr-1", t0.Add(time.Second))
	if !(b1 < c1 && c1 < b2) {
		t.Fatalf("seqs %d %d %d are not ascending", b1, c1, b2)
	}
	heads := func() []int64 {
		t.Helper()
		hs, err := f.OutboxHeads(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, h := range hs {
			out = append(out, h.Seq)
		}
		return out
	}
	if got := heads(); len(got) != 2 || got[0] != b1 || got[1] != c1 {
		t.Fatalf("heads = %v, want [%d %d]", got, b1, c1)
	}
	next := t0.Add(time.Minute)
	if err := f.OutboxRetry(ctx, b1, 3, next, "connection refused"); err != nil {
		t.Fatal(err)
	}
	hs, _ := f.OutboxHeads(ctx)
	if hs[0].Seq != b1 || hs[0].Attempts != 3 || !hs[0].NextAttempt.Equal(next) || hs[0].LastError != "connection refused" ||
		!bytes.Equal(hs[0].Body, []byte(`{"n":"agr-1"}`)) || hs[0].State != store.OutboxPending || hs[0].PartyID != "party--alice" {
		t.Fatalf("head after retry = %+v", hs[0])
	}
	if err := f.OutboxDone(ctx, b1, store.OutboxDelivered, next, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.OutboxDone(ctx, b1, store.OutboxRefused, next, "again"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("closing a closed entry: %v, want ErrNotFound", err)
	}
	if err := f.OutboxRetry(ctx, b1, 4, next, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retrying a closed entry: %v, want ErrNotFound", err)
	}
	if got := heads(); len(got) != 2 || got[0] != c1 || got[1] != b2 {
		t.Fatalf("heads after delivering %d = %v, want [%d %d]", b1, got, c1, b2)
	}
	all, err := f.Outbox(ctx, "agr-1", 10)
	if err != nil || len(all) != 2 || all[0].Seq != b2 || all[1].State != store.OutboxDelivered || !all[1].DoneAt.Equal(next) {
		t.Fatalf("Outbox(agr-1) = %+v, %v", all, err)
	}
	if all, err := f.Outbox(ctx, "", 10); err != nil || len(all) != 3 {
		t.Fatalf("Outbox() = %d entries, %v", len(all), err)
	}
	// Only what the peer refused for good, of that agreement and peer.
	if rs, err := f.OutboxRefused(ctx, "agr-1", "kid-b"); err != nil || len(rs) != 0 {
		t.Fatalf("OutboxRefused before any refusal = %+v, %v", rs, err)
	}
	b3 := add("kid-b", "agr-1", t0.Add(2*time.Second))
	c2 := add("kid-c", "agr-1", t0.Add(2*time.Second))
	for _, seq := range []int64{b2, b3, c2} {
		if err := f.OutboxDone(ctx, seq, store.OutboxRefused, next, "not_found: no such case"); err != nil {
			t.Fatal(err)
		}
	}
	if rs, err := f.OutboxRefused(ctx, "agr-1", "kid-b"); err != nil || len(rs) != 2 || rs[0].Seq != b2 || rs[1].Seq != b3 ||
		rs[0].LastError != "not_found: no such case" || rs[0].State != store.OutboxRefused || !bytes.Equal(rs[0].Body, []byte(`{"n":"agr-1"}`)) {
		t.Fatalf("OutboxRefused(agr-1, kid-b) = %+v, %v; want %d and %d", rs, err, b2, b3)
	}
	if rs, err := f.OutboxRefused(ctx, "agr-2", "kid-b"); err != nil || len(rs) != 0 {
		t.Fatalf("OutboxRefused(agr-2, kid-b) = %+v, %v", rs, err)
	}

	// Migration 27: feed cursors, one per (agreement, party), replaced
	// whole.
	if _, err := f.FeedCursor(ctx, "agr-1", "party--bob@nodeb"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FeedCursor before any: %v, want ErrNotFound", err)
	}
	fc := store.FeedCursor{AgreementID: "agr-1", PartyID: "party--bob@nodeb", After: 7, Pulled: 9, Refused: 2, Attempts: 1,
		NextAttempt: next, LastError: "peer offline", UpdatedAt: t0}
	if err := f.SetFeedCursor(ctx, fc); err != nil {
		t.Fatal(err)
	}
	fc2 := fc
	fc2.After, fc2.Attempts, fc2.LastError, fc2.UpdatedAt = 12, 0, "", next
	if err := f.SetFeedCursor(ctx, fc2); err != nil {
		t.Fatal(err)
	}
	if got, err := f.FeedCursor(ctx, "agr-1", "party--bob@nodeb"); err != nil || got.After != 12 || got.Pulled != 9 || got.Refused != 2 ||
		got.Attempts != 0 || got.LastError != "" || !got.UpdatedAt.Equal(next) || !got.NextAttempt.Equal(next) {
		t.Fatalf("FeedCursor = %+v, %v; want %+v", got, err, fc2)
	}
	if _, err := f.FeedCursor(ctx, "agr-2", "party--bob@nodeb"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FeedCursor of another agreement: %v, want ErrNotFound", err)
	}
	if all, err := f.FeedCursors(ctx); err != nil || len(all) != 1 || all[0].After != 12 || all[0].PartyID != "party--bob@nodeb" {
		t.Fatalf("FeedCursors = %+v, %v", all, err)
	}
	// Migration 28: when the pull last succeeded and what the peer said
	// it releases, zero until set, kept by the next write.
	if got, _ := f.FeedCursor(ctx, "agr-1", "party--bob@nodeb"); !got.LastSuccess.IsZero() || got.PeerReleased != 0 {
		t.Fatalf("a cursor never successful: last success %v, peer released %d", got.LastSuccess, got.PeerReleased)
	}
	fc3 := fc2
	fc3.LastSuccess, fc3.PeerReleased = t0, 40
	if err := f.SetFeedCursor(ctx, fc3); err != nil {
		t.Fatal(err)
	}
	fc3.Attempts, fc3.LastError = 2, "peer offline"
	if err := f.SetFeedCursor(ctx, fc3); err != nil {
		t.Fatal(err)
	}
	if all, err := f.FeedCursors(ctx); err != nil || len(all) != 1 || !all[0].LastSuccess.Equal(t0) || all[0].PeerReleased != 40 || all[0].Attempts != 2 {
		t.Fatalf("FeedCursors after a success and a failure = %+v, %v", all, err)
	}
	// Migration 31: where the pull of later versions stands, "" until
	// set, replaced by the next write.
	if got, _ := f.FeedCursor(ctx, "agr-1", "party--bob@nodeb"); got.VersionsAfter != "" {
		t.Fatalf("a cursor that never pulled later versions: %q", got.VersionsAfter)
	}
	fc3.VersionsAfter = "1767225600000000.42"
	if err := f.SetFeedCursor(ctx, fc3); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.FeedCursor(ctx, "agr-1", "party--bob@nodeb"); got.VersionsAfter != fc3.VersionsAfter {
		t.Fatalf("FeedCursor's versions after = %q, want %q", got.VersionsAfter, fc3.VersionsAfter)
	}
	if all, err := f.FeedCursors(ctx); err != nil || len(all) != 1 || all[0].VersionsAfter != fc3.VersionsAfter {
		t.Fatalf("FeedCursors' versions after = %+v, %v", all, err)
	}
}
