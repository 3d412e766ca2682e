package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// testVerifications covers migration 16: parties' signed verifications,
// numbered per party, listed newest first and never across parties.
func testVerifications(t *testing.T, st store.Store) {
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "beta")
	add := func(party string, size int64) store.Verification {
		t.Helper()
		v, err := st.Keys().AddVerification(ctx, store.Verification{PartyID: party, Size: size, Root: "root" + string(rune('a'+size)),
			Entries: size / 2, VerifiedAt: t0.Add(time.Duration(size) * time.Second), ReceivedAt: t0.Add(time.Minute), Statement: []byte(`{"size":` + string(rune('0'+size)) + `}`)})
		if err != nil {
			t.Fatalf("AddVerification(%s, %d): %v", party, size, err)
		}
		return v
	}
	if v := add(a.ID, 3); v.Seq != 1 {
		t.Fatalf("first upload numbered %d, want 1", v.Seq)
	}
	if v := add(b.ID, 4); v.Seq != 1 {
		t.Fatalf("another party's first upload numbered %d, want 1", v.Seq)
	}
	if v := add(a.ID, 5); v.Seq != 2 {
		t.Fatalf("second upload numbered %d, want 2", v.Seq)
	}
	vs, err := st.Keys().Verifications(ctx, a.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Seq != 2 || vs[1].Seq != 1 {
		t.Fatalf("alpha's verifications = %+v, want seq 2 then 1", vs)
	}
	got := vs[0]
	if got.PartyID != a.ID || got.Size != 5 || got.Root != "rootf" || got.Entries != 2 ||
		!got.VerifiedAt.Equal(t0.Add(5*time.Second)) || !got.ReceivedAt.Equal(t0.Add(time.Minute)) || !bytes.Equal(got.Statement, []byte(`{"size":5}`)) {
		t.Fatalf("stored verification read back as %+v", got)
	}
	for _, v := range vs {
		if v.PartyID != a.ID {
			t.Fatalf("alpha's list holds %s's verification", v.PartyID)
		}
	}
	if vs, err := st.Keys().Verifications(ctx, a.ID, 1); err != nil || len(vs) != 1 || vs[0].Seq != 2 {
		t.Fatalf("limit 1 = %+v, %v; want only the newest", vs, err)
	}
	if vs, err := st.Keys().Verifications(ctx, "party--nobody", 10); err != nil || len(vs) != 0 {
		t.Fatalf("unknown party's verifications = %+v, %v; want none", vs, err)
	}
	if _, err := st.Keys().AddVerification(ctx, store.Verification{PartyID: "party--nobody", Size: 1, Root: "r", VerifiedAt: t0, ReceivedAt: t0, Statement: []byte("{}")}); err == nil {
		t.Fatal("a verification of an unknown party was stored")
	}
}
