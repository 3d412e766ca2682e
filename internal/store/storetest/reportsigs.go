package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// testReportSignatures: a report signature's statement is kept byte for
// byte with its period, hash and ledger index; one ledger index holds one;
// an unknown agreement is refused; a rolled-back one leaves nothing; the
// list is in ledger order and per agreement.
func testReportSignatures(t *testing.T, st store.Store) {
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "bravo")
	for _, id := range []string{"agreement--r1", "agreement--r2"} {
		if err := st.Agreements().Create(ctx, store.AgreementRecord{ID: id, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(ag string, idx int64, p string) store.ReportSignature {
		return store.ReportSignature{AgreementID: ag, LedgerIndex: idx, PartyID: p, KeyID: "0123456789abcdef", ReportHash: fmt.Sprintf("sha256:%064d", idx),
			From: t0, To: t0.Add(30 * 24 * time.Hour), SignedAt: t0.Add(time.Duration(idx) * time.Second),
			Statement: []byte(fmt.Sprintf(`{"party_id":%q,"sig":"\u00e9 %d"}`+"\n", p, idx))}
	}
	want := []store.ReportSignature{mk("agreement--r1", 7, b.ID), mk("agreement--r1", 12, a.ID)}
	for _, rs := range []store.ReportSignature{want[1], want[0], mk("agreement--r2", 9, a.ID)} {
		if err := st.Agreements().AddReportSignature(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Agreements().AddReportSignature(ctx, mk("agreement--r1", 7, a.ID)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second signature at one ledger index: %v, want ErrConflict", err)
	}
	if err := st.Agreements().AddReportSignature(ctx, mk("agreement--none", 30, a.ID)); err == nil {
		t.Fatal("a signature of an unknown agreement was stored")
	}
	_ = st.Update(ctx, func(tx store.Handle) error {
		if err := tx.Agreements().AddReportSignature(ctx, mk("agreement--r1", 40, a.ID)); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	got, err := st.Agreements().ReportSignatures(ctx, "agreement--r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ReportSignatures = %d signatures, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !bytes.Equal(g.Statement, w.Statement) || g.AgreementID != w.AgreementID || g.LedgerIndex != w.LedgerIndex || g.PartyID != w.PartyID ||
			g.KeyID != w.KeyID || g.ReportHash != w.ReportHash || !g.From.Equal(w.From) || !g.To.Equal(w.To) || !g.SignedAt.Equal(w.SignedAt) {
			t.Fatalf("signature %d = %+v, want %+v", i, g, w)
		}
	}
	if none, err := st.Agreements().ReportSignatures(ctx, "agreement--nothing"); err != nil || len(none) != 0 {
		t.Fatalf("ReportSignatures of an agreement without any = %v, %v", none, err)
	}
}
